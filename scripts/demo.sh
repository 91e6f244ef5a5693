#!/bin/sh
# make demo: start the bundled provider emulator on a free loopback port,
# mark the first model of a two-slug fallback chain as down (503), run the
# llmroute CLI over the chain, print the answer and the attempt trace, and
# stop the emulator.
set -eu
B=${B:-build}
tmp=$(mktemp -d /tmp/llmr-demo-XXXXXX)
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cat > "$tmp/script.json" <<'JSON'
[
  {"model": "gpt-4o", "default": {"kind": "error", "preset": "overloaded"}},
  {"model": "anthropic/claude-3.5-haiku", "default": {"kind": "ok",
   "text": "Rayleigh scattering: air molecules scatter short (blue) wavelengths of sunlight far more than long ones, so blue light reaches your eyes from every part of the sky.",
   "usage": {"prompt_tokens": 24, "completion_tokens": 31, "total_tokens": 55,
             "prompt_tokens_details": {"cached_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0}}}}
]
JSON
python3 tests/mock/emulator.py --port 0 --quiet --port-file "$tmp/port" \
  --script "$tmp/script.json" >/dev/null &
emu_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port")

# keys and base URLs come from the environment, exactly as with real
# providers; these point both providers at the emulator
export OPENAI_API_KEY=sk-demo-not-a-real-key
export OPENROUTER_API_KEY=sk-or-demo-not-a-real-key
export LLMR_OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
export LLMR_OPENROUTER_BASE_URL="http://127.0.0.1:$port/api/v1"
export NO_PROXY="127.0.0.1,localhost"

chain="openai/gpt-4o,openrouter/anthropic/claude-3.5-haiku"
echo "emulator on 127.0.0.1:$port; openai/gpt-4o is scripted to answer 503"
echo
echo "\$ llmroute --trace -m $chain 'Why is the sky blue?'"
"$B/llmroute" --trace -m "$chain" "Why is the sky blue?"
echo
echo "\$ llmroute --json -m $chain 'Why is the sky blue?'"
"$B/llmroute" --json -m "$chain" "Why is the sky blue?" | python3 -m json.tool
