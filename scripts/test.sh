#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs moto into a virtualenv,
# then runs every test (unit, integration over real HTTP, moto, SQLite and
# PostgreSQL). Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database
# `test`), or SCALEBOT_TEST_POSTGRES pointing at one.
set -euo pipefail
cd "$(dirname "$0")/.."

export SCALEBOT_VENV="${SCALEBOT_VENV:-/var/tmp/scalebot-venv}"
if ! "$SCALEBOT_VENV/bin/python" -c 'import moto, importlib.metadata as m; assert m.version("moto") == "5.2.5"' 2>/dev/null; then
  echo "installing moto into $SCALEBOT_VENV"
  python3 -m venv "$SCALEBOT_VENV"
  "$SCALEBOT_VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

exec cargo test --all-targets "$@"
