"""Summarise the JSON lines that ``report.py --json FILE`` appended (a knob
sweep): one row per configuration, the median over its runs."""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["summarise"]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _phase(run: dict[str, Any], tag: str) -> dict[str, Any] | None:
    return next((p for p in run["phases"] if p["tag"] == tag), None)


def _rps(phase: dict[str, Any]) -> float:
    w = phase["wrk"]
    return float(w["requests"] - w["status_errors"]) / float(w["duration_s"])


def summarise(path: Path) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        if line.strip():
            run = json.loads(line)
            groups[run["overrides"] or "(defaults)"].append(run)
    lines = [
        "| overrides | runs | /ingest req/s | p50 ms | p99 ms | events/batch "
        "| 202->visible p50/p99 ms | framework floor req/s | ours/floor | others' cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in groups.items():
        ingest = [p for r in runs if (p := _phase(r, "ingest")) is not None]
        floors = [p for r in runs if (p := _phase(r, "framework_floor")) is not None]
        if not ingest:
            continue
        rps = _median([_rps(p) for p in ingest])
        p50 = _median([p["wrk"]["p50_ms"] for p in ingest])
        p99 = _median([p["wrk"]["p99_ms"] for p in ingest])
        per_batch = _median(
            [
                (p["wrk"]["requests"] - p["wrk"]["status_errors"]) / p["batches"]
                for p in ingest
                if p.get("batches")
            ]
        )
        vis50 = _median([p["probe"]["visible_p50_s"] * 1000 for p in ingest if p["probe"]])
        vis99 = _median([p["probe"]["visible_p99_s"] * 1000 for p in ingest if p["probe"]])
        floor = _median([_rps(p) for p in floors])
        ratio = f"{rps / floor:.2f}" if floors else ""
        floor_text = f"{floor:,.0f}" if floors else ""
        others = _median([p["cpu"]["others"] for p in ingest])
        lines.append(
            f"| {key} | {len(ingest)} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {per_batch:.1f} "
            f"| {vis50:.0f}/{vis99:.0f} | {floor_text} | {ratio} | {others:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Summarise report.py --json lines: one row per set of overrides (medians)."
    )
    parser.add_argument("file", type=Path, help="the JSON-lines file report.py --json wrote")
    print(summarise(parser.parse_args().file))


if __name__ == "__main__":
    main()
