#!/usr/bin/env bash
# Telemetron benchmark (issue 2, item 10): installs wrk if missing, then runs
# bench/report.py (loopback only, bounded in time). Arguments go to report.py:
#   bench/run.sh                          # floors + /ingest + /ingest/batch + 202->visible
#   bench/run.sh --set http.threads=8     # one config key changed for this run
#   bench/run.sh --profile bench/.work/profile   # py-spy the web workers under load
#   bench/run.sh compare --before main           # before/after in one run (`make bench`)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q wrk >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q wrk >/dev/null
    }
fi

PY=.venv/bin/python
test -x "$PY" || { echo "bench: no .venv; run 'make run' (or 'make test') first" >&2; exit 2; }
echo "bench: machine load before: $(uptime)" >&2
if [ "${1:-}" = compare ]; then  # before/after in one run (bench/compare.py)
    shift
    exec "$PY" -m bench.compare "$@"
fi
exec "$PY" -m bench.report "$@"
