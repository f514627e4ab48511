#!/usr/bin/env bash
# Run the in-process suites (or the pytest arguments given) RUNS times in a row
# with both cores kept busy by other processes, stopping at the first failure:
# the hunt for tests that wait on wall-clock time instead of on an event.
#   scripts/repeat-under-load.sh 20
#   scripts/repeat-under-load.sh 5 tests/ingest/test_batcher.py
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tests/ingest tests/stats tests/ops tests/plugins tests/processing tests/sources tests/telemetron_site tests/archive tests/webhooks)
PY=.venv/bin/python
hogs=()
for _ in $(seq 1 "$(nproc)"); do
    "$PY" -c "while True: pass" & hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    if ! "$PY" -m pytest -q -p no:cacheprovider -x "${targets[@]}" > "tests/.work/repeat-$i.log" 2>&1; then
        echo "run $i/$runs FAILED (tests/.work/repeat-$i.log):"
        grep -E "^(FAILED|ERROR)" "tests/.work/repeat-$i.log" || tail -20 "tests/.work/repeat-$i.log"
        exit 1
    fi
    echo "run $i/$runs passed: $(tail -n 1 "tests/.work/repeat-$i.log") ($(( $(date +%s) - start )) s, load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "all $runs runs passed with $(nproc) busy processes beside them"
