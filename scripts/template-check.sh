#!/usr/bin/env bash
# Offline checks of template.yaml beyond `sam validate --lint` and `sam build` (scripts/sam-check.sh):
#   1. installs the pinned tools of test/template/requirements.txt (checkov, aws-sam-translator,
#      pytest) into a virtualenv outside the tree (once; reinstalled when that file changes;
#      TEMPLATE_VENV_DIR overrides where),
#   2. checkov on template.yaml: every finding is fixed or skipped in the template with its reason
#      (Metadata.checkov.skip); any other finding fails,
#   3. pytest test/template: the SAM transform's output, for each RotationFunction and with the
#      optional resources on and off, has the properties the README promises.
# No AWS credentials and no AWS call. Warm: about 30 s.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${TEMPLATE_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/secrets-rotation-template-venv}"
python="${PYTHON:-python3}"
requirements=test/template/requirements.txt
started=$SECONDS

trap 'status=$?; printf "\ntemplate-check: FAILED (exit %s) at line %s: %s\n" "$status" "$LINENO" "$BASH_COMMAND" >&2' ERR
step() { printf '\n==> %s\n' "$*"; }

stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
  step "installing $(tr '\n' ' ' < <(grep -v '^#' "$requirements")) into $venv"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { echo "needs Python >= 3.9" >&2; exit 1; }
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_EC2_METADATA_DISABLED=true PYTHONDONTWRITEBYTECODE=1
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

step "checkov $("$venv/bin/checkov" --version) on template.yaml"
t0=$SECONDS
"$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation --file template.yaml
checkov_s=$((SECONDS - t0))

step "pytest test/template (the SAM transform's output)"
t0=$SECONDS
(cd test/template && "$venv/bin/python" -m pytest -q -p no:cacheprovider .)
pytest_s=$((SECONDS - t0))

printf '\ntemplate-check: OK in %ss (checkov %ss, pytest %ss)\n' "$((SECONDS - started))" "$checkov_s" "$pytest_s"
