#!/bin/sh
# Run the benchmarks built by `make bench-build` (bench/README.md).
#   B=build sh bench/run.sh full OUT.md   # bench/RESULTS.md, a few minutes
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
  echo "== bench-smoke: bench_failover"
  "$B/bench/bench_failover" --server "$B/bench/bench_server" --rounds 5 \
    --warmup 1 --stall-rounds 5
  echo "== bench-smoke: bench_overhead (non-streaming overhead)"
  "$B/bench/bench_overhead" --upstream "$B/bench/bench_upstream" \
    --threads 1,4 --rounds 1 --seconds 0.2 --warmup-s 0.05 --capacity-conns 8
  echo "== bench-smoke: bench_overhead memory"
  "$B/bench/bench_overhead" memory --upstream "$B/bench/bench_upstream" \
    --runs 1 --threads 4 --calls 1000,5000
  echo "== bench-smoke: bench_overhead profile (the workload, no valgrind)"
  "$B/bench/bench_overhead" profile --upstream "$B/bench/bench_upstream" \
    --calls 50
  echo "== bench-smoke: bench_ledger"
  "$B/bench/bench_ledger" --records 2000 --interval 500 --synced 20 --runs 1
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
  echo "# Benchmarks"
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
FAILOVER="$B/bench/bench_failover --server $B/bench/bench_server --rounds 300 --warmup 20"
{
  echo
  echo "## Failover: what a failing first slug adds to time to first token"
  echo
  echo "\`$FAILOVER\`"
  echo
} >> "$tmp"
echo "== bench_failover"
$FAILOVER | tee -a "$tmp"
OVERHEAD="$B/bench/bench_overhead --upstream $B/bench/bench_upstream --threads 1,4,16 --rounds 9 --seconds 1 --warmup-s 0.3"
MEMORY="$B/bench/bench_overhead memory --upstream $B/bench/bench_upstream --runs 5 --threads 16 --calls 10000,100000"
{
  echo
  echo "## Non-streaming: what llmr_complete adds per call over raw libcurl"
  echo
  echo "\`$OVERHEAD\`"
  echo
} >> "$tmp"
echo "== bench_overhead"
$OVERHEAD | tee -a "$tmp"
{
  echo
  echo "## Memory"
  echo
  echo "\`$MEMORY\`"
  echo
} >> "$tmp"
echo "== bench_overhead memory"
$MEMORY | tee -a "$tmp"
{
  echo
  echo "Library sizes (\`-O2 -g\` build; stripped copies made with"
  echo "\`strip --strip-all\` for the shared library and \`strip --strip-debug\`"
  echo "for the archive, which must keep its symbol table):"
  echo
  echo "| file | as built | stripped |"
  echo "| --- | ---: | ---: |"
  for f in "$B"/libllmroute.so.*.*.* "$B/libllmroute.a"; do
    case $f in *.a) how=--strip-debug ;; *) how=--strip-all ;; esac
    strip $how -o "$B/bench/stripped.tmp" "$f"
    echo "| $(basename "$f") | $(wc -c < "$f") B | **$(wc -c < "$B/bench/stripped.tmp") B** |"
    rm -f "$B/bench/stripped.tmp"
  done
  echo
} | tee -a "$tmp"
{
  echo "## Peers: Portkey gateway and the OpenAI Node SDK"
  echo
  echo "\`B=$B sh bench/peers.sh 5 1\` (\`make bench-peers\`)"
  echo
} >> "$tmp"
echo "== bench-peers"
B=$B sh bench/peers.sh 5 1 | tee -a "$tmp" || true
LEDGER="$B/bench/bench_ledger --records 1000000 --interval 100000 --synced 2000 --runs 5"
{
  echo
  echo "## Ledger: appends under each fsync policy, reads over 1,000,000 records"
  echo
  echo "\`$LEDGER\` (\`make bench-ledger\`)"
  echo
  echo "Appends go through the library's own path (format, SHA-256 chain, flock,"
  echo "one write() each) into a fresh file per run; the reads run on the last"
  echo "1,000,000-record file, each in a child process whose peak RSS is the"
  echo "step's memory. The file system is the machine's /tmp (fsync cost depends"
  echo "on it)."
  echo
} >> "$tmp"
echo "== bench_ledger"
$LEDGER | tee -a "$tmp"
# the hand-written "Hot path: before and after" record is kept, not rerun
if [ -f "$out" ] && grep -q '^## Hot path: before and after' "$out"; then
  echo >> "$tmp"
  sed -n '/^## Hot path: before and after/,$p' "$out" >> "$tmp"
fi
mv "$tmp" "$out"
echo "bench: wrote $out"
