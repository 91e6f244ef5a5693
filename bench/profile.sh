#!/bin/sh
# bench-profile (bench/README.md, bench/PROFILE.md): callgrind instruction
# counts of the non-streaming hot path. Three runs of
# `bench_overhead profile`, each collecting one function: profile_llmr
# (llmr_complete), profile_raw (raw libcurl) and profile_rawx (raw libcurl
# set up like the library); then bench/profile_summary.py.
#   B=build sh bench/profile.sh [CALLS]      # default 2000
# Writes $B/bench/callgrind.{llmr,raw,rawx}.out and $B/bench/profile.md.
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
calls=${1:-2000}
command -v valgrind >/dev/null 2>&1 || {
  echo "bench-profile: valgrind not found (apt-get install valgrind)" >&2
  exit 1
}
for f in llmr raw rawx; do
  echo "== callgrind: profile_$f, $calls calls" >&2
  valgrind --tool=callgrind --callgrind-out-file="$B/bench/callgrind.$f.out" \
    --toggle-collect="profile_$f" \
    "$B/bench/bench_overhead" profile --upstream "$B/bench/bench_upstream" \
    --calls "$calls" > /dev/null 2> "$B/bench/callgrind.$f.log" || {
    tail -n 20 "$B/bench/callgrind.$f.log" >&2
    exit 1
  }
done
{
  echo "# Profile of the non-streaming hot path (generated)"
  echo
  echo "\`B=$B sh bench/profile.sh $calls\` ($(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "libllmroute $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain -- src include 2>/dev/null | grep -q . && echo ' + uncommitted changes in src/ or include/'))."
  echo "valgrind $(valgrind --version), $(curl-config --version 2>/dev/null), cJSON $(pkg-config --modversion libcjson 2>/dev/null)."
  echo
  python3 bench/profile_summary.py "$B/bench/callgrind.llmr.out" \
    "$B/bench/callgrind.raw.out" "$B/bench/callgrind.rawx.out" $((calls + 20))
} > "$B/bench/profile.md"
echo "bench-profile: wrote $B/bench/profile.md" >&2
