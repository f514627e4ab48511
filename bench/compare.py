"""Before and after in one run (issue 11): the framework floor once, then
Telemetron's ``/ingest`` and ``/ingest/batch`` loads (bench/report.py) on an
earlier revision and on this tree, then the drain of a queued backlog
(bench/drain.py) on both, and prints the figures side by side with the server
CPU per request and per event, split into the web processes (granian) and the
queue workers (the rest of the ``serve`` tree), read from ``/proc``.

    make bench                                     # BEFORE: $BENCH_BEFORE, else main
    .venv/bin/python -m bench.compare --before 8f0ec20 --profile bench/.work/profile

The earlier revision is exported (``git archive``) to ``bench/.work/before-<rev>``
and served with this virtualenv (its directory first on ``sys.path``), so both
sides run the same dependencies; a revision that needs others is not comparable
this way. The machine may be shared: the load average is printed with every
figure, and CPU per event is the steadier figure (rates swing ±20 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import (
    Phase,
    _floors,
    _git_revision,
    _ours,
    load_options,
    load_options_read,
    profile_summaries_print,
    render,
)
from bench.servers import REPO

__all__ = ["main"]

WORK = REPO / "bench" / ".work"

# The targets (bench only, never a test).
BATCH_EPS = 50_000
BATCH_FLOOR_SHARE = 15  # issue 23: /ingest/batch CPU/event ≤ the floor's CPU/request / 15
DRAIN_EPS = {"sqlite-orm": 40_000, "pg-orm": 15_000}
DRAIN_SHARE = {"pg-orm": 0.35}  # issue 23: of the same run's drain with no processor
RATIO = 0.60
P99_MS = 60.0
CPU_RATIO = 1.6
VISIBLE_P99_S = 1.0
PSS_MB = 400.0


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def checkout(rev: str) -> tuple[str, Path]:
    """The revision's tree in bench/.work/before-<short sha> (exported once)."""
    sha = _git("rev-parse", "--short", f"{rev}^{{commit}}")
    tree = WORK / f"before-{sha}"
    if not (tree / "manage.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return sha, tree


def drain_runs(
    tree: Path, *, setups: list[str], workers: int, batches: int, out: Path
) -> list[dict[str, Any]]:
    """bench/drain.py of ``tree`` (StorageProcessor, then no processor: the
    queue's own ceiling), as JSON rows."""
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "bench.drain", "--setups", *setups, "--workers", str(workers)]
    cmd += ["--processors", "storage", "none", "--batches", str(batches), "--json", str(out)]
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        print(f"drain in {tree.name} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def _by_tag(phases: list[Phase]) -> dict[str, Phase]:
    return {p.tag: p for p in phases}


def _end_to_end(phase: Phase | None) -> float | None:
    """Events counted in /stats per second, from the load's start until the last
    acknowledged one was counted."""
    if phase is None or phase.visible_events is None or phase.drain_s is None:
        return None
    return phase.visible_events / (phase.wrk.duration_s + max(phase.drain_s, 0.0))


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    if value is None or value != value:  # None or NaN
        return ""
    return format(value, spec)


def side_by_side(
    floor: Phase | None,
    sides: dict[str, list[Phase]],
    drains: dict[str, list[dict[str, Any]]],
) -> str:
    """The before/after table (one column per side)."""
    labels = list(sides)
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, values: list[str]) -> None:
        rows.append((name, values))

    tags = {label: _by_tag(phases) for label, phases in sides.items()}
    floor_us = floor.us_per("request", "web") if floor else None
    if floor is not None:
        row(
            "framework floor: req/s (server CPU µs/request)",
            [f"{floor.wrk.rps:,.0f} ({floor_us:.0f})"] * len(labels),
        )
    single = [tags[label].get("ingest") for label in labels]
    batch = [tags[label].get("batch") for label in labels]
    row(
        "`/ingest`: req/s, p50 / p99 ms",
        [f"{p.wrk.rps:,.0f}, {p.wrk.p50_ms:.1f} / {p.wrk.p99_ms:.1f}" if p else "" for p in single],
    )
    row(
        "`/ingest`: server CPU µs/request: web + workers = all",
        [
            f"{p.us_per('request', 'web'):.0f} + {p.us_per('request', 'workers'):.0f} = "
            f"{p.us_per('request', 'all'):.0f}"
            if p
            else ""
            for p in single
        ],
    )
    if floor is not None and floor_us:
        row(
            "`/ingest` / floor: req/s ratio (CPU ratio)",
            [
                f"{p.wrk.rps / floor.wrk.rps:.2f} ({p.us_per('request', 'all') / floor_us:.1f}x)"
                if p
                else ""
                for p in single
            ],
        )
    row(
        "`/ingest/batch` 100 events: events/s, p99 ms",
        [f"{p.wrk.events_per_s:,.0f}, {p.wrk.p99_ms:.1f}" if p else "" for p in batch],
    )
    row(
        "`/ingest/batch`: events/s counted end to end (counted / (load + catch-up))",
        [_fmt(_end_to_end(p)) for p in batch],
    )
    row(
        "`/ingest/batch`: server CPU µs/event: web + workers = all",
        [
            f"{p.us_per('event', 'web'):.1f} + {p.us_per('event', 'workers'):.1f} = "
            f"{p.us_per('event', 'all'):.1f}"
            if p
            else ""
            for p in batch
        ],
    )
    for tag, name in (("ingest", "`/ingest`"), ("batch", "`/ingest/batch`")):
        phases = [tags[label].get(tag) for label in labels]
        row(
            f"{name}: acked → counted in /stats (s after the load)",
            [
                f"{p.acked_events:,} → {p.visible_events:,} ({p.drain_s:.1f} s)"
                if p and p.acked_events is not None and p.visible_events is not None
                else ""
                for p in phases
            ],
        )
        row(
            f"{name}: 202 → visible p50 / p99 ms",
            [
                f"{1000 * p.probe['visible_p50_s']:.0f} / {1000 * p.probe['visible_p99_s']:.0f}"
                if p and p.probe
                else ""
                for p in phases
            ],
        )
    row("serve tree PSS after the batch load, MB", [_fmt(p.pss_mb if p else None) for p in batch])
    for label in labels:
        for run in drains.get(label, []):
            what = "" if run.get("processor", "storage") == "storage" else ", no processor"
            name = f"drain {run['setup']}{what}, {run['workers']} workers: events/s"
            name += " (cluster µs/event"
            name += ", PostgreSQL µs/event)" if run["setup"].startswith("pg") else ")"
            values = ["" for _ in labels]
            idx = labels.index(label)
            pg = f", {run['database_us_per_event']}" if run["setup"].startswith("pg") else ""
            values[idx] = f"{run['events_per_s']:,} ({run['cluster_us_per_event']}{pg})"
            existing = next((r for r in rows if r[0] == name), None)
            if existing is None:
                row(name, values)
            else:
                existing[1][idx] = values[idx]
    load = [
        ", ".join(f"{p.load_before}" for p in sides[label] if p.tag in ("ingest", "batch"))
        for label in labels
    ]
    row("load average 1m/5m before each load", load)
    out = ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return "\n".join(out)


def targets(
    floor: Phase | None, phases: list[Phase], drains: list[dict[str, Any]]
) -> list[tuple[str, bool]]:
    """The issue's targets against one side's figures."""
    tags = _by_tag(phases)
    single, batch = tags.get("ingest"), tags.get("batch")
    out: list[tuple[str, bool]] = []
    if batch is not None:
        eps, us = _end_to_end(batch) or 0.0, batch.us_per("event", "all")
        out.append(
            (
                f"/ingest/batch ≥ {BATCH_EPS:,} events/s counted end to end ({eps:,.0f}; "
                f"{batch.wrk.events_per_s:,.0f} accepted)",
                eps >= BATCH_EPS,
            )
        )
        if floor is not None:
            goal = floor.us_per("request", "web") / BATCH_FLOOR_SHARE
            out.append(
                (
                    f"/ingest/batch CPU/event ≤ 1/{BATCH_FLOOR_SHARE} of the floor's CPU/request"
                    f" ({goal:.1f} µs; {us:.1f}, 1/{floor.us_per('request', 'web') / us:.1f})",
                    us <= goal,
                )
            )
        if batch.probe:
            p99 = batch.probe["visible_p99_s"]
            out.append(
                (f"202 → visible p99 < 1 s under batch load ({p99:.2f} s)", p99 < VISIBLE_P99_S)
            )
        if batch.pss_mb is not None:
            out.append(
                (
                    f"serve tree PSS < {PSS_MB:.0f} MB after the batch load ({batch.pss_mb:.0f};"
                    " a 10 s load, not the issue's 10 minutes)",
                    batch.pss_mb < PSS_MB,
                )
            )
    if single is not None:
        if floor is not None:
            ratio = single.wrk.rps / floor.wrk.rps
            cpu = single.us_per("request", "all") / floor.us_per("request", "web")
            out.append(
                (f"/ingest ≥ {RATIO:.0%} of the floor's req/s ({ratio:.0%})", ratio >= RATIO)
            )
            out.append(
                (f"/ingest CPU/request ≤ {CPU_RATIO}x the floor's ({cpu:.1f}x)", cpu <= CPU_RATIO)
            )
        out.append(
            (f"/ingest p99 < {P99_MS:.0f} ms ({single.wrk.p99_ms:.1f})", single.wrk.p99_ms < P99_MS)
        )
        if single.probe:
            p99 = single.probe["visible_p99_s"]
            out.append(
                (f"202 → visible p99 < 1 s under /ingest load ({p99:.2f} s)", p99 < VISIBLE_P99_S)
            )
    bare = {
        (r["setup"], r["workers"]): r["events_per_s"] for r in drains if r["processor"] == "none"
    }
    for run in drains:
        if run["processor"] != "storage":
            continue
        share, ceiling = DRAIN_SHARE.get(run["setup"]), bare.get((run["setup"], run["workers"]))
        if share is not None and ceiling:
            out.append(
                (
                    f"drain {run['setup']} {run['workers']} workers ≥ {share:.0%} of the drain "
                    f"with no processor ({run['events_per_s'] / ceiling:.0%}: "
                    f"{run['events_per_s']:,} of {ceiling:,} events/s)",
                    run["events_per_s"] >= share * ceiling,
                )
            )
        eps_goal = DRAIN_EPS.get(run["setup"])
        if eps_goal is not None:
            out.append(
                (
                    f"drain {run['setup']} {run['workers']} workers ≥ {eps_goal:,} events/s "
                    f"({run['events_per_s']:,})",
                    run["events_per_s"] >= eps_goal,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark an earlier revision (BEFORE) and this tree in one run and print "
        "the figures side by side, with server CPU per request and per event (web / workers)."
    )
    parser.add_argument(
        "--before",
        default=os.environ.get("BENCH_BEFORE", "main"),
        help="the revision to compare with (default: $BENCH_BEFORE, else main)",
    )
    load_options(parser, sides="on both sides")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy record --gil every web and cluster process during the loads (both "
        "sides); write the collapsed stacks and per-process summaries to DIR",
    )
    parser.add_argument(
        "--drain-setups",
        nargs="*",
        default=["sqlite-orm", "pg-orm"],
        help="bench/drain.py setups to run on both sides (sqlite-orm pg-orm; none: skip)",
    )
    parser.add_argument(
        "--drain-workers", type=int, default=2, help="queue workers for the drain (2)"
    )
    parser.add_argument(
        "--drain-batches", type=int, default=1000, help="100-event batches queued per drain (1000)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="append the result as JSON")
    args = parser.parse_args(argv)

    before_sha, before_tree = checkout(args.before)
    opts, workers, threads = load_options_read(
        args,
        floors=("framework",),
        ours=True,
        batch=True,
        probe_interval=0.05,
        profile_dir=args.profile,
        switch_interval=None,
    )
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    after_rev = _git_revision()
    sides: dict[str, list[Phase]] = {}
    drains: dict[str, list[dict[str, Any]]] = {}
    labels = {
        "before": (f"before ({before_sha})", before_tree),
        "after": (f"after ({after_rev})", REPO),
    }
    with tempfile.TemporaryDirectory(prefix="telemetron-compare-") as tmp:
        workdir = Path(tmp)
        floors = _floors(opts, workers, threads, workdir)
        floor = floors[0] if floors else None
        for key, (label, tree) in labels.items():
            opts.profile_prefix = f"{key}-"
            side_dir = workdir / key
            side_dir.mkdir()
            phases, code = _ours(opts, side_dir, tree)
            if code != 0:
                print(f"warning: {label}: serve exited with {code}", file=sys.stderr)
            sides[label] = phases
        for key, (label, tree) in labels.items():
            if args.drain_setups:
                drains[label] = drain_runs(
                    tree,
                    setups=args.drain_setups,
                    workers=args.drain_workers,
                    batches=args.drain_batches,
                    out=workdir / f"drain-{key}.jsonl",
                )
    common = {
        "started": started,
        "wrk_threads": opts.threads,
        "connections": opts.connections,
        "duration": opts.duration,
        "http_workers": workers,
        "http_threads": threads,
        "overrides": " ".join(args.set),
    }
    print(
        f"run {started} · before {before_sha} · after {after_rev} · wrk -t{opts.threads} "
        f"-c{opts.connections} -d{opts.duration}s · http.workers={workers} "
        f"http.threads={threads} · overrides: {common['overrides'] or 'none'}\n"
    )
    print(side_by_side(floor, sides, drains))
    for label, phases in sides.items():
        print(f"\n### {label}\n")
        print(render({**common, "revision": label}, ([floor] if floor else []) + phases))
        print()
        for text, ok in targets(floor, phases, drains.get(label, [])):
            print(f"target {'MET   ' if ok else 'MISSED'}  {text}")
    if args.profile is not None:
        for key in labels:
            profile_summaries_print(args.profile, prefix=f"{key}-", top=15)
    if args.json:
        result = {
            **common,
            "before": before_sha,
            "after": after_rev,
            "floor": asdict(floor) if floor else None,
            "sides": {label: [asdict(p) for p in phases] for label, phases in sides.items()},
            "drains": drains,
        }
        with args.json.open("a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
