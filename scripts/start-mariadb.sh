#!/usr/bin/env bash
# Starts a throw-away MariaDB on 127.0.0.1 for the integration tests on machines without Docker:
# its own data folder, a non-default port, TLS with a self-signed certificate, and an admin user
# with a password. Installs Debian's mariadb-server from apt if the server is missing.
# Prints the line to eval:   eval "$(bash scripts/start-mariadb.sh)"
#   -> export MYSQL_ADMIN_URL=mysql://rotation_admin:...@127.0.0.1:23307/mysql
# Stop it with:               bash scripts/start-mariadb.sh --stop
# MYSQL_PORT and MYSQL_DATA_DIR choose another port and folder (CI uses its own).
set -euo pipefail
# Root's tools (runuser, mariadbd) live in sbin, which a plain user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PORT="${MYSQL_PORT:-23307}"
DATA="${MYSQL_DATA_DIR:-/tmp/rotation-mariadb}"
ADMIN_USER=rotation_admin
ADMIN_PASSWORD="${MYSQL_ADMIN_PASSWORD:-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
SOCKET="$DATA/mysqld.sock"
PIDFILE="$DATA/mysqld.pid"
log() { echo "start-mariadb: $*" >&2; }

find_server() {
  local candidate
  for candidate in /usr/sbin/mariadbd /usr/sbin/mysqld; do
    # The version is read whole first (grep -q on a pipe under pipefail can fail on SIGPIPE).
    [ -x "$candidate" ] && grep -q MariaDB <<<"$("$candidate" --version 2>/dev/null || true)" &&
      { echo "$candidate"; return 0; }
  done
  return 1
}

stop_server() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  log "server $pid did not stop in 30 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

if [ "${1:-}" = "--stop" ]; then
  stop_server
  rm -rf "$DATA"
  exit 0
fi

SERVER=$(find_server || true)
if [ -z "$SERVER" ]; then
  [ "${MARIADB_NO_INSTALL:-}" = true ] && { log "MariaDB not installed (and MARIADB_NO_INSTALL=true)"; exit 1; }
  log "MariaDB not installed; installing mariadb-server from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq mariadb-server >&2
  SERVER=$(find_server || true)
fi
[ -n "$SERVER" ] || { log "no MariaDB server binary (mariadbd) found"; exit 1; }
INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || true)
CLIENT=$(command -v mariadb || command -v mysql || true)
[ -n "$INSTALL_DB" ] && [ -n "$CLIENT" ] || { log "mariadb-install-db or the mariadb client missing"; exit 1; }

# The server refuses to run as root: run it as the mysql system user when we are root.
RUN=()
RUN_USER=$(id -un)
if [ "$(id -u)" = 0 ]; then
  id mysql >/dev/null 2>&1 || useradd --system --no-create-home mysql
  RUN=(runuser -u mysql --)
  RUN_USER=mysql
fi

stop_server
rm -rf "$DATA"
mkdir -p "$DATA/db" "$DATA/tls"

# TLS: a private CA and a server certificate for 127.0.0.1 / localhost, so "TLS preferred" and
# REQUIRE SSL accounts work, and "ssl": true fails on an untrusted certificate.
(
  cd "$DATA/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rotation-test-ca" \
    -keyout ca-key.pem -out ca.pem >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout server-key.pem -out server.csr >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile san.ext -out server-cert.pem >/dev/null 2>&1
)
[ "$(id -u)" = 0 ] && chown -R mysql "$DATA"

"${RUN[@]}" "$INSTALL_DB" --no-defaults --datadir="$DATA/db" --user="$RUN_USER" \
  --auth-root-authentication-method=socket --skip-test-db >"$DATA/install.log" 2>&1 || {
  log "mariadb-install-db failed:"; cat "$DATA/install.log" >&2; exit 1; }

# --no-defaults: nothing from /etc/mysql (its socket, port, bind address) applies. Name
# resolution stays on so that 127.0.0.1 matches 'user'@'localhost' accounts, as the tests need.
"${RUN[@]}" "$SERVER" --no-defaults \
  --datadir="$DATA/db" --port="$PORT" --bind-address=127.0.0.1 \
  --socket="$SOCKET" --pid-file="$PIDFILE" --log-error="$DATA/server.log" \
  --ssl-ca="$DATA/tls/ca.pem" --ssl-cert="$DATA/tls/server-cert.pem" \
  --ssl-key="$DATA/tls/server-key.pem" \
  --max-connections="${MYSQL_MAX_CONNECTIONS:-300}" \
  --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
  --skip-log-bin --character-set-server=utf8mb4 >/dev/null 2>&1 &

for _ in $(seq 1 120); do
  if "$CLIENT" --no-defaults --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
[ "${ready:-}" = 1 ] || { log "server did not accept connections in 60 s; its log:"; cat "$DATA/server.log" >&2; exit 1; }

# The admin user signs in over TCP with a password; anonymous accounts, which would shadow
# 'user'@'%' for local clients, are removed.
"$CLIENT" --no-defaults --socket="$SOCKET" -uroot <<SQL
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE USER '$ADMIN_USER'@'%' IDENTIFIED BY '$ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'%' WITH GRANT OPTION;
CREATE DATABASE rotation_test;
SQL

log "$("$SERVER" --version | awk '{print $1, $3}') on 127.0.0.1:$PORT, data in $DATA"
echo "export MYSQL_ADMIN_URL=mysql://$ADMIN_USER:$ADMIN_PASSWORD@127.0.0.1:$PORT/rotation_test"
echo "export MYSQL_TEST_CA=$DATA/tls/ca.pem"
