"""The WebhookProcessor against a real HTTP receiver on loopback: the body, the
signature, the Idempotency-Key and the extra headers; the filters; every failure
(non-2xx, a redirect, a timeout, nobody listening) a ProcessingError naming it;
the parameters' checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from plugins.base import Batch, Event, ProcessingError
from tests.conftest import event
from tests.support.procs import free_port
from tests.support.receiver import Receiver, receiver_running
from webhooks.processors import WebhookProcessor
from webhooks.signing import SIGNATURE_HEADER, signature, signature_verify

SECRET = "s3cret-of-at-least-16"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_running(SECRET, late_seconds=1.5) as r:
        yield r


def webhook(url: str, **params: Any) -> WebhookProcessor:
    return WebhookProcessor(WebhookProcessor.Params(url=url, secret=SECRET, **params))


def batch(batch_id: str = "b1", *specs: tuple[int, str]) -> Batch:
    specs = specs or ((1, "purchase"), (2, "Heartbeat"))
    return Batch(
        id=batch_id,
        events=tuple(Event.model_validate(event(s, t, data={"s": s})) for s, t in specs),
    )


def test_a_batch_is_one_signed_post_with_its_id_as_idempotency_key(receiver: Receiver) -> None:
    webhook(receiver.url, headers={"Authorization": "Bearer t0ken"}).process(batch("b1"))
    (d,) = receiver.deliveries
    assert d.signed and d.key == "b1"
    assert d.body == {
        "batch_id": "b1",
        "events": [
            {
                "sourceId": 1,
                "type": "purchase",
                "timestamp": "2023-10-27T09:30:00Z",
                "data": {"s": 1},
            },
            {
                "sourceId": 2,
                "type": "Heartbeat",
                "timestamp": "2023-10-27T09:30:00Z",
                "data": {"s": 2},
            },
        ],
    }
    assert d.headers["Content-Type"] == "application/json"
    assert d.headers["Authorization"] == "Bearer t0ken"
    assert d.headers["User-Agent"] == "Telemetron-Webhook/1"
    assert d.headers[SIGNATURE_HEADER].startswith("sha256=")


def test_the_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"batch_id":"b1","events":[]}'
    assert signature(body, "k" * 16) == (
        "sha256=" + __import__("hmac").new(b"k" * 16, body, "sha256").hexdigest()
    )
    assert signature_verify(body, "k" * 16, signature(body, "k" * 16))
    assert not signature_verify(body + b" ", "k" * 16, signature(body, "k" * 16))
    assert not signature_verify(body, "x" * 16, signature(body, "k" * 16))
    assert not signature_verify(body, "k" * 16, None)


def test_the_body_and_key_are_the_same_on_every_attempt(receiver: Receiver) -> None:
    hook = webhook(receiver.url)
    hook.process(batch("b7"))
    hook.process(batch("b7"))
    first, second = receiver.deliveries
    assert (first.key, first.body, first.headers[SIGNATURE_HEADER]) == (
        second.key,
        second.body,
        second.headers[SIGNATURE_HEADER],
    )


def test_filters_keep_only_the_types_and_sources_asked_for(receiver: Receiver) -> None:
    specs = ((1, "purchase"), (2, "purchase"), (1, "Heartbeat"))
    webhook(receiver.url, event_types=["purchase"], sources=[1]).process(batch("b1", *specs))
    webhook(receiver.url, event_types=["purchase"]).process(batch("b2", *specs))
    webhook(receiver.url, sources=[3]).process(batch("b3", *specs))  # nothing left: no POST
    kept = [[(e["sourceId"], e["type"]) for e in d.body["events"]] for d in receiver.deliveries]
    assert kept == [[(1, "purchase")], [(1, "purchase"), (2, "purchase")]]
    assert [d.key for d in receiver.deliveries] == ["b1", "b2"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("500", 'answered 500: {"ok": false}'),
        ("404", "answered 404"),
        ("302", "answered 302"),  # redirects are not followed
        ("timeout", "no answer within 0.3 s"),
    ],
)
def test_a_non_2xx_answer_or_a_timeout_is_a_processing_error(
    receiver: Receiver, answer: str, message: str
) -> None:
    receiver.mode = answer
    with pytest.raises(ProcessingError) as raised:
        webhook(receiver.url, timeout=0.3).process(batch("b1"))
    assert str(raised.value).startswith(f"webhook {receiver.url}")
    assert message in str(raised.value)
    assert len(receiver.deliveries) == 1


def test_nobody_listening_is_a_processing_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(ProcessingError, match=f"webhook {url}: ConnectError"):
        webhook(url, timeout=1).process(batch())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": "ftp://example.com/x"}, "url: must start with https:// (or http://)"),
        ({"url": "https:///x"}, "url: must name a host"),
        ({"url": "https://u:p@example.com/"}, "url: must not hold credentials"),
        ({"url": "https://example.com/a b"}, "url: must not contain spaces"),
        ({"url": "https://example.com:99999/"}, "url: has an invalid port"),
        ({"secret": "short"}, "secret: must be at least 16 characters long"),
        ({"secret": " " + "x" * 20}, "secret: must not start or end with spaces"),
        ({"headers": {"Idempotency-Key": "x"}}, "headers: Idempotency-Key is set by the webhook"),
        ({"headers": {"Bad Name": "x"}}, "headers: 'Bad Name' is not a valid header name"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "headers: the value of X-A must be one line"),
        ({"timeout": 0}, "timeout: Input should be greater than 0"),
        ({"sources": [-1]}, "sources.0: Input should be greater than or equal to 0"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params: dict[str, Any], message: str) -> None:
    from plugins.catalog import params_summary

    values = {"url": "https://hooks.example.com/t", "secret": SECRET, **params}
    with pytest.raises(ValidationError) as raised:
        WebhookProcessor.Params.model_validate(values)
    assert message in params_summary(raised.value)


def test_the_secret_is_hidden_in_reprs_but_kept_when_stored() -> None:
    params = WebhookProcessor.Params(url="https://hooks.example.com/t", secret=SECRET)
    assert SECRET not in repr(params) and SECRET not in str(params)
    stored = params.model_dump(mode="json")
    assert stored["secret"] == SECRET
    assert WebhookProcessor.Params.model_validate(json.loads(json.dumps(stored))) == params
