#!/bin/sh
# The shared library exports the public llmr_ API and nothing else, and has
# the right SONAME.
set -eu
so=${1:-build/libllmroute.so}
bad=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^llmr_' || true)
if [ -n "$bad" ]; then
  echo "exported symbols outside the llmr_ API:"
  echo "$bad"
  exit 1
fi
n=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | grep -c '^llmr_')
[ "$n" -gt 50 ] || { echo "only $n llmr_ functions exported"; exit 1; }
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libllmroute.so.0" ] || { echo "SONAME is '$soname'"; exit 1; }
# every exported function is declared in a public header
for f in $(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}'); do
  grep -q "\b$f(" include/llmroute.h include/llmroute/provider.h || \
    grep -q "^$f(" include/llmroute.h include/llmroute/provider.h || \
    { echo "$f is exported but not declared in include/"; exit 1; }
done
echo "$n functions exported, all llmr_, SONAME $soname"
