"""The benchmark report (issue 2, item 10): one run measures, on loopback,

* the Python floor (bench/floors/bare_wsgi.py) and the framework floor
  (bench/floors/ninja_floor, django-ninja with no middleware), each on granian
  WSGI with the same workers and threads as Telemetron;
* Telemetron's real ``manage.py serve`` on the embedded default (the repository's
  config.toml: SQLite, ORM broker, durable acks, both validators and the
  StorageProcessor) on a fresh database in a temporary directory:
  single-event ``POST /ingest`` and ``POST /ingest/batch`` of 100 events, each
  with the 202 -> visible probe running beside the load;

and prints a table with ours/floor ratios and the issue's targets.

    bench/run.sh                                  # the whole report
    bench/run.sh --set http.threads=8 --json out.jsonl   # one knob changed
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backlog import BacklogSampler
from bench.load import WrkResult, wrk_run
from bench.machine import CpuMeter, CpuShare, load_average, tree_pss_mb
from bench.probe import MARKER_BASE, ProbeResult, VisibilityProbe
from bench.profile import children_of, profile_read, pyspy_start
from bench.servers import REPO, Server, start_floor, start_telemetron

_MARKER_BLOCKS = itertools.count()

TARGET_RATIO = 0.60
TARGET_P99_MS = 60.0
TARGET_BATCH_EPS = 50_000
TARGET_VISIBLE_P99_S = 1.5


@dataclass
class Phase:
    tag: str
    name: str
    wrk: WrkResult
    cpu: CpuShare
    load_before: str
    load_after: str
    probe: dict[str, Any] | None = None
    acked_events: int | None = None
    visible_events: int | None = None
    drain_s: float | None = None
    backlog_max: int | None = None
    backlog_end: int | None = None
    batches: int | None = None  # broker tasks written during the load
    # CPU seconds of the server's tree from the load's start until every acked
    # event was counted (so the workers' catching up after the load is in), split
    # into the web processes (granian) and the rest (serve and the queue workers).
    cpu_web_s: float | None = None
    cpu_workers_s: float | None = None
    pss_mb: float | None = None  # the serve tree's PSS at the end of the phase

    @property
    def events(self) -> int:
        """Events acknowledged (or requests, for the floors)."""
        if self.acked_events is not None:
            return self.acked_events
        return self.wrk.ok_requests * self.wrk.events_per_request

    def us_per(self, what: str, part: str) -> float:
        """CPU µs per ``what`` ("request" or "event") of ``part`` ("web", "workers", "all")."""
        web = self.cpu_web_s if self.cpu_web_s is not None else self.cpu.web_s
        workers = self.cpu_workers_s if self.cpu_workers_s is not None else self.cpu.workers_s
        seconds = {"web": web, "workers": workers, "all": web + workers}[part]
        count = self.wrk.ok_requests if what == "request" else self.events
        return 1e6 * seconds / count if count else float("nan")


@dataclass
class Options:
    threads: int
    connections: int
    duration: int
    warmup: int
    overrides: dict[str, str]
    floors: tuple[str, ...]
    ours: bool
    batch: bool
    probe_interval: float
    profile_dir: Path | None
    switch_interval: float | None
    profile_prefix: str = ""  # bench.compare: "before-" / "after-"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _probe_summary(result: ProbeResult) -> dict[str, Any]:
    return {
        "markers_acked": result.acked,
        "post_failures": result.post_failures,
        "never_visible": result.never_visible,
        "visible_p50_s": _pct(result.latencies_s, 50),
        "visible_p99_s": _pct(result.latencies_s, 99),
        "visible_max_s": max(result.latencies_s, default=float("nan")),
        "get_median_ms": 1000 * statistics.median(result.get_latencies_s)
        if result.get_latencies_s
        else float("nan"),
    }


def _events_count(server: Server) -> int:
    status, body = server.request("GET", "/stats")
    if status != 200:
        raise RuntimeError(f"GET /stats answered {status}: {body[:200]!r}")
    return int(json.loads(body)["events_count"])


def _drain(
    server: Server, expected: int, load_end: float, timeout_s: float = 180.0
) -> tuple[int, float]:
    """Wait until /stats counts ``expected`` events (or stops moving for 10 s);
    return (events counted, seconds after the load's end when it got there)."""
    start = time.monotonic()
    last, last_change = -1, start
    while time.monotonic() - start < timeout_s:
        count = _events_count(server)
        if count != last:
            last, last_change = count, time.monotonic()
        if count >= expected:
            reached = time.monotonic() - load_end
            # In-flight requests cut off when wrk stopped may still land: settle a moment.
            time.sleep(0.5)
            return _events_count(server), reached
        if time.monotonic() - last_change > 10:
            break
        time.sleep(0.1)
    return last, last_change - load_end


def _settle(server: Server, quiet_s: float = 1.5, timeout_s: float = 120.0) -> int:
    """Wait until /stats stops changing (the warm-up is processed); return the count."""
    start = time.monotonic()
    last, last_change = _events_count(server), time.monotonic()
    while time.monotonic() - start < timeout_s and time.monotonic() - last_change < quiet_s:
        time.sleep(0.1)
        count = _events_count(server)
        if count != last:
            last, last_change = count, time.monotonic()
    return last


def _measure(
    server: Server,
    tag: str,
    name: str,
    script: str,
    opts: Options,
    *,
    probe: bool = False,
    profile: bool = False,
    backlog_db: Path | None = None,
) -> tuple[Phase, ProbeResult | None, float, CpuMeter]:
    """One measured load; returns the phase, the probe's result, when the load
    ended and its CPU meter (still readable: :meth:`CpuMeter.since_start`)."""
    meter = CpuMeter(server.proc.pid)
    load_before = load_average()
    vis = None
    if probe:
        # Each phase has its own marker ids: a marker seen in an earlier phase
        # would look visible at once.
        first_id = MARKER_BASE + next(_MARKER_BLOCKS) * 10**9
        vis = VisibilityProbe(
            "127.0.0.1", server.port, interval_s=opts.probe_interval, first_id=first_id
        )
    spies: list[tuple[Path, subprocess.Popen[bytes]]] = []
    if profile and opts.profile_dir is not None:
        spies = _profile_start(server, opts, tag)
    backlog = BacklogSampler(backlog_db) if backlog_db is not None else None
    meter.start()
    if backlog is not None:
        backlog.start()
    if vis is not None:
        vis.start()
    wrk = wrk_run(
        server.url,
        script,
        threads=opts.threads,
        connections=opts.connections,
        duration_s=opts.duration,
    )
    load_end = time.monotonic()
    samples = backlog.stop() if backlog is not None else []
    cpu = meter.stop()
    probe_result = vis.stop() if vis is not None else None
    for path, spy in spies:
        _, err = spy.communicate(timeout=60)
        if not path.exists():
            print(f"py-spy wrote no profile: {err.decode()[-500:]}", file=sys.stderr)
    phase = Phase(
        tag=tag, name=name, wrk=wrk, cpu=cpu, load_before=load_before, load_after=load_average()
    )
    if probe_result is not None:
        phase.probe = _probe_summary(probe_result)
    if samples:
        phase.backlog_max, phase.backlog_end = max(samples), samples[-1]
    if backlog is not None:
        phase.batches = backlog.enqueued
    return phase, probe_result, load_end, meter


def _profile_start(
    server: Server, opts: Options, tag: str
) -> list[tuple[Path, subprocess.Popen[bytes]]]:
    assert opts.profile_dir is not None
    opts.profile_dir.mkdir(parents=True, exist_ok=True)
    kids = children_of(server.proc.pid)
    granian = [p for p in kids if _is_granian(p)]
    web = [w for g in granian for w in children_of(g)]
    cluster: list[int] = []
    todo = [p for p in kids if p not in granian]
    while todo:  # the qcluster sentinel, pusher, monitor and workers
        pid = todo.pop()
        cluster.append(pid)
        todo.extend(children_of(pid))
    spies = []
    for kind, pids in (("web", web), ("cluster", cluster)):
        for pid in pids:
            out = opts.profile_dir / f"{opts.profile_prefix}{tag}-{kind}{pid}.txt"
            spies.append((out, pyspy_start(pid, out, duration_s=max(opts.duration - 2, 1))))
    return spies


def _is_granian(pid: int) -> bool:
    try:
        return b"granian" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _warmup(server: Server, script: str, opts: Options) -> None:
    if opts.warmup > 0:
        wrk_run(
            server.url,
            script,
            threads=opts.threads,
            connections=opts.connections,
            duration_s=opts.warmup,
        )


def _floors(opts: Options, workers: int, threads: int, workdir: Path) -> list[Phase]:
    phases = []
    for tag, name, target in (
        ("python_floor", "Python floor (bare WSGI, json.loads, 202)", "bench.floors.bare_wsgi:app"),
        (
            "framework_floor",
            "framework floor (django-ninja sync, no middleware)",
            "bench.floors.ninja_floor.wsgi:application",
        ),
    ):
        if tag.removesuffix("_floor") not in opts.floors:
            continue
        server = start_floor(tag, target, workers=workers, threads=threads, workdir=workdir)
        try:
            _warmup(server, "ingest.lua", opts)
            phase, _, _, _ = _measure(server, tag, name, "ingest.lua", opts)
        finally:
            server.stop()
        phases.append(phase)
    return phases


def _ours(opts: Options, workdir: Path, tree: Path = REPO) -> tuple[list[Phase], int]:
    """Telemetron's phases; ``tree``: the source tree to serve (bench.compare
    serves an earlier revision's with the same virtualenv)."""
    server = start_telemetron(
        workdir, opts.overrides, switch_interval=opts.switch_interval, tree=tree
    )
    phases: list[Phase] = []
    try:
        _warmup(server, "ingest.lua", opts)
        base = _settle(server)
        runs = [("ingest", "Telemetron POST /ingest (1 event)", "ingest.lua")]
        if opts.batch:
            runs.append(("batch", "Telemetron POST /ingest/batch (100 events)", "batch.lua"))
        for tag, name, script in runs:
            phase, probe, load_end, meter = _measure(
                server,
                tag,
                name,
                script,
                opts,
                probe=True,
                profile=True,
                backlog_db=workdir / "telemetron.sqlite3",
            )
            acked = phase.wrk.ok_requests * phase.wrk.events_per_request
            acked += probe.acked if probe else 0
            visible, drain_s = _drain(server, base + acked, load_end)
            phase.acked_events, phase.visible_events, phase.drain_s = acked, visible - base, drain_s
            phase.cpu_web_s, phase.cpu_workers_s = meter.since_start()
            phase.pss_mb = tree_pss_mb(server.proc.pid)
            base = visible
            phases.append(phase)
    finally:
        code = server.stop()
    if code != 0:
        print(f"warning: serve exited with {code}; log: {server.log_path}", file=sys.stderr)
    return phases, code


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def _row(phase: Phase) -> str:
    w = phase.wrk
    events = f"{w.events_per_s:,.0f}" if w.events_per_request > 1 else ""
    errors = f"{w.status_errors}/{w.socket_errors}"
    return (
        f"| {phase.name} | {w.rps:,.0f} | {events} | {w.p50_ms:.1f} | {w.p99_ms:.1f} | "
        f"{errors} | {phase.load_before} -> {phase.load_after} | {phase.cpu.describe()} |"
    )


def render(result: dict[str, Any], phases: list[Phase]) -> str:
    lines = [
        f"run {result['started']} · commit {result['revision']} · "
        f"wrk -t{result['wrk_threads']} -c{result['connections']} -d{result['duration']}s · "
        f"http.workers={result['http_workers']} http.threads={result['http_threads']} · "
        f"overrides: {result['overrides'] or 'none'}",
        "",
        "| server / endpoint | req/s | events/s | p50 ms | p99 ms | 4xx-5xx/socket err "
        "| load avg 1m/5m before -> after | cores used during the phase |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(p) for p in phases]
    by_tag = {p.tag: p for p in phases}
    ours = by_tag.get("ingest")
    batch = by_tag.get("batch")
    py_floor = by_tag.get("python_floor")
    fw_floor = by_tag.get("framework_floor")
    lines.append("")
    for p in (ours, batch):
        if p is not None and p.probe is not None:
            pr = p.probe
            lines.append(
                f"202 -> visible under {p.name}: p50 {pr['visible_p50_s'] * 1000:.0f} ms, "
                f"p99 {pr['visible_p99_s'] * 1000:.0f} ms, max {pr['visible_max_s'] * 1000:.0f} ms "
                f"({pr['markers_acked']} markers, {pr['never_visible']} never visible, "
                f"{pr['post_failures']} not acked; resolution: GET /stats/{{id}} median "
                f"{pr['get_median_ms']:.1f} ms)"
            )
        if p is not None and p.acked_events is not None:
            lines.append(
                f"  acknowledged {p.acked_events:,} events, {p.visible_events:,} counted in /stats "
                f"(cut-off in-flight requests may add up to {result['connections']} requests), "
                f"all counted {p.drain_s:.1f} s after the load ended"
            )
        if p is not None and p.batches:
            lines.append(
                f"  broker: {p.batches:,} batches written during the load "
                f"({p.batches / p.wrk.duration_s:,.0f}/s, "
                f"{p.wrk.ok_requests * p.wrk.events_per_request / p.batches:.1f} events each); "
                f"backlog max {p.backlog_max}, {p.backlog_end} at the end"
            )
    lines.append("")
    checks: list[tuple[str, bool | None]] = []
    if ours and fw_floor:
        ratio = ours.wrk.rps / fw_floor.wrk.rps
        lines.append(f"ours / framework floor: {ratio:.2f}")
        checks.append(
            (
                f"/ingest >= {TARGET_RATIO:.0%} of framework floor ({ratio:.0%})",
                ratio >= TARGET_RATIO,
            )
        )
    if ours and py_floor:
        lines.append(f"ours / Python floor: {ours.wrk.rps / py_floor.wrk.rps:.2f}")
    if fw_floor and py_floor:
        lines.append(f"framework floor / Python floor: {fw_floor.wrk.rps / py_floor.wrk.rps:.2f}")
    if ours:
        checks.append(
            (
                f"/ingest p99 < {TARGET_P99_MS:.0f} ms ({ours.wrk.p99_ms:.1f} ms)",
                ours.wrk.p99_ms < TARGET_P99_MS,
            )
        )
    if batch:
        checks.append(
            (
                f"/ingest/batch >= {TARGET_BATCH_EPS:,} events/s ({batch.wrk.events_per_s:,.0f})",
                batch.wrk.events_per_s >= TARGET_BATCH_EPS,
            )
        )
    if ours and ours.probe:
        p99 = ours.probe["visible_p99_s"]
        checks.append(
            (
                f"202 -> visible p99 < {TARGET_VISIBLE_P99_S} s under /ingest load ({p99:.2f} s)",
                p99 < TARGET_VISIBLE_P99_S,
            )
        )
    if batch and batch.probe:
        p99 = batch.probe["visible_p99_s"]
        checks.append(
            (
                f"202 -> visible p99 < {TARGET_VISIBLE_P99_S} s under /ingest/batch load "
                f"({p99:.2f} s)",
                p99 < TARGET_VISIBLE_P99_S,
            )
        )
    lines.append("")
    lines += [f"target {'MET ' if ok else 'MISSED'}  {text}" for text, ok in checks]
    return "\n".join(lines)


def parse_overrides(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"--set wants section.key=value, got {item!r}")
        section, name = key.split(".", 1)
        env[f"TELEMETRON_{section.upper()}__{name.upper()}"] = value
    return env


def _resolved_http(overrides: dict[str, str]) -> tuple[int, int]:
    """http.workers/threads as Telemetron will see them (config.toml + overrides)."""
    import os

    from core.config import load_config

    saved = dict(os.environ)
    try:
        os.environ.update(overrides)
        cfg = load_config(REPO / "config.toml")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return cfg.http.workers, cfg.http.threads


def profile_summaries_print(directory: Path, *, prefix: str, top: int) -> None:
    """Each load's profile of each kind of process (``{prefix}{tag}-{kind}{pid}.txt``
    in ``directory``) summarised: its ``top`` functions, printed and written
    beside them as ``{prefix}{tag}-{kind}-summary.md``."""
    for tag in ("ingest", "batch"):
        for kind in ("web", "cluster"):
            files = sorted(directory.glob(f"{prefix}{tag}-{kind}[0-9]*.txt"))
            if files:
                summary = profile_read(files).table(top)
                (directory / f"{prefix}{tag}-{kind}-summary.md").write_text(summary + "\n")
                label = f" ({prefix.rstrip('-')})" if prefix else ""
                print(f"\nprofile{label}: {kind} processes under {tag} load:\n{summary}")


def load_options(parser: argparse.ArgumentParser, *, sides: str) -> None:
    """The options of the measured loads (wrk's and the server's), ``--set``
    applying ``sides`` ("for this run", "on both sides")."""
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured load (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override a config.toml key {sides}, e.g. http.threads=8 (repeatable)",
    )


def load_options_read(args: argparse.Namespace, **rest: Any) -> tuple[Options, int, int]:
    """The :func:`load_options` given, as :class:`Options` (``rest``: its other
    fields), and the server's HTTP workers and threads they resolve to."""
    overrides = parse_overrides(args.set)
    workers, threads = _resolved_http(overrides)
    opts = Options(
        threads=args.wrk_threads,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        overrides=overrides,
        **rest,
    )
    return opts, workers, threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark Telemetron's serve against a Python floor and a framework floor "
        "(loopback only) and print the report table."
    )
    load_options(parser, sides="for this run")
    parser.add_argument(
        "--floors",
        choices=("both", "python", "framework", "none"),
        default="both",
        help="which floors to measure (both)",
    )
    parser.add_argument("--no-ours", action="store_true", help="measure only the floors")
    parser.add_argument("--no-batch", action="store_true", help="skip /ingest/batch")
    parser.add_argument(
        "--probe-interval", type=float, default=0.05, help="seconds between markers (0.05)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy record --gil every web worker during the measured loads; "
        "write collapsed stacks and a summary to DIR",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        metavar="SECONDS",
        help="experiment: sys.setswitchinterval() in Telemetron's processes "
        "(through a sitecustomize on PYTHONPATH; Python's default is 0.005)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="append the result as JSON")
    args = parser.parse_args(argv)

    opts, workers, threads = load_options_read(
        args,
        floors=("python", "framework") if args.floors == "both" else (args.floors,),
        ours=not args.no_ours,
        batch=not args.no_batch,
        probe_interval=args.probe_interval,
        profile_dir=args.profile,
        switch_interval=args.switch_interval,
    )
    result: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": _git_revision(),
        "wrk_threads": opts.threads,
        "connections": opts.connections,
        "duration": opts.duration,
        "http_workers": workers,
        "http_threads": threads,
        "overrides": " ".join(
            args.set + ([f"switch-interval={args.switch_interval}"] if args.switch_interval else [])
        ),
    }
    with tempfile.TemporaryDirectory(prefix="telemetron-bench-") as tmp:
        workdir = Path(tmp)
        phases: list[Phase] = []
        phases += _floors(opts, workers, threads, workdir)
        if opts.ours:
            ours, code = _ours(opts, workdir)
            phases += ours
            result["serve_exit_code"] = code
    print(render(result, phases))
    if opts.profile_dir is not None:
        profile_summaries_print(opts.profile_dir, prefix="", top=25)
    if args.json:
        result["phases"] = [asdict(p) for p in phases]
        with args.json.open("a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
