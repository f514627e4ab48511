"""The transformer chain over real HTTP (a real ``manage.py serve``, its queue
workers, its database): every built-in transformer on the native API
(``/ingest``, ``/ingest/batch``) and the Segment API (``/v1/*``); a batch where
one event is dropped, one changed and one refused by a transformer that raises;
a CEL rule edited in the admin and live within ``plugins.reload_interval``; the
client's IP truncated before anything is written (the queue, the archive, a
dead letter); the location from a test MaxMind database and the browser from
real user agents."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.transformers.sampler import Sampler
from tests.conftest import event
from tests.support.dbread import dead_letters, rows, wait_queue_empty
from tests.support.geoip import geoip_database_write
from tests.support.procs import Project, Server, wait_until
from tests.support.prom import parse_exposition

pytestmark = pytest.mark.e2e

INTERVAL = 0.5  # plugins.reload_interval
PASSWORD = "e2e-admin-password"
KEY = re.compile(r"tlw_[A-Za-z0-9_-]{40}")
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _archived(project: Project) -> list[dict[str, Any]]:
    """Every archived event (type, data), oldest first."""
    found = rows(project.database_url, "SELECT type, data FROM archive_archivedevent ORDER BY id")
    return [{"type": t, "data": _json(d)} for t, d in found]


def _metrics(server: Server) -> Any:
    return parse_exposition(httpx.get(f"{server.url}/metrics", timeout=30).text)


def _source_key(project: Project, source_id: int = 1) -> str:
    (key,) = KEY.findall(
        project.manage("sources", "create", str(source_id), "--name", "shop").stdout
    )
    return key


def _started(project: Project, transformation: dict[str, Any], *args: str) -> Server:
    project.config["plugins"] = {"reload_interval": INTERVAL}
    project.config["processing.plugins.ArchiveProcessor"] = {}
    for name, params in transformation.items():
        project.config[f"transformation.plugins.{name}"] = params
    return project.start(*args)


def _track(server: Server, key: str, name: str, **message: Any) -> httpx.Response:
    body = {"event": name, "userId": "u1", **message}
    return httpx.post(f"{server.url}/v1/track", json=body, auth=(key, ""), timeout=30)


def _segment_batch(server: Server, key: str, messages: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/batch", json={"batch": messages}, auth=(key, ""), timeout=30
    )


# --- CEL -----------------------------------------------------------------------------

CEL_RULES = [
    {"name": "noise", "when": 'event.type == "noise"', "action": "drop"},
    {
        "name": "price",
        "when": "has(event.data.properties) && has(event.data.properties.price)",
        "action": "set",
        "field": "data.price",
        "value": "event.data.properties.price",
    },
    {
        "name": "doubled",
        "when": "has(event.data.price)",
        "action": "set",
        "field": "data.doubled",
        "value": "event.data.price * 2",
    },
    {"action": "rename", "field": "data.old", "to": "data.new"},
    {"action": "delete", "field": "data.secret"},
]


@contextmanager
def _admin(server: Server, project: Project) -> Iterator[httpx.Client]:
    """An operator logged in to the admin (a real session, CSRF and all)."""
    project.manage(
        "createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com"
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/admin/login/")
        answer = client.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": _csrf(page.text),
                "username": "ops",
                "password": PASSWORD,
                "next": "/admin/",
            },
        )
        assert answer.status_code == 302, answer.text[:2000]
        yield client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _admin_save(client: httpx.Client, project: Project, name: str, params: Any) -> httpx.Response:
    """Save the plugin's change page with ``params``, enabled, as the form posts it."""
    ((pk, position),) = rows(
        project.database_url, f"SELECT id, position FROM plugins_pluginconfig WHERE name = '{name}'"
    )
    url = f"/admin/plugins/pluginconfig/{pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    return client.post(
        url,
        data={
            "csrfmiddlewaretoken": _csrf(page.text),
            "enabled": "on",
            "position": str(position),
            "params": json.dumps(params),
            "_save": "Save",
        },
    )


def test_cel_rules_on_both_apis_and_an_admin_edit_is_live_within_the_interval(
    project: Project,
) -> None:
    project.extra_env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    server = _started(project, {"CelTransformer": {"rules": CEL_RULES}})
    key = _source_key(project)
    with server.client() as client:
        changed = {"price": 5, "old": "kept", "secret": "s3cr3t"}
        assert client.post("/ingest", json=event(1, "purchase", data=changed)).status_code == 202
        assert client.post("/ingest", json=event(1, "noise", data={})).status_code == 202
        answer = client.post("/ingest/batch", json=[event(1, "noise"), event(1, "signup")])
        assert answer.status_code == 202
        assert answer.json() == {"accepted": 2, "rejected": []}  # the dropped one too
    assert _track(server, key, "noise").json() == {"success": True}
    purchase = {"properties": {"price": 7}, "old": 1}
    assert _track(server, key, "purchase", **purchase).json() == {"success": True}
    wait_queue_empty(project.database_url)

    archived = _archived(project)
    assert sorted(e["type"] for e in archived) == ["purchase", "purchase", "signup"]
    (native,) = [
        e["data"]
        for e in archived
        if e["type"] == "purchase" and "new" in e["data"] and "properties" not in e["data"]
    ]
    (segment,) = [e["data"] for e in archived if "properties" in (e["data"] or {})]
    assert native == {"price": 5, "doubled": 10, "new": "kept"}
    assert segment["price"] == 7 and segment["doubled"] == 14 and segment["new"] == 1
    exp = _metrics(server)
    assert (
        exp.value("telemetron_events_dropped_total", transformer="CelTransformer", reason="noise")
        == 3
    )
    assert server.client().get("/stats").json()["events_count"] == 3

    with _admin(server, project) as admin:
        broken = [{"when": 'event.type == "purchase" ||', "action": "drop"}]
        answer = _admin_save(admin, project, "CelTransformer", {"rules": broken})
        assert answer.status_code == 200  # the form again, with the error
        assert "does not compile at line 1, column 28" in answer.text
        assert _archived_types_after_purchase(project, server) == "purchase"  # unchanged

        rules = [
            *CEL_RULES,
            {"name": "no_purchases", "when": 'event.type == "purchase"', "action": "drop"},
        ]
        saved_at = time.monotonic()
        assert _admin_save(admin, project, "CelTransformer", {"rules": rules}).status_code == 302

    def purchases_dropped() -> bool:
        exp = _metrics(server)
        before = exp.value(
            "telemetron_events_dropped_total", transformer="CelTransformer", reason="no_purchases"
        )
        assert server.client().post("/ingest", json=event(1, "purchase")).status_code == 202
        after = _metrics(server).value(
            "telemetron_events_dropped_total", transformer="CelTransformer", reason="no_purchases"
        )
        return after > before

    wait_until(purchases_dropped, timeout=30, interval=0.05)
    # Live within the reload interval (asserted generously: one request's time added).
    assert time.monotonic() - saved_at < INTERVAL + 5
    assert server.stop() == 0


def _archived_types_after_purchase(project: Project, server: Server) -> str:
    """The type archived last after one more purchase went through."""
    assert server.client().post("/ingest", json=event(1, "purchase")).status_code == 202
    wait_queue_empty(project.database_url)
    return str(_archived(project)[-1]["type"])


# --- dropped, changed, refused in one batch ------------------------------------------


def test_a_batch_with_one_event_dropped_one_changed_one_refused(project: Project) -> None:
    server = _started(
        project,
        {
            "CelTransformer": {
                "rules": [{"name": "noise", "when": 'event.type == "noise"', "action": "drop"}]
            },
            "CrashingTransformer": {"crash_type": "Crash"},
        },
    )
    key = _source_key(project)
    with server.client() as client:
        answer = client.post(
            "/ingest/batch",
            json=[event(1, "noise"), event(1, "purchase", data={"n": 1}), event(1, "Crash")],
        )
        assert answer.status_code == 202
        body = answer.json()
        assert body["accepted"] == 2
        ((refused),) = body["rejected"]
        assert refused["index"] == 2
        assert refused["error"] == (
            "Transformer CrashingTransformer failed on the event: "
            "RuntimeError: transformer bug on event type 'Crash'"
        )
        one = client.post("/ingest", json=event(1, "Crash"))
        assert one.status_code == 400  # never a 500
        assert one.json()["details"] == [
            {"transformer": "CrashingTransformer", "reason": one.json()["error"]}
        ]
        # Every event refused: nothing accepted, a 400 listing them.
        assert client.post("/ingest/batch", json=[event(1, "Crash")]).status_code == 400
        # Every event dropped: accepted.
        answer = client.post("/ingest/batch", json=[event(1, "noise")])
        assert answer.status_code == 202 and answer.json()["accepted"] == 1

    messages = [
        {"type": "track", "event": "noise", "userId": "u1"},
        {"type": "track", "event": "purchase", "userId": "u1", "properties": {"n": 2}},
        {"type": "track", "event": "Crash", "userId": "u1"},
    ]
    answer = _segment_batch(server, key, messages)
    assert answer.status_code == 400  # Segment's way: the refused listed, the others taken
    assert [d["index"] for d in answer.json()["details"]] == [2]
    assert "CrashingTransformer" in answer.json()["details"][0]["error"]
    assert _track(server, key, "Crash").status_code == 400
    wait_queue_empty(project.database_url)

    archived = _archived(project)
    assert [e["type"] for e in archived] == ["purchase", "purchase"]
    (native,) = [e["data"] for e in archived if "properties" not in e["data"]]
    (segment,) = [e["data"] for e in archived if "properties" in e["data"]]
    assert native == {"n": 1, "crashing_transformer_saw": True}
    assert segment["properties"] == {"n": 2}
    assert segment["crashing_transformer_saw"] is True
    exp = _metrics(server)
    assert (
        exp.value("telemetron_events_dropped_total", transformer="CelTransformer", reason="noise")
        == 3
    )
    assert exp.value("telemetron_events_rejected_total", reason="CrashingTransformer") == 5
    assert server.stop() == 0


# --- ClientContext: the IP truncated before anything is written -----------------------

_QUEUED = (
    "import json\n"
    "from broker.models import QueuedTask\n"
    "from broker.packages import batch_args\n"
    "payloads = QueuedTask.objects.values_list('payload', flat=True)\n"
    "print(json.dumps([e for p in payloads for e in json.loads(batch_args(p)[0][1])]))\n"
)


def test_the_ip_is_truncated_before_the_queue_the_archive_and_a_dead_letter(
    project: Project, tmp_path: Path
) -> None:
    database = geoip_database_write(tmp_path / "test-city.mmdb")
    project.config["ingest"] = {**project.config["ingest"], "trusted_proxies": ["127.0.0.1/32"]}
    transformation = {"ClientContext": {"ip": "truncate", "geoip_database": str(database)}}
    server = _started(project, transformation, "--web-only")  # nothing taken off the queue
    key = _source_key(project)
    behind_proxy = {"X-Forwarded-For": "198.51.100.77, 10.9.9.9", "User-Agent": CHROME}
    with server.client() as client:
        # 10.9.9.9 is the next hop but not a trusted proxy: it is the client.
        assert client.post("/ingest", json=event(1, "a"), headers=behind_proxy).status_code == 202
        direct = {"X-Forwarded-For": "198.51.100.77", "User-Agent": IPHONE}
        answer = client.post(
            "/ingest/batch", json=[event(1, "b"), event(1, "Poison")], headers=direct
        )
        assert answer.status_code == 202
    context = {"ip": "2001:db8:1234:5678::9", "userAgent": FIREFOX}  # the SDK's own
    assert _track(server, key, "c", context=context).status_code == 200
    bot = httpx.post(
        f"{server.url}/v1/track",
        json={"event": "d", "userId": "u1"},
        auth=(key, ""),
        headers={"X-Forwarded-For": "203.0.113.200", "User-Agent": GOOGLEBOT},
        timeout=30,
    )
    assert bot.status_code == 200
    assert server.stop() == 0

    queued = json.loads(project.manage("shell", "-c", _QUEUED).stdout.splitlines()[-1])
    ips = {e["type"]: e["data"]["context"].get("ip") for e in queued}
    assert ips == {
        "a": "10.9.9.0",
        "b": "198.51.100.0",
        "Poison": "198.51.100.0",
        "c": "2001:db8:1234::",
        "d": "203.0.113.0",
    }
    full = ("198.51.100.77", "10.9.9.9", "2001:db8:1234:5678::9", "203.0.113.200")
    assert not any(ip in json.dumps(queued) for ip in full)

    project.config["processing.plugins.PoisonProcessor"] = {"poison_type": "Poison"}
    server = project.start()  # now with workers: the queue drains
    wait_queue_empty(project.database_url)
    archived = {e["type"]: e["data"]["context"] for e in _archived(project)}
    assert archived["b"]["ip"] == "198.51.100.0"
    assert archived["b"]["location"] == {"country": "DE", "city": "Berlin"}
    assert archived["b"]["browser"]["name"] == "Mobile Safari"
    assert archived["b"]["os"]["name"] == "iOS"
    assert archived["b"]["device"]["brand"] == "Apple"
    assert archived["b"]["bot"] is False
    assert "location" not in archived["a"]  # 10.9.9.9: not in the database
    assert archived["a"]["browser"] == {"name": "Chrome", "version": "131.0"}
    assert archived["a"]["os"]["name"] == "Windows"
    assert archived["c"]["location"] == {"country": "JP", "city": "Tokyo"}
    assert archived["c"]["userAgent"] == FIREFOX
    assert archived["c"]["browser"]["name"] == "Firefox" and archived["c"]["os"]["name"] == "Linux"
    assert archived["d"]["location"] == {"country": "FR", "city": "Paris"}
    assert archived["d"]["bot"] is True
    (letter,) = dead_letters(project.database_url)
    assert letter["plugin"] == "PoisonProcessor"
    (poison,) = letter["events"]
    assert poison["data"]["context"]["ip"] == "198.51.100.0"
    stored = json.dumps(_archived(project)) + json.dumps(letter)
    assert not any(ip in stored for ip in full)
    assert server.stop() == 0


def test_client_context_drops_the_ip_and_keeps_the_location(
    project: Project, tmp_path: Path
) -> None:
    database = geoip_database_write(tmp_path / "test-city.mmdb")
    project.config["ingest"] = {**project.config["ingest"], "trusted_proxies": ["127.0.0.1"]}
    transformation = {
        "ClientContext": {"ip": "drop", "geoip_database": str(database), "user_agent": False}
    }
    server = _started(project, transformation)
    key = _source_key(project)
    headers = {"X-Forwarded-For": "203.0.113.9", "User-Agent": CHROME}
    assert server.client().post("/ingest", json=event(1, "a"), headers=headers).status_code == 202
    assert _track(server, key, "b", context={"ip": "198.51.100.3"}).status_code == 200
    wait_queue_empty(project.database_url)
    a, b = (e["data"]["context"] for e in sorted(_archived(project), key=lambda e: e["type"]))
    assert a == {"location": {"country": "FR", "city": "Paris"}}
    assert b == {"location": {"country": "DE", "city": "Berlin"}}
    assert server.stop() == 0


# --- PiiRedactor ---------------------------------------------------------------------

PII_SECRET = "pii-secret-0123456789"


def test_pii_redactor_on_both_apis(project: Project) -> None:
    params = {
        "drop_paths": ["data.phone", "data.properties.phone"],
        "hash_paths": ["data.email_id", "data.userId"],
        "secret": PII_SECRET,
        "custom": {"ticket": "TCK-[0-9]{6}"},
    }
    server = _started(project, {"PiiRedactor": params})
    key = _source_key(project)
    text = (
        "write to ann@example.org, card 4111 1111 1111 1111 (not 4111 1111 1111 1112),"
        " from 192.0.2.10 or 2001:db8::7, ticket TCK-123456, version 1.2.3"
    )
    data = {
        "phone": "+44 20 7946 0000",
        "email_id": "ann@example.org",
        "note": text,
        "list": [text],
    }
    assert server.client().post("/ingest", json=event(1, "a", data=data)).status_code == 202
    properties = {"phone": "555", "note": text}
    assert _track(server, key, "b", properties=properties).status_code == 200
    wait_queue_empty(project.database_url)

    def keyed(value: str) -> str:
        return hmac.new(PII_SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()

    redacted = (
        "write to [email], card [card] (not 4111 1111 1111 1112),"
        " from [ip] or [ip], ticket [ticket], version 1.2.3"
    )
    a, b = (e["data"] for e in sorted(_archived(project), key=lambda e: e["type"]))
    assert a == {"email_id": keyed("ann@example.org"), "note": redacted, "list": [redacted]}
    assert b["properties"] == {"note": redacted}
    assert b["userId"] == keyed("u1")  # the same user, the same hash: joins still work
    assert "ann@example.org" not in json.dumps(_archived(project))
    assert server.stop() == 0


# --- Sampler -------------------------------------------------------------------------


def test_sampler_keeps_one_in_n_and_a_retry_the_same_way(project: Project) -> None:
    params = {"by": "type", "rates": {"tick": 4}}
    server = _started(project, {"Sampler": params})
    key = _source_key(project)
    ticks = [event(1, "tick", id=f"t-{i}") for i in range(200)]
    with server.client() as client:
        for _ in range(2):  # the second time: a client's retry of the same request
            answer = client.post("/ingest/batch", json=[*ticks, event(1, "other", id="o-1")])
            assert answer.json() == {"accepted": 201, "rejected": []}
    messages = [{"type": "track", "event": "tick", "messageId": f"m-{i}"} for i in range(40)]
    for _ in range(2):
        assert _segment_batch(server, key, messages).json() == {"success": True}
    wait_queue_empty(project.database_url)

    sampler = Sampler(Sampler.Params.model_validate(params))
    kept_native = [t["id"] for t in ticks if sampler.keeps(t)]
    archived = rows(project.database_url, "SELECT type, data FROM archive_archivedevent")
    assert sum(1 for t, _ in archived if t == "other") == 1  # not sampled: rate 1
    native = [t for t, d in archived if t == "tick" and not _json(d)]
    assert len(native) == len(kept_native)  # kept once; the retry kept the same ones
    assert 25 <= len(kept_native) <= 80  # 1 in 4 of 200 (p < 1e-6 outside)
    segment = [_json(d)["messageId"] for t, d in archived if t == "tick" and _json(d)]
    expected = [
        f"m-{i}"
        for i in range(40)
        if sampler.keeps({"sourceId": 1, "type": "tick", "id": f"m-{i}"})
    ]
    assert sorted(segment) == sorted(expected)
    dropped = _metrics(server).value(
        "telemetron_events_dropped_total", transformer="Sampler", reason="sampled"
    )
    assert dropped == 2 * (200 - len(kept_native)) + 2 * (40 - len(expected))
    assert server.stop() == 0
