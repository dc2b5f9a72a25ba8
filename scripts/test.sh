#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs moto and the deploy
# files' validators (cfn-lint, kubernetes-validate, yamllint, checkov) into
# a virtualenv and Debian's chromium/chromium-driver (apt-get), then runs
# every test (unit, integration over real HTTP, moto, SQLite and
# PostgreSQL, the deploy files). Needs PostgreSQL on 127.0.0.1:5432 (trust
# auth, database `test`), or SCALEBOT_TEST_POSTGRES pointing at one.
set -euo pipefail
cd "$(dirname "$0")/.."

export SCALEBOT_VENV="${SCALEBOT_VENV:-/var/tmp/scalebot-venv}"
# moto and the deploy files' validators; (re)installed whenever
# tests/requirements*.txt changed.
scripts/test-venv.sh

# The web chat's end-to-end test drives Debian's headless Chromium through
# chromedriver (tests/api/browser.rs); install both when they are missing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (the browser test needs them)"
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver \
      || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }
  fi
fi
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  # Installed: a missing browser later is a failure, not a skip.
  export SCALEBOT_REQUIRE_BROWSER=1
else
  echo "!!!!!! WARNING: chromium/chromium-driver could not be installed (no apt-get, or it failed):"
  echo "!!!!!! the web chat's browser test (tests/api/browser.rs) will be SKIPPED"
fi

exec cargo test --all-targets "$@"
