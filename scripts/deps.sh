#!/bin/sh
# Make sure the Debian packages a target needs are installed; install the
# missing ones with apt-get when running as root, or print the exact command
# and stop.
#   sh scripts/deps.sh build|test|fuzz
set -u
mode=${1:-build}
pkgs="gcc make pkg-config libcurl4-openssl-dev libcjson-dev libmbedtls-dev"
if [ "$mode" = test ]; then
  # gdb: tests/unit/test_secret.c dumps itself with gcore
  pkgs="$pkgs libcmocka-dev python3 openssl binutils groff-base man-db procps gdb"
fi
if [ "$mode" = fuzz ]; then
  # libFuzzer: clang and its runtime (Debian 12: clang 14)
  pkgs="$pkgs clang libclang-rt-dev"
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  # not Debian: check what the build needs through pkg-config and go on
  for pc in libcurl libcjson; do
    pkg-config --exists "$pc" 2>/dev/null || {
      echo "deps: $pc not found by pkg-config; install libcurl, cJSON, mbedTLS" \
           "(and cmocka, python3, openssl for the tests)" >&2
      exit 1
    }
  done
  exit 0
fi

missing=
for p in $pkgs; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: install them with:  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! $cmd >/tmp/llmr-apt.log 2>&1; then
  apt-get update >>/tmp/llmr-apt.log 2>&1
  if ! $cmd >>/tmp/llmr-apt.log 2>&1; then
    tail -n 20 /tmp/llmr-apt.log >&2
    echo "deps: '$cmd' failed (log: /tmp/llmr-apt.log)" >&2
    exit 1
  fi
fi
exit 0
