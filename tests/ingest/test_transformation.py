"""The transformer chain at ingest (ingest/transformation.py): the client from a
request, drops and refusals counted, a transformer's output checked, and the
services' three paths (one event, a batch parsed fast or event by event)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from django.test import RequestFactory

from core.errors import BadRequest
from core.metrics.series import EVENTS_DROPPED, EVENTS_REJECTED
from ingest.services import batch_ingest, event_ingest
from ingest.transformation import client_info, events_transform
from plugins import live
from plugins.base import ClientInfo, EventDropped, EventRejected, PluginParams, Transformer
from plugins.chains import Chains
from sources.access import write_access
from tests.conftest import event

pytestmark = pytest.mark.django_db


class _Marks(Transformer):
    name = "Marks"

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        if event["type"] == "drop":
            raise EventDropped("unwanted")
        if event["type"] == "refuse":
            raise EventRejected("not today")
        if event["type"] == "bug":
            raise KeyError("missing")
        if event["type"] == "bad":
            event["type"] = ""
            return event
        if event["type"] == "move":
            event["sourceId"] = 99
            return event
        event["data"] = {"ip": client.ip}
        return event


class _Short(Transformer):
    name = "Short"

    def transform_batch(self, events: Any, client: ClientInfo) -> list[Any]:
        return []


def _dropped(name: str, reason: str) -> float:
    return float(EVENTS_DROPPED.labels(transformer=name, reason=reason)._value.get())


def _rejected(reason: str) -> float:
    return float(EVENTS_REJECTED.labels(reason=reason)._value.get())


def test_each_outcome_of_a_chain() -> None:
    marks = _Marks(PluginParams())
    kinds = ["keep", "drop", "refuse", "bug", "bad", "move", "keep"]
    events = [event(1, k) for k in kinds]
    dropped, rejected = _dropped("Marks", "unwanted"), _rejected("Marks")
    done = events_transform(events, chain=[marks], client=ClientInfo("192.0.2.1", None))
    assert done.indices == [0, 6]
    assert [e["data"] for e in done.kept] == [{"ip": "192.0.2.1"}] * 2
    assert done.dropped == 1
    assert done.refused == {
        2: ("Marks", "Transformer Marks refused the event: not today"),
        3: ("Marks", "Transformer Marks failed on the event: KeyError: 'missing'"),
        4: (
            "Marks",
            "Transformer Marks made an invalid event: type must be a non-empty string of at"
            " most 256 characters",
        ),
        5: ("Marks", "Transformer Marks made an invalid event: it changed the event's sourceId"),
    }
    assert _dropped("Marks", "unwanted") == dropped + 1
    assert _rejected("Marks") == rejected + 4


def test_a_batch_hook_that_breaks_its_contract_refuses_what_it_was_given() -> None:
    done = events_transform(
        [event(1, "a"), event(1, "b")], chain=[_Short(PluginParams())], client=ClientInfo()
    )
    assert done.kept == [] and set(done.refused) == {0, 1}
    assert "answered 0 outcomes for 2 events" in done.refused[0][1]


def test_the_next_transformer_sees_only_what_the_one_before_kept() -> None:
    seen: list[str] = []

    class Spy(Transformer):
        name = "Spy"

        def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
            seen.append(event["type"])
            return event

    chain = [_Marks(PluginParams()), Spy(PluginParams())]
    done = events_transform(
        [event(1, "drop"), event(1, "x"), event(1, "refuse")], chain=chain, client=ClientInfo()
    )
    assert seen == ["x"] and done.indices == [1]


@pytest.mark.parametrize(
    ("trusted", "forwarded", "peer", "expected"),
    [
        ([], "198.51.100.1", "127.0.0.1", "127.0.0.1"),  # no trusted proxy: the socket's
        (["127.0.0.1"], "198.51.100.1", "127.0.0.1", "198.51.100.1"),
        (["127.0.0.1"], "198.51.100.1", "192.0.2.9", "192.0.2.9"),  # the peer is no proxy
        (["127.0.0.1", "10.0.0.0/8"], "198.51.100.1, 10.1.1.1", "127.0.0.1", "198.51.100.1"),
        (["127.0.0.1"], "203.0.113.5, 198.51.100.1", "127.0.0.1", "198.51.100.1"),  # spoofed left
        (["127.0.0.1"], "not-an-ip", "127.0.0.1", None),
        (["::1"], "2001:db8::1", "::1", "2001:db8::1"),
    ],
)
def test_the_client_ip_is_the_first_untrusted_hop(
    use_config: Any, trusted: list[str], forwarded: str, peer: str, expected: str | None
) -> None:
    use_config(ingest={"trusted_proxies": [ipaddress.ip_network(t) for t in trusted]})
    meta = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded, "HTTP_USER_AGENT": "ua/1"}
    assert client_info(meta) == ClientInfo(expected, "ua/1")


def _access() -> Any:
    return write_access(RequestFactory().post("/ingest"))


def test_one_event_refused_by_a_transformer_is_a_400_naming_it() -> None:
    live.reset(Chains(validators=(), processors=(), transformers=(_Marks(PluginParams()),)))
    with pytest.raises(BadRequest) as caught:
        event_ingest(
            body=b'{"sourceId":1,"type":"bug","timestamp":"2024-01-01T00:00:00Z"}',
            access=_access(),
        )
    message = "Transformer Marks failed on the event: KeyError: 'missing'"
    assert caught.value.message == message
    assert caught.value.details == [{"transformer": "Marks", "reason": message}]


@pytest.mark.parametrize("fast", [True, False])
def test_a_batch_answers_dropped_events_as_accepted_and_lists_the_refused(fast: bool) -> None:
    """``fast``: a body of valid events only (parsed in one call); otherwise one
    invalid element sends the request down the event-by-event path."""
    live.reset(Chains(validators=(), processors=(), transformers=(_Marks(PluginParams()),)))
    batch: list[Any] = [event(1, "drop"), event(1, "keep"), event(1, "refuse")]
    if not fast:
        batch.append({"sourceId": 1})
    body = json.dumps(batch).encode()
    result = batch_ingest(body=body, max_events=10, access=_access())
    assert result.accepted == 2
    assert [r["index"] for r in result.rejected] == ([2] if fast else [2, 3])
    assert result.rejected[0]["error"] == "Transformer Marks refused the event: not today"


def test_a_batch_of_refused_events_only_is_a_400() -> None:
    live.reset(Chains(validators=(), processors=(), transformers=(_Marks(PluginParams()),)))
    body = json.dumps([event(1, "refuse"), event(1, "bug")]).encode()
    with pytest.raises(BadRequest, match="No event accepted"):
        batch_ingest(body=body, max_events=10, access=_access())
