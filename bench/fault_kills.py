"""Each process role of a tree SIGKILLed in turn, under the fault injector's load,
each kill followed by a quiet spell so its recovery is measured alone: the
recovery table of the README ("Recovery after a crash") from the injector's
checker (tests/faults/), per configuration.

    .venv/bin/python -m bench.fault_kills                     # sqlite-orm, pg-orm, pg-redis
    .venv/bin/python -m bench.fault_kills --config pg-redis --repeat 3

About 4 minutes per configuration with the defaults (7 kinds x 2 kills x 12 s).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from tests.faults.configs import FaultServices
from tests.faults.report import result_table
from tests.faults.run import RunOptions, run_configuration

ROLES = (
    "queue-worker",
    "monitor",
    "pusher",
    "sentinel",
    "qcluster",
    "granian-main",
    "granian-worker",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        default="sqlite-orm,pg-orm,pg-redis",
        help="comma-separated configurations of tests/faults/configs.py"
        " (sqlite-orm,pg-orm,pg-redis)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="kills of each role (2)")
    parser.add_argument(
        "--quiet", type=float, default=12.0, help="seconds of load after each kill (12)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the load (7)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise

    results = []
    with tempfile.TemporaryDirectory(prefix="telemetron-kills-") as tmp:
        services = FaultServices(Path(tmp) / "services")
        try:
            for n, config in enumerate(args.config.split(",")):
                options = RunOptions(
                    config=config,
                    seed=args.seed + n,
                    seconds=0,
                    plan=[f"kill:{role}" for role in ROLES] * args.repeat,
                    random_after_plan=False,
                    hold=(0.5, 0.5),
                    quiet=(args.quiet, args.quiet),
                    settle=1.0,
                    final_wait_s=60.0,
                )
                print(f"kills: {config} ...", flush=True)
                workdir = Path(tmp) / config
                result, _ = run_configuration(options, services=services, workdir=workdir)
                results.append(result)
                print(result_table([result]), flush=True)
        finally:
            services.stop()
    print(f"\n{result_table(results)}")
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
