"""How busy the machine was during a phase: the load average, and how much CPU
went to the server under test, to the load generator, and to everything else
(other people's work on the same cores: the noise in the figures)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "CpuShare", "load_average"]

_TICK = os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def _machine_busy_s() -> tuple[float, float]:
    """(busy seconds in processes, seconds in interrupts: mostly loopback networking)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    # user nice system idle iowait irq softirq steal
    ticks = [int(f) for f in fields[:8]]
    irq = ticks[5] + ticks[6]
    busy = sum(ticks) - ticks[3] - ticks[4] - irq
    return busy / _TICK, irq / _TICK


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime..cstime are fields 14..17.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / _TICK


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by ``root`` and every descendant (live or reaped)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo.extend(children.get(pid, ()))
    return total


def _own_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator, once reaped
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuShare:
    """Average cores used during the phase."""

    server: float
    load: float  # this process and the wrk it ran (the load generator and the probe)
    irq: float  # interrupts (softirq: the loopback network stack)
    others: float  # everything else: other people's work on the machine

    def describe(self) -> str:
        return (
            f"server {self.server:.2f}, load gen {self.load:.2f}, irq {self.irq:.2f}, "
            f"others {self.others:.2f}"
        )


class CpuMeter:
    """Measure one phase: ``start()`` then ``stop()`` after the load generator was reaped."""

    def __init__(self, server_pid: int) -> None:
        self._pid = server_pid
        self._at = (0.0, (0.0, 0.0), 0.0, 0.0)

    def start(self) -> None:
        self._at = (
            _monotonic(),
            _machine_busy_s(),
            tree_cpu_s(self._pid),
            _own_s(),
        )

    def stop(self) -> CpuShare:
        t0, busy0, server0, own0 = self._at
        elapsed = max(_monotonic() - t0, 1e-6)
        busy_now, irq_now = _machine_busy_s()
        busy, irq = busy_now - busy0[0], irq_now - busy0[1]
        server = tree_cpu_s(self._pid) - server0
        own = _own_s() - own0
        return CpuShare(
            server=server / elapsed,
            load=own / elapsed,
            irq=irq / elapsed,
            others=max(busy - server - own, 0.0) / elapsed,
        )


def _monotonic() -> float:
    return os.times().elapsed
