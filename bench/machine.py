"""How busy the machine was during a phase: the load average, and how much CPU
went to the server under test, to the load generator, and to everything else
(other people's work on the same cores: the noise in the figures)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "CpuShare", "load_average", "tree_cpu_s", "tree_cpu_split", "tree_pss_mb"]

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


def _is_web(pid: int) -> bool:
    """A granian process (the HTTP server and its WSGI workers)."""
    try:
        return b"granian" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def tree_cpu_split(root: int) -> tuple[float, float]:
    """CPU seconds used so far by ``root``'s tree (live or reaped processes),
    split into (web: the granian processes and their children, workers: the
    rest: ``serve`` itself and the django-q2 cluster)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    web = workers = 0.0
    todo = [(root, False)]
    while todo:
        pid, in_web = todo.pop()
        if pid in stats:
            in_web = in_web or _is_web(pid)
            if in_web:
                web += stats[pid][1]
            else:
                workers += stats[pid][1]
            todo.extend((child, in_web) for child in children.get(pid, ()))
    return web, workers


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by ``root`` and every descendant (live or reaped)."""
    return sum(tree_cpu_split(root))


def tree_pss_mb(root: int) -> float:
    """Proportional set size of ``root`` and its live descendants, MB (summed)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[0], []).append(int(entry))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            pass
        todo.extend(children.get(pid, ()))
    return total_kb / 1024


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
    web_s: float = 0.0  # CPU seconds of the server's granian processes in the phase
    workers_s: float = 0.0  # CPU seconds of the rest of its tree (the queue workers)

    def describe(self) -> str:
        return (
            f"server {self.server:.2f}, load gen {self.load:.2f}, irq {self.irq:.2f}, "
            f"others {self.others:.2f}"
        )


class CpuMeter:
    """Measure one phase: ``start()`` then ``stop()`` after the load generator was reaped."""

    def __init__(self, server_pid: int) -> None:
        self._pid = server_pid
        self._at = (0.0, (0.0, 0.0), (0.0, 0.0), 0.0)

    def start(self) -> None:
        self._at = (
            _monotonic(),
            _machine_busy_s(),
            tree_cpu_split(self._pid),
            _own_s(),
        )

    def since_start(self) -> tuple[float, float]:
        """(web, workers) CPU seconds of the server's tree since ``start()``; read
        after the backlog is processed, it includes the workers' catching up."""
        web, workers = tree_cpu_split(self._pid)
        return web - self._at[2][0], workers - self._at[2][1]

    def stop(self) -> CpuShare:
        t0, busy0, split0, own0 = self._at
        elapsed = max(_monotonic() - t0, 1e-6)
        busy_now, irq_now = _machine_busy_s()
        busy, irq = busy_now - busy0[0], irq_now - busy0[1]
        web_now, workers_now = tree_cpu_split(self._pid)
        web, workers = web_now - split0[0], workers_now - split0[1]
        server = web + workers
        own = _own_s() - own0
        return CpuShare(
            server=server / elapsed,
            load=own / elapsed,
            irq=irq / elapsed,
            others=max(busy - server - own, 0.0) / elapsed,
            web_s=web,
            workers_s=workers,
        )


def _monotonic() -> float:
    return os.times().elapsed
