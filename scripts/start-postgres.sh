#!/usr/bin/env bash
# Starts a throw-away PostgreSQL on 127.0.0.1 with password (scram-sha-256) authentication, for
# the integration tests on machines without Docker. Installs the server from apt if missing.
# Prints the line to eval:   eval "$(bash scripts/start-postgres.sh)"
#   -> export PG_ADMIN_URL=postgres://rotation_admin:...@127.0.0.1:25432/postgres
# Stop it with:               bash scripts/start-postgres.sh --stop
# PG_TLS=1: TLS only (hostssl), with a server certificate from a throw-away test CA for
#   localhost / 127.0.0.1; also prints `export PG_TLS_CA_FILE=<the CA certificate>`.
# PG_URL_VAR names the printed URL variable (default PG_ADMIN_URL).
set -euo pipefail
# Root's tools (runuser, useradd) live in sbin, which a plain user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PORT="${PG_PORT:-25432}"
DATA="${PG_DATA_DIR:-/tmp/rotation-postgres}"
ADMIN_USER=rotation_admin
ADMIN_PASSWORD="${PG_ADMIN_PASSWORD:-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
log() { echo "start-postgres: $*" >&2; }

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

BINDIR=$(find_bindir || true)
if [ -z "$BINDIR" ]; then
  log "PostgreSQL not installed; installing from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BINDIR=$(find_bindir)
fi
[ -n "$BINDIR" ] || { log "no PostgreSQL server binaries found"; exit 1; }

# The server refuses to run as root: run it as the postgres system user when we are root.
RUN=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  RUN=(runuser -u postgres --)
fi

if "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast stop >&2 || true
fi
if [ "${1:-}" = "--stop" ]; then
  rm -rf "$DATA"
  exit 0
fi
rm -rf "$DATA"
mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
URL_VAR="${PG_URL_VAR:-PG_ADMIN_URL}"
PWFILE=$(mktemp)
printf '%s\n' "$ADMIN_PASSWORD" > "$PWFILE"
[ "$(id -u)" = 0 ] && chown postgres "$PWFILE"
"${RUN[@]}" "$BINDIR/initdb" -D "$DATA" -U "$ADMIN_USER" --pwfile="$PWFILE" \
  --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
rm -f "$PWFILE"
cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
password_encryption = 'scram-sha-256'
max_connections = ${PG_MAX_CONNECTIONS:-200}
fsync = off
synchronous_commit = off
CONF
# Password authentication on loopback only, so a wrong password really fails.
if [ "${PG_TLS:-}" = 1 ]; then
  command -v openssl >/dev/null || { apt-get update -qq >&2; apt-get install -y -qq openssl >&2; }
  TLS="$DATA/tls"
  mkdir -p "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rotation test CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$TLS/san.ext"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 2 -extfile "$TLS/san.ext" -out "$TLS/server.pem" 2>/dev/null
  chmod 600 "$TLS/server.key"
  [ "$(id -u)" = 0 ] && chown -R postgres "$TLS"
  cat >> "$DATA/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$TLS/server.pem'
ssl_key_file = '$TLS/server.key'
CONF
  cat > "$DATA/pg_hba.conf" <<HBA
local   all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
HBA
else
  cat > "$DATA/pg_hba.conf" <<HBA
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
fi
"${RUN[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >&2 || {
  log "server did not start; its log:"; cat "$DATA/server.log" >&2; exit 1; }
"$BINDIR/pg_isready" -h 127.0.0.1 -p "$PORT" -t 30 >&2
log "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, data in $DATA"
echo "export $URL_VAR=postgres://$ADMIN_USER:$ADMIN_PASSWORD@127.0.0.1:$PORT/postgres"
if [ "${PG_TLS:-}" = 1 ]; then echo "export PG_TLS_CA_FILE=$DATA/tls/ca.pem"; fi
