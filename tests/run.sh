#!/bin/sh
# The test runner. Runs each test program in its own process with a time
# limit, reads cmocka's summaries, runs the shell checks, and ends with one
# line the CI reads: "N passed, N failed".
#
#   B=build sh tests/run.sh [all|tests|threads]
#     all      every C test, the export check, the man-page check, the CLI
#              test, the install + pkg-config test
#     tests    every C test (used under the sanitizers)
#     threads  the threaded tests only (used under ThreadSanitizer)
#
# LLMR_TEST_TIMEOUT_MULTIPLIER scales the per-program limit (default 1).
set -u
B=${B:-build}
SUITE=${1:-all}
MULT=${LLMR_TEST_TIMEOUT_MULTIPLIER:-1}
LIMIT=$((120 * MULT))
LLMR_SRCDIR=${LLMR_SRCDIR:-$(pwd)}
export LLMR_SRCDIR
# never let a proxy from the environment see loopback test traffic
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
LOG_DIR=$B/test-logs
mkdir -p "$LOG_DIR"

passed=0
failed=0
failures=""

# run_c PROGRAM: one cmocka program; counts its tests
run_c() {
  prog=$1
  name=$(basename "$prog")
  log=$LOG_DIR/$name.log
  timeout "$LIMIT" "$prog" >"$log" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | tail -n 1)
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # crashed, timed out, or a group setup failed: count it as one failure
    f=1
    [ "$rc" -eq 124 ] && echo "  $name: timed out after ${LIMIT}s"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    failures="$failures $name"
    echo "FAIL $name ($p passed, $f failed; exit $rc) -- log: $log"
    sed 's/^/    /' "$log" | grep -vE '^\s+\[ (RUN|      OK) ' | tail -n 40
  else
    echo "ok   $name ($p passed)"
  fi
}

# run_sh NAME COMMAND...: a shell check counted as one test
run_sh() {
  name=$1
  shift
  log=$LOG_DIR/$name.log
  if timeout "$LIMIT" "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    failures="$failures $name"
    echo "FAIL $name -- log: $log"
    sed 's/^/    /' "$log" | tail -n 40
  fi
}

case "$SUITE" in
  threads)
    # the threaded tests, and the secret allocator's (lock-free reuse)
    for t in "$B"/tests/test_threads* "$B"/tests/test_secret; do
      [ -x "$t" ] && run_c "$t"
    done
    ;;
  tests|all)
    for t in "$B"/tests/test_*; do
      [ -x "$t" ] || continue
      run_c "$t"
    done
    ;;
  *)
    echo "usage: tests/run.sh [all|tests|threads]" >&2
    exit 2
    ;;
esac

if [ "$SUITE" = all ]; then
  run_sh exports sh tests/check-exports.sh "$B/libllmroute.so"
  run_sh man-pages sh scripts/check-man.sh "$B/libllmroute.so"
  run_sh python-emulator python3 tests/mock/selftest.py
  run_sh cli sh tests/cli_test.sh "$B/llmroute"
  run_sh install-pkgconfig sh tests/install_test.sh
fi

if [ -n "$failures" ]; then
  echo "failed:$failures"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
