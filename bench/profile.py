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

_ROOT = Path(__file__).resolve().parent.parent  # frames of this tree: shown relative to it

# Each sample goes to the leaf-most frame that matches one of these owners (so a
# database write inside the broker call counts as the broker write, and a view
# running inside the middlewares counts as the view).
OWNERS: list[tuple[str, tuple[str, ...]]] = [
    ("broker write: django-q2 async_task (pickle, sign, INSERT, COMMIT)", ("async_task (",)),
    ("group commit: batcher locks, waits, leader", ("GroupCommitBatcher",)),
    ("validator chain", ("_validate (ingest/services.py", "ingest/validators.py")),
    ("Event.to_wire (format_timestamp)", ("to_wire (",)),
    (
        "event parse (JSON + pydantic Event, field validators)",
        ("event_ingest (", "event_parse (", "batch_ingest ("),
    ),
    ("request body read", ("read_body (",)),
    ("our view, rest", ("ingest (ingest/api.py", "ingest_batch (ingest/api.py")),
    ("django-ninja (Operation.run, view wrapper)", ("ninja/",)),
    ("request log line (logging)", ("Logger.info (",)),
    (
        "HTTP metrics middleware (prometheus_client)",
        ("RequestMetricsMiddleware", "prometheus_client/"),
    ),
    (
        "Django middlewares (security, session, csrf, auth, messages, xframe)",
        (
            "django/middleware/",
            "django/contrib/sessions/middleware",
            "django/contrib/auth/middleware",
            "django/contrib/messages/middleware",
            "MiddlewareMixin",
        ),
    ),
    ("Django URL resolving", ("django/urls/",)),
    ("Django request_started/finished signals", ("Signal.send (",)),
    ("Django request/response objects", ("django/http/",)),
    ("Django WSGI handler", ("django/core/handlers/",)),
    ("granian WSGI glue", ("granian/",)),
]

# Cross-cutting costs: share of samples with any such frame on the stack.
CROSS: list[tuple[str, tuple[str, ...]]] = [
    ("logging (any logger)", ("logging/__init__.py",)),
    ("django-prometheus DB cursor wrapper", ("django_prometheus/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("Django ORM (models, queries)", ("django/db/models/",)),
    ("SQLite execute", ("SQLiteCursorWrapper.execute",)),
    ("django-q2 payload signing/pickling", ("django_q/signing.py",)),
]


@dataclass
class Profile:
    samples: int
    self_time: Counter[str]
    inclusive: Counter[str]
    buckets: Counter[str]
    cross: Counter[str]

    def table(self, top: int = 20) -> str:
        lines = [
            f"samples (GIL held): {self.samples}",
            "",
            "| where the GIL time goes (innermost owner) | share |",
            "|---|---|",
        ]
        for name, n in self.buckets.most_common():
            lines.append(f"| {name} | {100 * n / self.samples:.1f} % |")
        lines += ["", "| cross-cutting (anywhere on the stack) | share |", "|---|---|"]
        for name, n in self.cross.most_common():
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
    cross: Counter[str] = Counter()
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
            buckets[_owner(frames)] += count
            joined = ";".join(frames)
            for label, needles in CROSS:
                if any(n in joined for n in needles):
                    cross[label] += count
    return Profile(
        samples=total, self_time=self_time, inclusive=inclusive, buckets=buckets, cross=cross
    )


def _owner(frames: list[str]) -> str:
    for frame in reversed(frames):
        for label, needles in OWNERS:
            if any(n in frame for n in needles):
                return label
    return "other (outside any request)"


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (path/to/file.py)``: merge lines."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/bench/.work/before-", f"{_ROOT}/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            if marker == "/bench/.work/before-":  # before-<rev>/path: the tree's own path
                file = file.partition("/")[2]
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
    if not Path(pyspy).exists():
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install -e '.[bench]'")
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
