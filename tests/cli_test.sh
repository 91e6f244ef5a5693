#!/bin/sh
# The llmroute CLI against the emulator (the checks are in cli_test.py).
exec python3 "$(dirname "$0")/cli_test.py" "$@"
