"""prometheus_client's multiprocess mode: the directory every process of a
``serve`` tree writes its metric files into, and the registry ``/metrics`` merges.

prometheus_client chooses the mode when it is first imported, from the
``PROMETHEUS_MULTIPROC_DIR`` variable, so ``serve`` prepares the directory and
puts the variable in its children's environment before they start. Files of a
previous run are removed first, so a restart never resurrects stale series.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "ENV",
    "dead_processes_mark",
    "multiproc_dir",
    "multiproc_dir_prepare",
    "scrape_registry",
]

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_(?:live\w+)_(\d+)\.db$")


def multiproc_dir() -> Path | None:
    """The directory this process records into, or None in single-process mode."""
    value = os.environ.get(ENV) or os.environ.get(ENV.lower())
    return Path(value) if value else None


def multiproc_dir_prepare(path: Path | None = None) -> tuple[Path, bool]:
    """Create (or empty) the directory for a new process tree. Returns it and
    whether it was created here (then its owner removes it at exit)."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix="telemetron-metrics-")), True
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path, False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_processes_mark(path: Path) -> list[int]:
    """Drop the live-gauge files of processes that are gone (prometheus_client's
    ``mark_process_dead``); their counters and histograms stay, as they must."""
    dead: list[int] = []
    for name in os.listdir(path):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _alive(pid := int(match.group(1))) and pid not in dead:
            mark_process_dead(pid, str(path))
            dead.append(pid)
    return dead


def scrape_registry(path: Path | None, *extra: Collector) -> CollectorRegistry:
    """A registry for one scrape: every process's series (merged from ``path`` in
    multiprocess mode, else this process's default registry) plus ``extra``."""
    registry = CollectorRegistry(auto_describe=False)
    if path is None:
        registry.register(REGISTRY)  # type: ignore[arg-type]  # a registry collects too
    else:
        dead_processes_mark(path)  # a directory listing: cheap
        MultiProcessCollector(registry, path=str(path))
    for collector in extra:
        registry.register(collector)
    return registry
