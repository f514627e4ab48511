"""Stream or reliable list for the Redis broker: the cost of one task's round
trip (enqueue, claim in bulks of 10, acknowledge) with a 13 KB payload, in one
process against the local Redis, client CPU and redis-server CPU apart.

    DJANGO_SETTINGS_MODULE=telemetron_site.settings TELEMETRON_QUEUE__BROKER=redis \\
        .venv/bin/python -m bench.redis_queues

* stream: broker/redis_streams.py as it is (XADD; the claim script with its
  lease check, XCLAIM/XAUTOCLAIM scan and XREADGROUP; XACK+XDEL);
* list: RPUSH; a Lua script of up to 10 LMOVEs into the cluster's processing
  list; LREM of the payload on acknowledgement (no reaper, no claim times: the
  list design still needs those beside it, so it is a lower bound).
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from pathlib import Path

import django

django.setup()

import redis  # noqa: E402

from broker.redis_streams import RedisStreamsBroker  # noqa: E402

TASKS = 3000
PAYLOAD = "x" * 13_000
URL = "redis://127.0.0.1:6379/0"

_LIST_CLAIM = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not v then break end
  out[#out + 1] = v
end
return out
"""


def _redis_ticks() -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
            except OSError:
                continue
    return total


def _measure(name: str, run: object) -> None:
    cpu0, redis0 = resource.getrusage(resource.RUSAGE_SELF), _redis_ticks()
    wall0 = time.perf_counter()
    run()  # type: ignore[operator]
    wall1 = time.perf_counter()
    cpu1, redis1 = resource.getrusage(resource.RUSAGE_SELF), _redis_ticks()
    client = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / TASKS * 1e6
    server = (redis1 - redis0) / os.sysconf("SC_CLK_TCK") / TASKS * 1e6
    print(f"| {name} | {(wall1 - wall0) / TASKS * 1e6:.0f} | {client:.0f} | {server:.0f} |")


def stream() -> None:
    b = RedisStreamsBroker(f"bench-{uuid.uuid4().hex[:8]}")
    b.cluster_id = "bench"
    b.set_stat("x:bench", "", 3)
    try:
        for _ in range(TASKS):
            b.enqueue(PAYLOAD)
        done = 0
        while done < TASKS:
            for task_id, _ in b.dequeue() or []:
                b.acknowledge(task_id)
                done += 1
    finally:
        b.delete_queue()


def reliable_list() -> None:
    r = redis.from_url(URL)
    q, processing = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}:p"
    claim = r.register_script(_LIST_CLAIM)
    try:
        for _ in range(TASKS):
            r.rpush(q, PAYLOAD)
        done = 0
        while done < TASKS:
            for value in claim(keys=[q, processing], args=[10]):
                r.lrem(processing, 1, value)
                done += 1
    finally:
        r.delete(q, processing)


if __name__ == "__main__":
    print(f"{TASKS} tasks of 13 KB, bulk 10")
    print("| design | wall µs/task | client CPU µs/task | redis-server CPU µs/task |")
    print("|---|---|---|---|")
    for _ in range(2):
        _measure("stream (our broker)", stream)
        _measure("reliable list (lower bound)", reliable_list)
