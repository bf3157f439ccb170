#!/usr/bin/env bash
# Installs moto (a Secrets Manager emulator nobody here wrote, from PyPI) into a private
# virtualenv and prints `export MOTO_SERVER=<its moto_server>` for test/security/moto.test.ts.
# The pinned version is the one the suite was checked against; the venv is reused when present.
set -euo pipefail
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
VENV="${MOTO_VENV:-$HOME/.cache/secrets-rotation-moto-$MOTO_VERSION}"
log() { printf 'install-moto: %s\n' "$*" >&2; }
if [ ! -x "$VENV/bin/moto_server" ]; then
  command -v python3 >/dev/null || { apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv >&2; }
  python3 -m venv "$VENV" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2 && python3 -m venv "$VENV" >&2; }
  log "installing moto[server]==$MOTO_VERSION into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
log "moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') at $VENV"
echo "export MOTO_SERVER=$VENV/bin/moto_server"
