#!/bin/sh
# bench-peers (bench/README.md): install the peers from the npm registry into
# a scratch project under $B/peers (never committed), then run
# bench/peers.mjs, which prints a Markdown section on stdout.
#   B=build sh bench/peers.sh [ROUNDS [SECONDS]]
# Without node (>= 18) or npm it prints why it skipped and exits 0; when
# npm install or a run fails it prints what failed and exits 1.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
rounds=${1:-5}
seconds=${2:-1}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Skipped: node and npm are needed for the peers (not found)."
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 18 ]; then
  echo "Skipped: node $(node --version) is older than 18."
  exit 0
fi

dir=$B/peers
mkdir -p "$dir"
# @hono/node-server pinned: the default tree breaks Portkey's streaming
# (../shared/PEERS.md)
cat > "$dir/package.json.want" <<'EOF'
{
  "name": "llmroute-bench-peers",
  "private": true,
  "dependencies": {
    "@portkey-ai/gateway": "1.15.2",
    "openai": "6.49.0"
  },
  "overrides": {
    "@hono/node-server": "1.13.8"
  }
}
EOF
if ! cmp -s "$dir/package.json.want" "$dir/package.json" ||
   [ ! -f "$dir/node_modules/@portkey-ai/gateway/build/start-server.js" ] ||
   [ ! -f "$dir/node_modules/openai/package.json" ]; then
  mv "$dir/package.json.want" "$dir/package.json"
  rm -rf "$dir/node_modules" "$dir/package-lock.json"
  echo "== bench-peers: npm install in $dir" >&2
  if ! (cd "$dir" && npm install --no-audit --no-fund --loglevel=error) \
       > "$dir/npm.log" 2>&1; then
    echo "**npm install failed** (in \`$dir\`, log \`$dir/npm.log\`):"
    echo
    echo '```'
    tail -n 15 "$dir/npm.log"
    echo '```'
    exit 1
  fi
else
  rm -f "$dir/package.json.want"
fi
exec node bench/peers.mjs --bin "$B/bench" --modules "$dir" \
  --rounds "$rounds" --seconds "$seconds"
