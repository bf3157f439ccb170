#!/usr/bin/env bash
# Offline check of the AWS SAM side of the project:
#   1. installs a pinned AWS SAM CLI into a virtualenv outside the tree (once; reused while the
#      version matches; SAM_VENV_DIR overrides where),
#   2. checks that every functions/*/index.ts is offered by template.yaml (RotationFunction's
#      AllowedValues, a Mappings.Functions row, an EntryPoint),
#   3. sam validate --lint   (cfn-lint, which also runs the SAM transform; all local),
#   4. sam build             (npm install --omit=dev + esbuild, per samconfig.toml: cached, parallel),
#   5. checks .aws-sam/build/Function/: the entry point index.mjs loads every function's bundle
#      (<name>/index.mjs) when ROTATION_FUNCTION names it and exports `handler`; prints the sizes.
#   6. runs the README's `sam deploy` without credentials: it must stop there, having read the
#      built template and samconfig.toml.
#
# Needs: python3 (>= 3.9) with venv, node + npm, and the npm registry and PyPI reachable for the
# first run. No AWS credentials: neither command calls AWS (the region comes from samconfig.toml /
# AWS_DEFAULT_REGION, telemetry and instance-metadata look-ups are switched off).
#
#   bash scripts/sam-check.sh                 extra arguments go to `sam build`, e.g.
#   bash scripts/sam-check.sh --no-cached     a full rebuild
#   SAM_CLI_VERSION=1.171.0 bash scripts/sam-check.sh
#   SAM_VENV_DIR=/some/dir bash scripts/sam-check.sh   another place for the virtualenv
#
# Why the virtualenv lives outside the tree, and has no lib64 if it is put inside: CodeUri is the repository root (where package.json is), and for
# every function sam build copies that whole directory into a scratch directory before npm and
# esbuild run there, skipping only .aws-sam, .git and node_modules (there is no ignore file). So
# .venv-sam/ (~340 MB) is copied too, once per function and following symlinks: the venv's
# lib64 -> lib symlink would double that. Most of sam build's time here is this copy (a venv
# outside the repository avoids it: 2 s instead of about a minute).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
venv="${SAM_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secrets-rotation-sam-venv}"
python="${PYTHON:-python3}"
started=$SECONDS

trap 'status=$?; printf "\nsam-check: FAILED (exit %s) at line %s: %s\n" "$status" "$LINENO" "$BASH_COMMAND" >&2' ERR
fail() {
  printf '\nsam-check: FAILED: %s\n' "$*" >&2
  exit 1
}
step() { printf '\n==> %s\n' "$*"; }

# --- tools ----------------------------------------------------------------------------------------
if [[ ! -x "$venv/bin/sam" ]] || [[ "$("$venv/bin/sam" --version 2>/dev/null)" != "SAM CLI, version $SAM_CLI_VERSION" ]]; then
  step "installing aws-sam-cli==$SAM_CLI_VERSION into $venv"
  command -v "$python" >/dev/null || fail "$python not found (set PYTHON=/path/to/python3)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "aws-sam-cli needs Python >= 3.9"
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
  # See "Why the virtualenv lives outside the tree" at the top.
  if [[ -L "$venv/lib64" ]] && [[ "$("$venv/bin/python" -c 'import sys; print(sys.platlibdir)')" == lib ]]; then
    rm "$venv/lib64"
  fi
fi

if [[ ! -x node_modules/.bin/esbuild ]]; then
  step "node_modules/ has no esbuild: npm install"
  npm install --no-audit --no-fund
fi

# sam build runs `npm install --omit=dev` in a scratch copy and takes esbuild from that copy's
# node_modules/.bin: esbuild is a (build-time) dependency for that reason, so `sam build` works as
# the README gives it, with nothing of the project's on PATH.
export PATH="$venv/bin:$PATH"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0
export AWS_EC2_METADATA_DISABLED=true

step "versions"
sam --version
cfn-lint --version
printf 'esbuild %s, node %s, npm %s\n' "$(node_modules/.bin/esbuild --version)" "$(node --version)" "$(npm --version 2>/dev/null)"
if command -v esbuild >/dev/null; then
  echo "note: another esbuild on PATH: $(command -v esbuild)"
fi

# --- template covers every function ---------------------------------------------------------------
step "every functions/*/index.ts is a choice of RotationFunction, a row of Mappings.Functions and an EntryPoint"
mapfile -t names < <(for entry in functions/*/index.ts; do [[ -e "$entry" ]] && basename "$(dirname "$entry")"; done)
((${#names[@]} > 0)) || fail "no functions/*/index.ts found"
"$venv/bin/python" - "${names[@]}" <<'PY' || fail "template.yaml does not offer every function (see above)"
import sys
from samcli.yamlhelper import yaml_parse

with open("template.yaml", encoding="utf-8") as f:
    template = yaml_parse(f.read())
names = sys.argv[1:]
choices = template["Parameters"]["RotationFunction"]["AllowedValues"]
rows = template["Mappings"]["Functions"]
entries = template["Resources"]["Function"]["Metadata"]["BuildProperties"]["EntryPoints"]
problems = []
for name in names:
    if name not in choices:
        problems.append(f"{name}: not in Parameters.RotationFunction.AllowedValues")
    if name not in rows:
        problems.append(f"{name}: no row in Mappings.Functions")
    if f"functions/{name}/index.ts" not in entries:
        problems.append(f"{name}: functions/{name}/index.ts not in the Function's EntryPoints")
for name in set(choices) - set(names):
    problems.append(f"{name}: in AllowedValues but there is no functions/{name}/index.ts")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "ok: ${#names[@]} function(s)"

# --- validate ---------------------------------------------------------------------------------------
# The README's deploy commands, as written there (checked below, so the two cannot drift apart).
readme_validate='sam validate --lint'
readme_build='sam build'
readme_deploy='sam deploy --stack-name rotation-orders-db \
  --parameter-overrides RotationFunction=postgres-single-user SubnetIds=subnet-1,subnet-2 SecurityGroupIds=sg-1'
step "README.md gives these deploy commands"
for command in "$readme_validate" "$readme_build" "$readme_deploy"; do
  grep -qxF -- "$(head -1 <<<"$command")" README.md || fail "README.md no longer has the line: $(head -1 <<<"$command")"
done
grep -qF -- "$readme_deploy" README.md || fail "README.md no longer has: $readme_deploy"
echo "ok"

step "$readme_validate"
t0=$SECONDS
$readme_validate
validate_s=$((SECONDS - t0))

# --- build ------------------------------------------------------------------------------------------
step "$readme_build $*"
t0=$SECONDS
$readme_build "$@"  # as the README gives it (template.yaml and samconfig.toml are the defaults)
build_s=$((SECONDS - t0))

# --- artifacts --------------------------------------------------------------------------------------
step "build artifacts"
[[ -f .aws-sam/build/template.yaml ]] || fail ".aws-sam/build/template.yaml missing"
# One code package, every function's bundle beside the entry point (index.mjs) that loads the one
# ROTATION_FUNCTION names: each must load through that entry point and export `handler`.
package=.aws-sam/build/Function
[[ -s "$package/index.mjs" ]] || fail "$package/index.mjs (the entry point) missing or empty"
printf '%-34s %10s %9s %10s %9s\n' function bytes KiB 'gzip B' 'gzip KiB'
for fn in "${names[@]}"; do
  bundle="$package/$fn/index.mjs"
  [[ -s "$bundle" ]] || fail "$bundle missing or empty"
  # The Stripe function refuses to load without a preview Stripe-Version (README): give it one.
  ROTATION_FUNCTION="$fn" STRIPE_API_VERSION="${STRIPE_API_VERSION:-2026-09-30.preview}" \
    node --no-warnings --input-type=module -e "
    const mod = await import(process.argv[1]);
    if (typeof mod.handler !== 'function') throw new Error('no handler export for ' + process.env.ROTATION_FUNCTION);
  " "$root/$package/index.mjs" || fail "$package/index.mjs with ROTATION_FUNCTION=$fn does not load or has no handler export"
  bytes=$(wc -c <"$bundle")
  gzip_bytes=$(gzip -9 -c "$bundle" | wc -c)
  printf '%-34s %10d %9.1f %10d %9.1f\n' "$fn" "$bytes" "$(bc -l <<<"$bytes/1024" 2>/dev/null || echo 0)" \
    "$gzip_bytes" "$(bc -l <<<"$gzip_bytes/1024" 2>/dev/null || echo 0)"
done
zip_bytes=$("$venv/bin/python" -c '
import io, os, sys, zipfile
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, _, files in os.walk(sys.argv[1]):
        for name in files:
            path = os.path.join(folder, name)
            z.write(path, os.path.relpath(path, sys.argv[1]))
print(len(buffer.getvalue()))' "$package")
printf 'code package (what sam deploy uploads, zipped): %d bytes (%.1f MiB)\n' "$zip_bytes" "$(bc -l <<<"$zip_bytes/1048576")"

# --- deploy, up to the point where AWS credentials are needed --------------------------------------
step "$(head -1 <<<"$readme_deploy") … (no credentials: must stop at them, after reading the built template and samconfig.toml)"
deploy_log=$(mktemp)
deploy_status=0
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_WEB_IDENTITY_TOKEN_FILE \
  AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
  timeout 120 bash -c "$readme_deploy" </dev/null >"$deploy_log" 2>&1 || deploy_status=$?
cat "$deploy_log"
((deploy_status != 0)) || fail "sam deploy succeeded without credentials?"
grep -q "Unable to locate credentials" "$deploy_log" || fail "sam deploy failed before reaching AWS (see above)"
rm -f "$deploy_log"
echo "ok: sam deploy got as far as the credentials"

printf '\nsam-check: OK in %ss (validate %ss, build %ss)\n' "$((SECONDS - started))" "$validate_s" "$build_s"
