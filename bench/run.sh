#!/bin/sh
# Run the benchmarks built by `make bench-build` (bench/README.md).
#   B=build sh bench/run.sh full OUT.md   # bench/RESULTS.md, under a minute
#   B=build sh bench/run.sh smoke         # a few seconds, prints only
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
mode=${1:-smoke}
out=${2:-}

if [ "$mode" = smoke ]; then
  echo "== bench-smoke: bench_decode"
  "$B/bench/bench_decode" --mb 1 --runs 1
  echo "== bench-smoke: bench_ttft"
  "$B/bench/bench_ttft" --server "$B/bench/bench_server" --rounds 10 \
    --warmup 2 --events 3 --interval-ms 2
  echo "bench-smoke: ok"
  exit 0
fi
[ "$mode" = full ] && [ -n "$out" ] || {
  echo "usage: run.sh smoke | run.sh full OUT.md" >&2
  exit 2
}

DECODE="$B/bench/bench_decode --mb 32 --runs 11"
TTFT="$B/bench/bench_ttft --server $B/bench/bench_server --rounds 300 --warmup 20 --events 10 --interval-ms 5"
tmp=$out.tmp
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
curlv=$(curl-config --version 2>/dev/null || pkg-config --modversion libcurl 2>/dev/null || echo unknown)
ccv=$(${CC:-cc} --version 2>/dev/null | head -n 1)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- src include 2>/dev/null | head -n 1)
[ -n "$dirty" ] && rev="$rev + uncommitted changes in src/ or include/"

{
  echo "# Streaming benchmarks"
  echo
  echo "Written by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M UTC')); see"
  echo "bench/README.md for what each number means. Numbers from one machine;"
  echo "compare ratios, not absolute values, across machines."
  echo
  echo "## Machine"
  echo
  echo "- CPU: ${cpu:-unknown}, nproc $(nproc)"
  echo "- kernel: $(uname -sr)"
  echo "- compiler: $ccv, library built with \`-O2 -g\`"
  echo "- libcurl: $curlv; cJSON $(pkg-config --modversion libcjson 2>/dev/null || echo '?')"
  echo "- libllmroute: $rev"
  echo
  echo "## Decode throughput (one core)"
  echo
  echo "\`$DECODE\`"
  echo
} > "$tmp"
echo "== bench_decode"
$DECODE | tee -a "$tmp"
{
  echo
  echo "## Time to first token and inter-chunk gaps over raw libcurl"
  echo
  echo "\`$TTFT\`"
  echo
} >> "$tmp"
echo "== bench_ttft"
$TTFT | tee -a "$tmp"
mv "$tmp" "$out"
echo "bench: wrote $out"
