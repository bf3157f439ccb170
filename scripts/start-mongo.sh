#!/usr/bin/env bash
# Starts a throw-away MongoDB wire-protocol server for the integration tests on machines without
# Docker: FerretDB v1.24.0 (SQLite backend) on 127.0.0.1 with SCRAM authentication and user
# management (createUser / updateUser / usersInfo: its "new authentication" mode), one plaintext
# listener and one TLS listener with a throw-away self-signed certificate.
# Builds FerretDB from the Go module proxy the first time (a few minutes), then reuses the binary.
#
#   eval "$(bash scripts/start-mongo.sh)"
#     -> export MONGO_ADMIN_URL=mongodb://rotation_admin:...@127.0.0.1:24027/admin
#        export MONGO_TLS_PORT=24028          (the same server, TLS only)
#        export MONGO_TLS_CA_FILE=/tmp/rotation-ferretdb/tls.crt
#   bash scripts/start-mongo.sh --stop
#
# Settings: MONGO_PORT (24027), MONGO_TLS_PORT (MONGO_PORT + 1), MONGO_DATA_DIR
# (/tmp/rotation-ferretdb), FERRETDB_CACHE_DIR (where the binary is kept:
# ${XDG_CACHE_HOME:-~/.cache}/secrets-rotation-ferretdb).
set -euo pipefail

VERSION=v1.24.0
MODULE=github.com/FerretDB/FerretDB
PORT="${MONGO_PORT:-24027}"
TLS_PORT="${MONGO_TLS_PORT:-$((PORT + 1))}"
DATA="${MONGO_DATA_DIR:-/tmp/rotation-ferretdb}"
CACHE="${FERRETDB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secrets-rotation-ferretdb}"
BIN="$CACHE/$VERSION/ferretdb"
ADMIN_USER=rotation_admin
ADMIN_PASSWORD="${MONGO_ADMIN_PASSWORD:-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
log() { echo "start-mongo: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

stop_server() {
  local pid
  [ -f "$DATA/ferretdb.pid" ] || return 0
  pid=$(cat "$DATA/ferretdb.pid")
  # Only the process this script started, and only if it still is FerretDB.
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q ferretdb "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$DATA/ferretdb.pid"
}

# Why not `go install $MODULE/cmd/ferretdb@$VERSION`: it asks the proxy for the module's version
# list (to look for deprecation notices), which the proxy refuses for this module (403), and the
# module's build needs build/version/version.txt, which FerretDB's release process generates. So:
# download the exact version from the proxy (checked against sum.golang.org), add that file, build.
install_ferretdb() {
  local work dir started=$SECONDS
  # Go's own installer puts it in /usr/local/go, which a plain PATH may lack.
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
  if ! command -v go >/dev/null; then
    log "Go not found; installing it from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq golang-go >&2
  fi
  # FerretDB's go.mod asks for Go 1.22; a go command of 1.21 or later fetches that toolchain from
  # the module proxy by itself (GOTOOLCHAIN=auto), an older one (Debian 12's apt gives 1.19) fails
  # with "unknown directive: toolchain". Say so instead.
  local minor
  minor=$(go env GOVERSION | sed -nE 's/^go1\.([0-9]+).*/\1/p')
  [ "${minor:-0}" -ge 21 ] || fail "$(go version) is older than Go 1.21, which building FerretDB needs: install Go 1.21 or later (https://go.dev/doc/install, or your distribution's backports), or set MONGO_ADMIN_URL to a MongoDB server"
  log "building FerretDB $VERSION with $(go version | awk '{print $3}') into $BIN"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && go mod init ferretdb-build >/dev/null 2>&1 &&
    GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION") >"$work/module.json" ||
    fail "go mod download $MODULE@$VERSION: $(cat "$work/module.json")"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$work/module.json")
  [ -d "$dir" ] || fail "no source folder in: $(cat "$work/module.json")"
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  echo "$VERSION" >"$work/src/build/version/version.txt"
  mkdir -p "$(dirname "$BIN")"
  log "compiling (about 2 minutes on 2 cores the first time; progress every 15 s)"
  # A heartbeat on stderr, so a first run that compiles for minutes is not taken for a hang.
  (while sleep 15; do log "still compiling FerretDB ($((SECONDS - started)) s)"; done) &
  local heartbeat=$!
  local built=0
  (cd "$work/src" && GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" go build -trimpath -o "$BIN.tmp" ./cmd/ferretdb) >&2 || built=$?
  kill "$heartbeat" 2>/dev/null || true
  wait "$heartbeat" 2>/dev/null || true
  [ "$built" -eq 0 ] || fail "go build of FerretDB $VERSION"
  mv "$BIN.tmp" "$BIN"
  log "built FerretDB $VERSION in $((SECONDS - started)) s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_server
if [ "${1:-}" = "--stop" ]; then
  rm -rf "$DATA"
  exit 0
fi

# The version output is read whole first: `--version | grep -q` under pipefail failed whenever grep
# quit before ferretdb had written its last line (SIGPIPE), and rebuilt a good binary.
if ! [ -x "$BIN" ] || ! grep -qx "version: $VERSION" <<<"$("$BIN" --version 2>/dev/null || true)"; then
  install_ferretdb
fi
for port in "$PORT" "$TLS_PORT"; do
  port_open "$port" && fail "port $port on 127.0.0.1 is in use (set MONGO_PORT / MONGO_TLS_PORT)"
done

rm -rf "$DATA"
mkdir -p "$DATA/sqlite" "$DATA/state"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$DATA/tls.key" -out "$DATA/tls.crt" 2>/dev/null || fail "openssl could not make a certificate"

# The admin password goes through the environment, not the command line (visible in ps).
# --test-enable-new-auth: SCRAM-SHA-256/SHA-1 and the user commands; every command but a few
# (hello, ping, ...) then needs an authenticated connection.
FERRETDB_SETUP_PASSWORD="$ADMIN_PASSWORD" nohup "$BIN" \
  --handler=sqlite --sqlite-url="file:$DATA/sqlite/" --state-dir="$DATA/state" \
  --listen-addr="127.0.0.1:$PORT" \
  --listen-tls="127.0.0.1:$TLS_PORT" --listen-tls-cert-file="$DATA/tls.crt" --listen-tls-key-file="$DATA/tls.key" \
  --debug-addr=127.0.0.1:0 --telemetry=disable --log-level=warn \
  --test-enable-new-auth \
  --setup-database=admin --setup-username="$ADMIN_USER" \
  </dev/null >"$DATA/ferretdb.log" 2>&1 &
echo $! >"$DATA/ferretdb.pid"

for _ in $(seq 300); do
  port_open "$PORT" && port_open "$TLS_PORT" && break
  kill -0 "$(cat "$DATA/ferretdb.pid")" 2>/dev/null || { cat "$DATA/ferretdb.log" >&2; fail "FerretDB exited"; }
  sleep 0.2
done
port_open "$PORT" && port_open "$TLS_PORT" || { cat "$DATA/ferretdb.log" >&2; fail "FerretDB not listening after 60000 ms"; }

log "FerretDB $VERSION (SQLite) on 127.0.0.1:$PORT, TLS on 127.0.0.1:$TLS_PORT, data in $DATA"
echo "export MONGO_ADMIN_URL=mongodb://$ADMIN_USER:$ADMIN_PASSWORD@127.0.0.1:$PORT/admin"
echo "export MONGO_TLS_PORT=$TLS_PORT"
echo "export MONGO_TLS_CA_FILE=$DATA/tls.crt"
