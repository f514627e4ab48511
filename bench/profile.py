"""Profiling the web workers under load with py-spy, and summarising its
collapsed stacks ("raw" format) into where the time goes.

``py-spy record --gil`` samples only the thread holding the GIL: with one GIL
per worker process, that is exactly the Python CPU time each request costs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "children_of", "profile_read", "pyspy_start"]

# Inclusive buckets: the first matching frame (from the leaf up) decides. Order
# matters: the most specific first.
BUCKETS: list[tuple[str, str]] = [
    ("broker write: django-q2 async_task (pickle, sign, INSERT, COMMIT)", "async_task ("),
    ("broker_commit besides async_task", "broker_commit ("),
    ("group-commit bookkeeping (locks, events)", "GroupCommitBatcher"),
    ("validator chain", "_validate ("),
    ("Event.to_wire", "to_wire ("),
    ("event parse: pydantic Event.model_validate_json", "event_ingest ("),
    ("read_body", "read_body ("),
    ("our view besides the above", "ingest (ingest/api.py"),
    ("django-ninja Operation.run besides the view", "Operation.run ("),
    ("Django middleware chain", "MiddlewareMixin.__call__"),
    ("Django handler (request/response objects, URL resolve)", "django/core/handlers"),
    ("granian WSGI glue", "granian/"),
]


@dataclass
class Profile:
    samples: int
    self_time: Counter[str]
    inclusive: Counter[str]
    buckets: Counter[str]

    def table(self, top: int = 20) -> str:
        lines = [
            f"samples: {self.samples}",
            "",
            "| where (inclusive bucket) | share |",
            "|---|---|",
        ]
        for name, n in self.buckets.most_common():
            lines.append(f"| {name} | {100 * n / self.samples:.1f} % |")
        lines += ["", "| function (self time) | share |", "|---|---|"]
        for name, n in self.self_time.most_common(top):
            lines.append(f"| `{name}` | {100 * n / self.samples:.1f} % |")
        lines += ["", "| function (inclusive) | share |", "|---|---|"]
        for name, n in self.inclusive.most_common(top):
            lines.append(f"| `{name}` | {100 * n / self.samples:.1f} % |")
        return "\n".join(lines)


def profile_read(paths: list[Path]) -> Profile:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            total += count
            if frames:
                self_time[_short(frames[-1])] += count
            for name in {_short(f) for f in frames}:
                inclusive[name] += count
            joined = ";".join(frames)
            for label, needle in BUCKETS:
                if needle in joined:
                    buckets[label] += count
                    break
            else:
                buckets["other (outside any request)"] += count
    return Profile(samples=total, self_time=self_time, inclusive=inclusive, buckets=buckets)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (path/to/file.py)``: merge lines."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if file else name


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def pyspy_start(
    pid: int, out: Path, *, duration_s: int, rate: int = 100
) -> subprocess.Popen[bytes]:
    """Start ``py-spy record --gil`` on one process (collapsed stacks to ``out``)."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [
        pyspy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration_s),
        "--rate",
        str(rate),
        "--gil",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Summarise py-spy raw (collapsed) profiles: buckets, self and inclusive time."
    )
    parser.add_argument("files", nargs="+", type=Path, help="py-spy --format raw output files")
    parser.add_argument("--top", type=int, default=20, help="rows per function table (20)")
    args = parser.parse_args()
    print(profile_read(args.files).table(args.top))


if __name__ == "__main__":
    main()
