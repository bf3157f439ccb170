#!/usr/bin/env bash
# Offline check of the AWS SAM side of the project:
#   1. installs a pinned AWS SAM CLI into a virtualenv outside the tree (once; reused while the
#      version matches; SAM_VENV_DIR overrides where),
#   2. checks that every functions/*/index.ts has a function in template.yaml,
#   3. sam validate --lint   (cfn-lint, which also runs the SAM transform; all local),
#   4. sam build             (npm install --omit=dev + esbuild, per samconfig.toml: cached, parallel),
#   5. checks .aws-sam/build/<Function>/index.mjs of every function: present, loads in Node,
#      exports `handler`; prints the sizes.
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
step "every functions/*/index.ts has a function in template.yaml"
missing=()
count=0
for entry in functions/*/index.ts; do
  [[ -e "$entry" ]] || continue
  count=$((count + 1))
  grep -qF -- "- $entry" template.yaml || missing+=("$entry")
done
((count > 0)) || fail "no functions/*/index.ts found"
((${#missing[@]} == 0)) || fail "not in template.yaml (add a function with this EntryPoints): ${missing[*]}"
echo "ok: $count function(s)"

# --- validate ---------------------------------------------------------------------------------------
step "sam validate --lint"
t0=$SECONDS
sam validate --lint --template-file template.yaml
validate_s=$((SECONDS - t0))

# --- build ------------------------------------------------------------------------------------------
step "sam build $*"
t0=$SECONDS
sam build "$@"  # as the README gives it (template.yaml and samconfig.toml are the defaults)
build_s=$((SECONDS - t0))

# --- artifacts --------------------------------------------------------------------------------------
step "build artifacts"
[[ -f .aws-sam/build/template.yaml ]] || fail ".aws-sam/build/template.yaml missing"
# Logical IDs of the functions, from the built template (the SAM CLI's own YAML loader knows !Ref & co).
mapfile -t functions < <("$venv/bin/python" - <<'PY'
from samcli.yamlhelper import yaml_parse

with open(".aws-sam/build/template.yaml", encoding="utf-8") as f:
    template = yaml_parse(f.read())
for name, resource in template.get("Resources", {}).items():
    if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        print(name)
PY
)
((${#functions[@]} > 0)) || fail "no functions in .aws-sam/build/template.yaml"

printf '%-34s %10s %9s %10s %9s  %s\n' function bytes KiB 'gzip B' 'gzip KiB' files
for fn in "${functions[@]}"; do
  bundle=".aws-sam/build/$fn/index.mjs"
  [[ -s "$bundle" ]] || fail "$bundle missing or empty"
  # The bundle must load as ESM (banner, format, extension) and export the handler.
  # The Stripe function refuses to load without a preview Stripe-Version (README): give it one.
  STRIPE_API_VERSION="${STRIPE_API_VERSION:-2026-09-30.preview}" node --no-warnings --input-type=module -e "
    const mod = await import(process.argv[1]);
    if (typeof mod.handler !== 'function') throw new Error('no handler export in ' + process.argv[1]);
  " "$root/$bundle" || fail "$bundle does not load or has no handler export"
  bytes=$(wc -c <"$bundle")
  gzip_bytes=$(gzip -9 -c "$bundle" | wc -c)
  files=$(find ".aws-sam/build/$fn" -type f | wc -l)
  printf '%-34s %10d %9.1f %10d %9.1f  %d\n' "$fn" "$bytes" "$(bc -l <<<"$bytes/1024" 2>/dev/null || echo 0)" \
    "$gzip_bytes" "$(bc -l <<<"$gzip_bytes/1024" 2>/dev/null || echo 0)" "$files"
done

printf '\nsam-check: OK in %ss (validate %ss, build %ss)\n' "$((SECONDS - started))" "$validate_s" "$build_s"
