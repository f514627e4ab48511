#!/usr/bin/env bash
# The knob sweep (bench/RESULTS.md, "Knobs": http.threads, http.workers, ingest.linger_ms, ...):
# each configuration is measured ROUNDS times, interleaved, single-event /ingest
# only (no batch load), then summarised (medians). Loopback only; each run is
# bounded (about 30 s).
#   bench/sweep.sh [ROUNDS] [OUT.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
OUT=${2:-bench/.work/sweep.jsonl}
mkdir -p "$(dirname "$OUT")"
# Configurations that change the web server's shape also measure the framework
# floor with the same shape (for the ours/floor ratio).
CONFIGS=(
    "--floors framework"
    "--floors framework --set http.threads=4"
    "--floors framework --set http.threads=8"
    "--floors framework --set http.workers=1"
    "--floors framework --set http.workers=1 --set http.threads=8"
    "--floors none --set ingest.linger_ms=1"
    "--floors none --set ingest.linger_ms=2"
    "--floors none --set ingest.linger_ms=3"
    "--floors none --set queue.workers=1"
    "--floors none --set logging.levels={\"telemetron.request\":\"WARNING\"}"
)
for round in $(seq "$ROUNDS"); do
    for cfg in "${CONFIGS[@]}"; do
        echo "== round $round: ${cfg:-defaults} · $(uptime)" >&2
        # shellcheck disable=SC2086
        bench/run.sh --no-batch --json "$OUT" $cfg >/dev/null
    done
done
.venv/bin/python -m bench.summary "$OUT"
