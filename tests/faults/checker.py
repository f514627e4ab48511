"""The checker: reads a run's whole history afterwards against the invariants
(issue 21: the promise kept under faults) and sums it up per fault kind.

Violations (``kind``):

* ``missing`` — an operation answered ``202``/``200`` whose events are not all
  counted by the end of the run's final wait; ``late`` — counted, but still
  seen uncounted more than ``DEADLINE_S`` after the later of its answer and the
  last fault's end; or, for a fault followed by a quiet spell longer than
  ``DEADLINE_S``, ``/stats`` not counting what was acknowledged by its end
  within ``DEADLINE_S`` of it (see :func:`_recoveries`);
* ``duplicated`` — an operation's events with ids counted more than once, or an
  acknowledged attempt counted more than its events;
* ``counted_503`` — an attempt answered ``503`` (not saying its outcome is
  unknown) or ``429`` whose events were counted;
* ``status_500`` — any ``5xx`` answer but ``503``; ``bad_status`` — any other
  ``4xx`` but ``429`` (the client sends valid events), or a batch not wholly
  accepted;
* ``unanswered`` — a request answered after more than ``commit_timeout`` + 5 s,
  or not at all (the client's timeout);
* ``readyz_slow`` — a ``/readyz`` answered after more than 1 s, or not at all
  (but while the nemesis holds that node's web worker stopped);
* ``orphan`` — a process of a node's tree still running ``ORPHAN_GRACE_S``
  after the node's process exited;
* ``dead_letter`` — a dead letter (the runs' only plugin refuses nothing, so
  every one comes from a transient fault).

An attempt that got no answer (connection error, timeout) or a ``503`` saying
"unknown" may have been committed: its events counting is not a violation, and
for events without ids a retry after it may count them twice (``dup_unknown``,
reported, not a violation: a client cannot tell)."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.faults.deployment import ORPHAN_GRACE_S
from tests.faults.sdkclient import attempt_type

__all__ = ["DEADLINE_S", "CheckResult", "KindRow", "Violation", "check"]

DEADLINE_S = 10.0
READYZ_LIMIT_S = 1.0
ACKED = (200, 202)
NOT_TAKEN = (503, 429)
BASELINE = "(no fault yet)"
WHOLE_RUN = "(whole run)"


@dataclass(frozen=True)
class Violation:
    kind: str
    fault_kind: str  # the fault under way when it happened (see _Windows)
    detail: str


@dataclass
class KindRow:
    faults: int = 0
    skipped: int = 0
    ops: int = 0
    acked: int = 0  # events of acknowledged operations
    counted: int = 0  # of those, counted
    duplicated: int = 0  # events counted more than once
    dup_unknown: int = 0  # events without ids counted twice after an unknown outcome
    recovery: list[float] = field(default_factory=list)
    unrecovered: int = 0
    violations: Counter[str] = field(default_factory=Counter)


@dataclass
class CheckResult:
    config: str
    rows: dict[str, KindRow]
    violations: list[Violation]

    def of(self, kind: str) -> list[Violation]:
        return [v for v in self.violations if v.kind == kind]


class _Windows:
    """Each moment of the run belongs to the fault last started before it."""

    def __init__(self, faults: list[dict[str, Any]]) -> None:
        self.starts = [f["start"] for f in faults]
        self.kinds = [f["kind"] for f in faults]

    def kind_at(self, t: float) -> str:
        at = bisect.bisect_right(self.starts, t) - 1
        return self.kinds[at] if at >= 0 else BASELINE


class _Counts:
    """Each event type's count over the final polls (``counts`` records)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.times = [r["t"] for r in records]
        self.final: dict[str, int] = {}
        self.changes: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for r in records:
            for type_, count in r["types"].items():
                self.final[type_] = count
                self.changes[type_].append((r["t"], count))

    def at(self, type_: str, t: float) -> int:
        count = 0
        for when, value in self.changes.get(type_, []):
            if when > t:
                break
            count = value
        return count

    def seen_short(self, types: list[str], need: int, after: float) -> bool:
        """Was the sum of ``types`` below ``need`` at a poll later than ``after``?"""
        at = bisect.bisect_right(self.times, after)
        late_polls = self.times[at:]
        if not late_polls:
            return False
        first_full = next(
            (t for t in late_polls if sum(self.at(x, t) for x in types) >= need), None
        )
        return first_full is None or first_full > late_polls[0]


def check(records: list[dict[str, Any]], *, commit_timeout: float) -> CheckResult:
    run = next((r for r in records if r["rec"] == "run"), {"config": "?"})
    faults = sorted((r for r in records if r["rec"] == "fault"), key=lambda f: f["start"])
    windows = _Windows([f for f in faults if "skipped" not in f])
    counts = _Counts([r for r in records if r["rec"] == "counts"])
    last_end = max((f["end"] for f in faults), default=0.0)
    rows: dict[str, KindRow] = defaultdict(KindRow)
    violations: list[Violation] = []
    for f in faults:
        rows[f["kind"]].faults += "skipped" not in f
        rows[f["kind"]].skipped += "skipped" in f
    ops: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["rec"] == "attempt":
            ops[r["op"]].append(r)
    for attempts in ops.values():
        attempts.sort(key=lambda a: a["a"])
        kind = windows.kind_at(attempts[0]["t0"])
        found = _operation(attempts, counts, rows[kind], commit_timeout, last_end)
        violations += [Violation(v, kind, detail) for v, detail in found]
    violations += _probes(records, windows) + _exits(records, windows) + _dead_letters(records)
    violations += _recoveries(records, faults, rows)
    for v in violations:
        rows[v.fault_kind].violations[v.kind] += 1
    return CheckResult(run.get("config", "?"), dict(rows), violations)


def _attempt_problems(
    a: dict[str, Any], counted: int, commit_timeout: float
) -> list[tuple[str, str]]:
    found = []
    status, what = a["status"], f"op {a['op']} attempt {a['a']} ({a['kind']}, {a['n']} events)"
    if isinstance(status, int) and status >= 500 and status != 503:
        found.append(("status_500", f"{what}: {status} {a.get('error', '')[:120]}"))
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        found.append(("bad_status", f"{what}: {status} {a.get('error', '')[:120]}"))
    if a.get("accepted") not in (None, a["n"]):
        found.append(("bad_status", f"{what}: accepted {a['accepted']} of {a['n']}"))
    took = a["t1"] - a["t0"]
    if status == "timeout" or took > commit_timeout + 5:
        found.append(("unanswered", f"{what}: {status} after {took:.1f} s"))
    unknown = "unknown" in str(a.get("error", "")).lower()
    if status in NOT_TAKEN and not unknown and counted > 0:
        found.append(("counted_503", f"{what}: answered {status}, {counted} counted"))
    return found


def _operation(
    attempts: list[dict[str, Any]],
    counts: _Counts,
    row: KindRow,
    commit_timeout: float,
    last_end: float,
) -> list[tuple[str, str]]:
    first = attempts[0]
    n, op = first["n"], first["op"]
    types = {a["a"]: attempt_type(op, a["a"]) for a in attempts}
    counted = {a["a"]: counts.final.get(types[a["a"]], 0) for a in attempts}
    total = sum(counted.values())
    found: list[tuple[str, str]] = []
    for a in attempts:
        found += _attempt_problems(a, counted[a["a"]], commit_timeout)
    acked = next((a for a in attempts if a["status"] in ACKED), None)
    what = f"op {op} ({first['kind']}, {n} events, {'ids' if first['ids'] else 'no ids'})"
    row.ops += 1
    extra = max(0, total - n) if first["ids"] else max(0, counted[acked["a"]] - n) if acked else 0
    if extra:
        found.append(("duplicated", f"{what}: counted {total} ({counted})"))
        row.duplicated += extra
    if acked is None:
        return found
    row.acked += n
    mine = list(types.values()) if first["ids"] else [types[acked["a"]]]
    got = sum(counts.final.get(t, 0) for t in mine)
    row.counted += min(got, n)
    if not first["ids"]:
        row.dup_unknown += sum(c for a, c in counted.items() if a != acked["a"])
    deadline = max(last_end, acked["t1"]) + DEADLINE_S
    if got < n:
        found.append(
            ("missing", f"{what}: answered {acked['status']} at {acked['t1']:.1f} s, {got} counted")
        )
    elif counts.seen_short(mine, n, deadline):
        found.append(
            (
                "late",
                f"{what}: answered at {acked['t1']:.1f} s, not all counted at {deadline:.1f} s",
            )
        )
    return found


def _probes(records: list[dict[str, Any]], windows: _Windows) -> list[Violation]:
    """Slow ``/readyz`` answers, but those of a node whose web worker the nemesis
    had frozen meanwhile (a stopped server cannot answer; the promise is about
    what its dependencies do)."""
    frozen = [
        (f["node"], f["start"], f["end"])
        for f in records
        if f["rec"] == "fault" and f["kind"] == "stop:granian-worker" and "node" in f
    ]
    out = []
    for p in records:
        if p["rec"] != "probe" or (p["status"] != "timeout" and p["dt"] <= READYZ_LIMIT_S):
            continue
        if any(n == p["node"] and s < p["t0"] + p["dt"] and p["t0"] < e for n, s, e in frozen):
            continue
        detail = f"{p['node']} /readyz at {p['t0']:.1f} s: {p['status']} after {p['dt']:.2f} s"
        out.append(Violation("readyz_slow", windows.kind_at(p["t0"]), detail))
    return out


def _exits(records: list[dict[str, Any]], windows: _Windows) -> list[Violation]:
    out = []
    for r in records:
        if r["rec"] == "exit" and r["leftovers"]:
            roles = ", ".join(sorted(Counter(r["leftovers"].values()).elements()))
            node = f"{r['node']} ({r['cause']}, code {r['code']})"
            detail = f"{node}: {roles} still running {ORPHAN_GRACE_S:.0f} s later"
            out.append(Violation("orphan", windows.kind_at(r["t"]), detail))
    return out


def _dead_letters(records: list[dict[str, Any]]) -> list[Violation]:
    out = []
    for r in records:
        if r["rec"] == "final":
            for dl in r.get("dead_letters", []):
                out.append(Violation("dead_letter", WHOLE_RUN, str(dl)[:200]))
    return out


def _recoveries(
    records: list[dict[str, Any]], faults: list[dict[str, Any]], rows: dict[str, KindRow]
) -> list[Violation]:
    """Each fault's recovery: from its end until the service acknowledges a
    request sent after it and ``/stats`` counts every event acknowledged before it.
    A fault the next one follows after more than ``DEADLINE_S`` (a quiet spell:
    nothing else to blame) whose acknowledged events ``/stats`` does not count
    within ``DEADLINE_S`` is ``late`` (``/stats`` counts every event, acknowledged
    or not: what it lacks is certainly late; the last fault is checked event by
    event from the final counts)."""
    acked = sorted(
        (a["t1"], a["n"]) for a in records if a["rec"] == "attempt" and a["status"] in ACKED
    )
    ack_times = [t for t, _ in acked]
    cumulative = [0]
    for _, n in acked:
        cumulative.append(cumulative[-1] + n)
    stats = [(r["t"], r["events"]) for r in records if r["rec"] == "stats"]
    sent_after = sorted(
        (a["t0"], a["t1"]) for a in records if a["rec"] == "attempt" and a["status"] in ACKED
    )
    faults = [f for f in faults if "skipped" not in f]
    late = []
    for at, f in enumerate(faults):
        following = faults[at + 1] if at + 1 < len(faults) else None
        target = cumulative[bisect.bisect_right(ack_times, f["end"])]
        counted_at = next((t for t, events in stats if t >= f["end"] and events >= target), None)
        served_at = next((t1 for t0, t1 in sent_after if t0 >= f["end"]), None)
        if counted_at is None or served_at is None:
            rows[f["kind"]].unrecovered += 1
        else:
            rows[f["kind"]].recovery.append(round(max(counted_at, served_at) - f["end"], 2))
        quiet = following is not None and following["start"] - f["end"] > DEADLINE_S
        if quiet and (counted_at is None or counted_at - f["end"] > DEADLINE_S):
            shown = "never" if counted_at is None else f"{counted_at - f['end']:.1f} s later"
            detail = f"{target} events acknowledged by its end at {f['end']:.1f} s: counted {shown}"
            late.append(Violation("late", f["kind"], detail))
    return late
