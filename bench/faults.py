"""Fault runs (issue 21): the injector of tests/faults/ — an SDK-like client
load, a seeded nemesis (kills, freezes, cuts, delays of one process or one
dependency at a time) and the checker of the invariants — on each
configuration in turn, for a share of --minutes each; then the table
configuration x fault kind → faults, events acknowledged / counted /
duplicated, recovery time p50 / max, violations.

    .venv/bin/python -m bench.faults --seed 1 --minutes 30 --config all
    .venv/bin/python -m bench.faults --seed 7 --minutes 5 --config pg-redis
    .venv/bin/python -m bench.faults --check bench/.work/faults/*/history-*.jsonl

Loopback only. PostgreSQL and Redis are the run's own (initdb and redis-server
on free ports under a temporary directory; initdb runs as the postgres user when
started as root); the histories (JSON Lines) and a summary are written under
--out. Bounded: each configuration's faults stop when its share of the time is
up; then at most --final-wait seconds for the counts."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from tests.faults.checker import CheckResult, check
from tests.faults.configs import CONFIGURATIONS, FaultServices
from tests.faults.history import read_history
from tests.faults.report import result_summary, result_table
from tests.faults.run import RunOptions, run_configuration

OUT = Path(__file__).resolve().parent / ".work" / "faults"


def _configs(text: str) -> list[str]:
    names = list(CONFIGURATIONS) if text == "all" else [c.strip() for c in text.split(",")]
    unknown = [c for c in names if c not in CONFIGURATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown configuration {', '.join(unknown)}:"
            f" all, or some of {', '.join(CONFIGURATIONS)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults and the load (1)")
    parser.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="minutes of faults over all configurations, shared evenly (30)",
    )
    parser.add_argument(
        "--config",
        type=_configs,
        default=list(CONFIGURATIONS),
        help=f"all (default), or a comma-separated list of: {', '.join(CONFIGURATIONS)}",
    )
    parser.add_argument(
        "--final-wait",
        type=float,
        default=120.0,
        help="seconds after the last fault to wait for the counts (120)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="share of faults followed by a quiet spell in which the checker judges"
        " whether that fault's acknowledged events are counted within 10 s (0.2)",
    )
    parser.add_argument("--clients", type=int, default=4, help="client threads (4)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"histories and summary ({OUT})")
    parser.add_argument(
        "--check",
        type=Path,
        nargs="+",
        metavar="HISTORY",
        help="run nothing: check these histories (JSON Lines of earlier runs) and print the table",
    )
    return parser


def _check_only(paths: list[Path]) -> int:
    results = []
    for path in paths:
        records = list(read_history(path))
        run = next(r for r in records if r["rec"] == "run")
        results.append(check(records, commit_timeout=float(run["commit_timeout"])))
    print(result_table(results))
    for result in results:
        for kind, examples in result_summary(result)["examples"].items():
            print(f"{result.config} {kind}: " + " | ".join(examples))
    return 0


def _run_one(
    args: argparse.Namespace, n: int, config: str, services: FaultServices, tmp: Path, out: Path
) -> tuple[CheckResult | None, dict[str, Any]]:
    """One configuration's run; an error is reported and the next configuration runs."""
    share = args.minutes * 60 / len(args.config)
    options = RunOptions(
        config=config,
        seed=args.seed * 100 + n,
        seconds=share,
        final_wait_s=args.final_wait,
        settle=args.settle,
        clients=args.clients,
    )
    started = time.monotonic()
    print(f"faults: {config}, {share / 60:.1f} min of faults ...", flush=True)
    try:
        result, history = run_configuration(options, services=services, workdir=tmp / config)
    except Exception:
        traceback.print_exc()
        return None, {"config": config, "error": traceback.format_exc(limit=5)}
    out.mkdir(parents=True, exist_ok=True)
    history.path.replace(out / history.path.name)
    print(result_table([result]), flush=True)
    return result, result_summary(result) | {"seconds": round(time.monotonic() - started)}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.check:
        return _check_only(args.check)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes: more than 0, at most a day")
    out = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{args.seed}"
    results, summaries = [], []
    with tempfile.TemporaryDirectory(prefix="telemetron-faults-") as tmp:
        services = FaultServices(Path(tmp) / "services")
        try:
            for n, config in enumerate(args.config):
                result, summary = _run_one(args, n, config, services, Path(tmp), out)
                results += [result] if result else []
                summaries.append(summary)
        finally:
            services.stop()
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summaries, indent=2))
    print(f"\n{result_table(results)}\n\nhistories and summary: {out}")
    for summary in summaries:
        for kind, examples in summary.get("examples", {}).items():
            print(f"{summary['config']} {kind}: " + " | ".join(examples))
    return 1 if any("error" in s for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
