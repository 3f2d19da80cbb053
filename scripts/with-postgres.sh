#!/bin/sh
# Runs a command with a throwaway PostgreSQL server (Debian's, installed by scripts/deps.sh):
# a new cluster in a temp dir on 127.0.0.1 at a free port, fsync off, its URL in
# VIGIL_TEST_PG_URL; stopped and removed when the command ends, however it ends.
# PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to `postgres`.
#   scripts/with-postgres.sh npx tap cloud/test/uploads.test.ts
set -eu
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-pg-XXXXXX")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
cleanup() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
as_pg "$bin/initdb" -D "$dir/data" -A trust -U vigil -E UTF8 --no-sync >/dev/null
# Connections: every test cloud keeps a pool; tap runs two files at once.
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c max_connections=300" start >/dev/null
as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U vigil vigil
VIGIL_TEST_PG_URL="postgres://vigil@127.0.0.1:$port/vigil" "$@"
