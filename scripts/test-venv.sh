#!/usr/bin/env bash
# Installs the test virtualenv at $SCALEBOT_VENV (default
# /var/tmp/scalebot-venv) from tests/requirements.txt, and checkov's own at
# $SCALEBOT_VENV/checkov from tests/requirements-checkov.txt. Does nothing
# when both are installed from the current requirements files (a hash of
# them is kept in the virtualenv) and moto imports.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SCALEBOT_VENV:-/var/tmp/scalebot-venv}"
stamp="$venv/.scalebot-requirements.sha256"
want="$(cat tests/requirements.txt tests/requirements-checkov.txt | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
  && "$venv/bin/python" -c 'import moto, importlib.metadata as m; assert m.version("moto") == "5.2.5"' 2>/dev/null \
  && [ -x "$venv/checkov/bin/checkov" ]; then
  exit 0
fi

echo "installing the test tools (moto, cfn-lint, kubernetes-validate, yamllint, checkov) into $venv"
rm -f "$stamp"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
python3 -m venv "$venv/checkov"
"$venv/checkov/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements-checkov.txt
echo "$want" > "$stamp"
