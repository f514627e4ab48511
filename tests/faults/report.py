"""A run's table: configuration x fault kind → faults injected, events
acknowledged / counted / duplicated, recovery time p50 / max, violations by kind."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from tests.faults.checker import CheckResult, KindRow

__all__ = ["result_summary", "result_table"]

HEADER = (
    "configuration",
    "fault kind",
    "faults",
    "acked",
    "counted",
    "dup",
    "recovery p50/max",
    "violations",
)


def _recovery(row: KindRow) -> str:
    if not row.recovery:
        return "-" if not row.unrecovered else f"never ({row.unrecovered})"
    text = f"{statistics.median(row.recovery):.1f} / {max(row.recovery):.1f} s"
    return text + (f" (+{row.unrecovered} never)" if row.unrecovered else "")


def _violations(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items())) or "0"


def _faults(row: KindRow) -> str:
    return str(row.faults) + (f" (+{row.skipped} skipped)" if row.skipped else "")


def result_rows(result: CheckResult) -> list[tuple[str, ...]]:
    out = []
    for kind in sorted(result.rows):
        row = result.rows[kind]
        dup = str(row.duplicated) + (f" (+{row.dup_unknown} unknown)" if row.dup_unknown else "")
        out.append(
            (
                result.config,
                kind,
                _faults(row),
                str(row.acked),
                str(row.counted),
                dup,
                _recovery(row),
                _violations(row.violations),
            )
        )
    total = Counter[str]()
    for row in result.rows.values():
        total.update(row.violations)
    faults = sum(r.faults for r in result.rows.values())
    acked = sum(r.acked for r in result.rows.values())
    counted = sum(r.counted for r in result.rows.values())
    dup = sum(r.duplicated for r in result.rows.values())
    out.append(
        (
            result.config,
            "all",
            str(faults),
            str(acked),
            str(counted),
            str(dup),
            "",
            _violations(total),
        )
    )
    return out


def result_table(results: list[CheckResult]) -> str:
    rows = [HEADER] + [r for result in results for r in result_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def result_summary(result: CheckResult, *, examples: int = 3) -> dict[str, Any]:
    """JSON-able: the rows, and a few violations of each kind as examples."""
    shown: dict[str, list[str]] = {}
    for v in result.violations:
        if len(shown.setdefault(v.kind, [])) < examples:
            shown[v.kind].append(f"[{v.fault_kind}] {v.detail}")
    return {"config": result.config, "table": result_rows(result), "examples": shown}
