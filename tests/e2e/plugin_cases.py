# Long: one case per installed plugin (20), each with its edits and its checks.
"""What tests/e2e/test_plugin_admin_browser.py does with each installed plugin:
the edits an operator makes on its page (one parameter of each kind it has),
the parameters stored then, and how the running service shows that the plugin
took them (``took``) or no longer runs (``stopped``). Both are polled: they send
an event and look (its answer, or, once the queue is empty, what each processor
left: stats, archive rows, deliveries, dead letters, files)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import event
from tests.support.admin_browser import (
    editor_add_item,
    editor_add_key,
    editor_choose,
    editor_field,
    editor_type,
)
from tests.support.dbread import rows, wait_queue_empty
from tests.support.prom import parse_exposition
from tests.support.receiver import Receiver

__all__ = ["CASES", "WEBHOOK_SECRET", "Case", "Env"]

WEBHOOK_SECRET = "webhook-secret-0123456789"
NEW_WEBHOOK_SECRET = "webhook-secret-9876543210"
ECHO_SECRET = "echo-secret-1"


@dataclass
class Env:
    client: httpx.Client
    database_url: str
    url: str
    workdir: Path  # the installation's directory: serve's working directory
    receiver: Receiver


def _nothing(driver: WebDriver, env: Env) -> None:
    """A plugin without parameters: nothing to edit."""


@dataclass(frozen=True)
class Case:
    name: str
    took: Callable[[Env], bool]
    stopped: Callable[[Env], bool]
    edit: Callable[[WebDriver, Env], None] = _nothing
    expect: Callable[[Env], dict[str, Any]] | None = None  # the params stored after the edit
    cleanup: bool = False  # disabled at the end: it changes what other checks see


def _status(env: Env, source_id: int = 1, type: str = "Heartbeat", **extra: Any) -> int:
    return env.client.post("/ingest", json=event(source_id, type, **extra)).status_code


def _after_one(env: Env, count: Callable[[Env], int]) -> tuple[int, int]:
    """``count`` before and after one event went through every processor."""
    before = count(env)
    assert _status(env) == 202
    wait_queue_empty(env.database_url, timeout=30)
    return before, count(env)


def _acts(count: Callable[[Env], int]) -> Callable[[Env], bool]:
    def check(env: Env) -> bool:
        before, after = _after_one(env, count)
        return after > before

    return check


def _idle(count: Callable[[Env], int]) -> Callable[[Env], bool]:
    def check(env: Env) -> bool:
        before, after = _after_one(env, count)
        return after == before

    return check


def _scalar(env: Env, sql: str) -> int:
    return int(rows(env.database_url, sql)[0][0])


def _dead(plugin: str) -> Callable[[Env], int]:
    sql = f"SELECT COUNT(*) FROM processing_deadletter WHERE plugin = '{plugin}'"
    return lambda env: _scalar(env, sql)


def _lines(name: str) -> Callable[[Env], int]:
    def count(env: Env) -> int:
        path = env.workdir / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    return count


def _files(name: str) -> Callable[[Env], int]:
    return lambda env: len(list((env.workdir / name).glob("*")))


def _events_counted(env: Env) -> int:
    return int(env.client.get("/stats").json()["events_count"])


def _archived(env: Env) -> int:
    return _scalar(env, "SELECT COUNT(*) FROM archive_archivedevent")


def _forwarded(env: Env) -> int:
    """Deliveries of the edited webhook: its new header, its new secret, its filters."""
    return sum(
        1
        for d in env.receiver.deliveries
        if d.headers.get("X-Env") == "prod"
        and d.headers.get("X-Team") == "ops"
        and d.signed
        and all((e["type"], e["sourceId"]) == ("purchase", 42) for e in d.body["events"])
    )


def _forwarded_after_purchases(env: Env) -> tuple[int, int]:
    """Deliveries of the edited webhook before and after two purchases went
    through every processor (one it forwards, one from a source it does not)."""
    before = _forwarded(env)
    assert _status(env, 42, "purchase") == 202 and _status(env, 1, "purchase") == 202
    wait_queue_empty(env.database_url, timeout=30)
    return before, _forwarded(env)


def _webhook_took(env: Env) -> bool:
    before, after = _forwarded_after_purchases(env)
    return after > before


def _webhook_stopped(env: Env) -> bool:
    before, after = _forwarded_after_purchases(env)
    return after == before


def _type_path(name: str) -> Callable[[WebDriver, Env], None]:
    """Type a file named ``name`` into the parameter ``name``: relative, so in the
    installation's directory (serve's working directory), and no path of this
    machine shows in the screenshots."""

    def edit(driver: WebDriver, env: Env) -> None:
        editor_type(driver, (name,), name)

    return edit


# --- validators ----------------------------------------------------------------------


def _edit_source_ids(driver: WebDriver, env: Env) -> None:
    for i, source_id in enumerate(("1", "2")):
        editor_add_item(driver, "Allowed")
        editor_type(driver, ("allowed", i), source_id)


def _edit_types(driver: WebDriver, env: Env) -> None:
    editor_add_item(driver, "Allowed")
    editor_type(driver, ("allowed", 0), "Heartbeat")


def _edit_schemas(driver: WebDriver, env: Env) -> None:
    editor_add_key(driver, "Schemas", "signup")
    editor_type(driver, ("schemas", "signup"), '{"type": "object", "required": ["plan"]}')
    editor_choose(driver, ("unknown_types",), "reject")
    editor_field(driver, "check_formats").click()


def _schemas_expected(env: Env) -> dict[str, Any]:
    purchase = {"type": "object", "required": ["price"]}
    signup = {"type": "object", "required": ["plan"]}
    return {
        "schemas": {
            k: json.dumps(v, indent=2) for k, v in (("purchase", purchase), ("signup", signup))
        },
        "unknown_types": "reject",
        "check_formats": False,
    }


def _schemas_took(env: Env) -> bool:
    return (
        _status(env, 1, "purchase", data={}) == 400  # the schema from config.toml, kept
        and _status(env, 1, "signup", data={}) == 400
        and _status(env, 1, "signup", data={"plan": "pro"}) == 202
        and _status(env, 1, "other") == 400  # unknown_types = reject
    )


def _edit_every_kind(driver: WebDriver, env: Env) -> None:
    editor_add_key(driver, "Labels", "env")  # an object with free keys
    editor_type(driver, ("labels", "env"), "prod")
    editor_add_item(driver, "Rules")  # a list of objects
    editor_type(driver, ("rules", 0, "field"), "plan")
    editor_type(driver, ("rules", 0, "equals"), "pro")
    editor_type(driver, ("secret",), ECHO_SECRET)
    editor_type(driver, ("limits", "max_items"), "3")  # a nested model
    editor_choose(driver, ("severity",), "high")  # an enum
    editor_type(driver, ("threshold",), "1.25")  # a number
    editor_field(driver, "strict").click()  # a boolean
    editor_add_key(driver, "Extra", "o")  # any JSON
    editor_type(driver, ("extra", "o"), '{"k": [true, null]}')


def _every_kind_expected(env: Env) -> dict[str, Any]:
    return {
        "echo_type": "Echo",
        "labels": {"env": "prod"},
        "rules": [{"field": "plan", "equals": "pro"}],
        "secret": ECHO_SECRET,
        "limits": {"max_items": 3, "note": None},  # optional, left empty
        "severity": "high",
        "threshold": 1.25,
        "strict": True,
        "extra": {"o": {"k": [True, None]}},
    }


def _every_kind_took(env: Env) -> bool:
    """The running validator echoes the parameters it was given."""
    answer = env.client.post("/ingest", json=event(1, "Echo"))
    if answer.status_code != 400:
        return False
    expected = _every_kind_expected(env)
    expected["secret"] = hashlib.sha256(ECHO_SECRET.encode()).hexdigest()[:12]
    assert json.loads(answer.json()["error"]) == expected
    return True


# --- processors ----------------------------------------------------------------------


def _edit_webhook(driver: WebDriver, env: Env) -> None:
    editor_add_key(driver, "Headers", "X-Env")
    editor_type(driver, ("headers", "X-Env"), "prod")
    editor_type(driver, ("secret",), NEW_WEBHOOK_SECRET)
    env.receiver.secret = NEW_WEBHOOK_SECRET  # the receiver checks the new signature
    editor_type(driver, ("timeout",), "3")
    editor_add_item(driver, "Event Types")
    editor_type(driver, ("event_types", 0), "purchase")
    editor_add_item(driver, "Sources")
    editor_type(driver, ("sources", 0), "42")


def _webhook_expected(env: Env) -> dict[str, Any]:
    return {
        "url": env.receiver.url,
        "secret": NEW_WEBHOOK_SECRET,
        "timeout": 3.0,
        "headers": {"X-Team": "ops", "X-Env": "prod"},
        "event_types": ["purchase"],
        "sources": [42],
    }


def _edit_failing(driver: WebDriver, env: Env) -> None:
    editor_type(driver, ("message",), "failing on purpose")


def _failed_on_purpose(env: Env) -> int:
    return _scalar(
        env,
        "SELECT COUNT(*) FROM processing_deadletter WHERE plugin = 'FailingProcessor'"
        " AND error_message LIKE '%failing on purpose%'",
    )


def _edit_poison(driver: WebDriver, env: Env) -> None:
    editor_type(driver, ("poison_type",), "Venom")
    editor_type(driver, ("record_path",), "poison.jsonl")  # in serve's working directory


def _edit_slow(driver: WebDriver, env: Env) -> None:
    (env.workdir / "markers").mkdir(exist_ok=True)
    editor_type(driver, ("seconds",), "0.05")
    editor_type(driver, ("marker_dir",), "markers")


# --- transformers --------------------------------------------------------------------


def _outage_retries(env: Env) -> int:
    """Tries again after an unreachable store (the queue workers' series)."""
    exp = parse_exposition(env.client.get("/metrics").text)
    return int(exp.value("telemetron_store_outage_retries_total", store="database"))


def _dropped(reason: str, transformer: str) -> Callable[[Env], int]:
    def count(env: Env) -> int:
        exp = parse_exposition(env.client.get("/metrics").text)
        value = exp.value("telemetron_events_dropped_total", transformer=transformer, reason=reason)
        return int(value)

    return count


def _drops(type: str, reason: str, transformer: str) -> Callable[[Env], bool]:
    """Whether an event of ``type`` (the same content each time) is dropped now."""
    count = _dropped(reason, transformer)

    def check(env: Env) -> bool:
        before = count(env)
        assert _status(env, 1, type) == 202  # a dropped event is answered as accepted
        return count(env) > before

    return check


def _keeps(type: str, reason: str, transformer: str) -> Callable[[Env], bool]:
    drops = _drops(type, reason, transformer)
    return lambda env: not drops(env)


def _edit_cel(driver: WebDriver, env: Env) -> None:
    editor_add_item(driver, "Rules")
    editor_type(driver, ("rules", 0, "name"), "pings")
    editor_type(driver, ("rules", 0, "when"), 'event.type == "Ping"')
    editor_choose(driver, ("rules", 0, "action"), "drop")


def _stored_last(env: Env, type: str, **data: Any) -> Any:
    """The data archived for an event of ``type`` sent now with ``data``."""
    assert _status(env, 1, type, data=data) == 202
    wait_queue_empty(env.database_url, timeout=30)
    sql = f"SELECT data FROM archive_archivedevent WHERE type = '{type}' ORDER BY id DESC"
    value = rows(env.database_url, sql)[0][0]
    return json.loads(value) if isinstance(value, str) else value


def _phone_dropped(env: Env) -> bool:
    return "phone" not in _stored_last(env, "Pii", phone="+44 20 7946 0000")


def _phone_kept(env: Env) -> bool:
    return "phone" in _stored_last(env, "Pii", phone="+44 20 7946 0000")


def _edit_redactor(driver: WebDriver, env: Env) -> None:
    editor_add_item(driver, "Drop Paths")
    editor_type(driver, ("drop_paths", 0), "data.phone")


def _ip_kept(env: Env) -> bool:
    context = _stored_last(env, "Ctx", k=1).get("context") or {}
    return bool(context.get("ip") == "127.0.0.1" and context.get("userAgent"))


def _no_context(env: Env) -> bool:
    return "context" not in _stored_last(env, "Ctx", k=1)


def _edit_sampler(driver: WebDriver, env: Env) -> None:
    editor_add_key(driver, "Rates", "Sampled")
    editor_type(driver, ("rates", "Sampled"), "1000000")


def _crashes(env: Env) -> bool:
    answer = env.client.post("/ingest", json=event(1, "Kaboom"))
    return answer.status_code == 400 and "CrashingTransformer" in answer.json()["error"]


def _accepts(**what: Any) -> Callable[[Env], bool]:
    return lambda env: _status(env, **what) == 202


CASES: tuple[Case, ...] = (
    Case(
        "SourceIdValidator",
        took=lambda env: _status(env, 3) == 400 and _status(env, 1) == 202,
        stopped=_accepts(source_id=3),
        edit=_edit_source_ids,
        expect=lambda env: {"allowed": [1, 2]},
        cleanup=True,
    ),
    Case(
        "EventTypeValidator",
        took=lambda env: _status(env, 1, "other") == 400 and _status(env) == 202,
        stopped=_accepts(type="other"),
        edit=_edit_types,
        expect=lambda env: {"allowed": ["Heartbeat"]},
        cleanup=True,
    ),
    Case(
        "JsonSchemaValidator",
        took=_schemas_took,
        stopped=_accepts(type="purchase", data={}),
        edit=_edit_schemas,
        expect=_schemas_expected,
        cleanup=True,
    ),
    Case(
        "EveryKindValidator",
        took=_every_kind_took,
        stopped=_accepts(type="Echo"),
        edit=_edit_every_kind,
        expect=_every_kind_expected,
    ),
    Case(
        "CrashingValidator",
        took=lambda env: _status(env, 1, "Boom") == 500,
        stopped=_accepts(type="Boom"),
        edit=lambda driver, env: editor_type(driver, ("crash_type",), "Boom"),
        expect=lambda env: {"crash_type": "Boom"},
    ),
    Case("StorageProcessor", took=_acts(_events_counted), stopped=_idle(_events_counted)),
    Case("ArchiveProcessor", took=_acts(_archived), stopped=_idle(_archived)),
    Case(
        "WebhookProcessor",
        took=_webhook_took,
        stopped=_webhook_stopped,
        edit=_edit_webhook,
        expect=_webhook_expected,
    ),
    Case(
        "FailingProcessor",
        took=_acts(_failed_on_purpose),
        stopped=_idle(_dead("FailingProcessor")),
        edit=_edit_failing,
        cleanup=True,
    ),
    Case(
        "FlakyProcessor",  # failing more often than the attempts: dead letters
        took=_acts(_dead("FlakyProcessor")),
        stopped=_idle(_dead("FlakyProcessor")),
        edit=lambda driver, env: editor_type(driver, ("fail_times",), "5"),
        expect=lambda env: {"fail_times": 5},
        cleanup=True,
    ),
    Case(
        "HealableStorageProcessor",  # its flag never written: never healed
        took=_acts(_dead("HealableStorageProcessor")),
        stopped=_idle(_dead("HealableStorageProcessor")),
        edit=_type_path("healed_flag"),
        cleanup=True,
    ),
    Case(
        "PoisonProcessor",
        took=_acts(_lines("poison.jsonl")),
        stopped=_idle(_lines("poison.jsonl")),
        edit=_edit_poison,
    ),
    Case(
        "RecordingProcessor",
        took=_acts(_lines("path")),
        stopped=_idle(_lines("path")),
        edit=_type_path("path"),
    ),
    Case(
        "SlowProcessor",
        took=_acts(_files("markers")),
        stopped=_idle(_files("markers")),
        edit=_edit_slow,
    ),
    Case(
        "UnreachableStoreProcessor",  # its store away for one run of each batch: waited out
        took=_acts(_outage_retries),
        stopped=_idle(_outage_retries),
        edit=lambda driver, env: editor_type(driver, ("fail_times",), "1"),
        expect=lambda env: {"fail_times": 1, "error": "database"},
        cleanup=True,
    ),
    # Transformers last: the archive (enabled above) shows what they stored.
    Case(
        "CelTransformer",
        took=_drops("Ping", "pings", "CelTransformer"),
        stopped=_keeps("Ping", "pings", "CelTransformer"),
        edit=_edit_cel,
        expect=lambda env: {
            "rules": [
                {
                    "name": "pings",
                    "when": 'event.type == "Ping"',
                    "action": "drop",
                    "field": "",
                    "value": "",
                    "to": "",
                }
            ]
        },
    ),
    Case(
        "PiiRedactor",
        took=_phone_dropped,
        stopped=_phone_kept,
        edit=_edit_redactor,
        expect=lambda env: {
            "drop_paths": ["data.phone"],
            "hash_paths": [],
            "secret": None,
            "patterns": ["email", "card", "ip"],
            "custom": {},
            "replacement": "[{name}]",
        },
        cleanup=True,  # its IP pattern would hide what ClientContext stores
    ),
    Case(
        "ClientContext",
        took=_ip_kept,
        stopped=_no_context,
        edit=lambda driver, env: editor_choose(driver, ("ip",), "keep"),
    ),
    Case(
        "Sampler",
        took=_drops("Sampled", "sampled", "Sampler"),
        stopped=_keeps("Sampled", "sampled", "Sampler"),
        edit=_edit_sampler,
        expect=lambda env: {
            "by": "type",
            "rates": {"Sampled": 1000000},
            "default_rate": 1,
            "salt": "",
        },
    ),
    Case(
        "CrashingTransformer",
        took=_crashes,
        stopped=_accepts(type="Kaboom"),
        edit=lambda driver, env: editor_type(driver, ("crash_type",), "Kaboom"),
        expect=lambda env: {"crash_type": "Kaboom"},
    ),
)
