#!/bin/sh
# Run the libFuzzer targets built by `make fuzz` / `make fuzz-smoke`
# (tests/fuzz/README.md).
#   B=build-fuzz [FUZZ_JOBS=N] sh tests/fuzz/run.sh SECONDS NAME...
# Each target first replays its committed reproducers (tests/fuzz/crashes/
# NAME/), then fuzzes for SECONDS (-max_total_time) from its corpus
# ($B/corpus/NAME, kept between runs) and seed dirs. FUZZ_JOBS targets run
# at once (default: the number of CPUs). Exits non-zero if any target
# found a crash, a leak or a timeout; the reproducer is left in
# $B/crashes/ and the log in $B/logs/NAME.log.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build-fuzz}
secs=${1:?usage: run.sh SECONDS NAME...}
shift
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
mkdir -p "$B/logs" "$B/crashes"

# seed dirs per target: the repository's fixtures (those that exist) and
# tests/fuzz/seeds/
seeds() {
  case $1 in
    sse) dirs="tests/fixtures/sse tests/fuzz/seeds/openai tests/fuzz/seeds/anthropic tests/fuzz/seeds/gemini"
         for d in tests/fixtures/*-stream; do dirs="$dirs $d"; done ;;
    stream_openai) dirs="tests/fixtures/openai-stream tests/fuzz/seeds/openai" ;;
    stream_anthropic) dirs="tests/fixtures/anthropic-stream tests/fuzz/seeds/anthropic" ;;
    stream_gemini) dirs="tests/fixtures/gemini-stream tests/fuzz/seeds/gemini" ;;
    openai_answer) dirs="tests/fuzz/seeds/openai_answer tests/fuzz/seeds/openai" ;;
    *) dirs= ;;
  esac
  for d in $dirs; do [ -d "$d" ] && printf '%s ' "$d"; done
}

# one target: replay reproducers, then fuzz; the exit status says
run_one() {
  name=$1
  bin=$B/fuzz/fuzz_$name
  log=$B/logs/$name.log
  : > "$log"
  if [ -d "tests/fuzz/crashes/$name" ] &&
     ls "tests/fuzz/crashes/$name"/* >/dev/null 2>&1; then
    "$bin" -runs=1 tests/fuzz/crashes/"$name"/* >>"$log" 2>&1 || return 1
  fi
  mkdir -p "$B/corpus/$name"
  # shellcheck disable=SC2046
  timeout $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=25 \
    -rss_limit_mb=2048 -max_len=16384 -dict=tests/fuzz/llmr.dict \
    -print_final_stats=1 -artifact_prefix="$B/crashes/$name-" \
    "$B/corpus/$name" $(seeds "$name") >>"$log" 2>&1
}

summary() {
  name=$1 rc=$2
  log=$B/logs/$name.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 |
         sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [0-9]*\/[^ ]*\).*/\1 \2 \3/p')
  if [ "$rc" -eq 0 ]; then
    echo "  fuzz_$name: ok, ${runs:-?} runs in ${secs} s, $last"
  else
    echo "  fuzz_$name: FAILED (exit $rc), log $log:"
    grep -E 'ERROR|SUMMARY|fuzz_sse:|runtime error|Test unit written' "$log" |
      head -n 12 | sed 's/^/    /'
  fi
}

fail=0
while [ $# -gt 0 ]; do
  batch=
  n=0
  while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
    name=$1
    shift
    [ -x "$B/fuzz/fuzz_$name" ] || { echo "run.sh: $B/fuzz/fuzz_$name not built" >&2; exit 2; }
    run_one "$name" &
    batch="$batch $name:$!"
    n=$((n + 1))
  done
  for nj in $batch; do
    wait "${nj#*:}"
    rc=$?
    summary "${nj%%:*}" "$rc"
    [ "$rc" -eq 0 ] || fail=1
  done
done
if [ $fail -ne 0 ]; then
  echo "fuzz: FAILED; reproducers in $B/crashes/ (replay: $B/fuzz/fuzz_NAME FILE)"
  exit 1
fi
echo "fuzz: all targets ok"
