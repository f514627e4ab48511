"""The built-in transformers, each on its own (ingest/transformers/): CEL rules,
the PII redactor, the client context, the sampler. The same over real HTTP:
tests/e2e/test_transformers.py."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.transformers.cel_rules import CelTransformer
from ingest.transformers.client_context import ClientContext, ip_truncate
from ingest.transformers.pii import PiiRedactor, luhn_valid
from ingest.transformers.sampler import Sampler
from plugins.base import ClientInfo, EventDropped, EventRejected
from tests.conftest import event
from tests.support.geoip import geoip_database_write

NOBODY = ClientInfo()
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)


def _cel(*rules: dict[str, Any]) -> CelTransformer:
    return CelTransformer(CelTransformer.Params.model_validate({"rules": list(rules)}))


# --- CelTransformer ------------------------------------------------------------------


def test_cel_rules_apply_in_order_each_seeing_the_changes_before_it() -> None:
    cel = _cel(
        {"action": "set", "field": "data.total", "value": "event.data.price * event.data.qty"},
        {"when": "event.data.total > 10", "action": "set", "field": "type", "value": '"big"'},
        {"action": "rename", "field": "data.qty", "to": "data.items.count"},
        {"action": "delete", "field": "data.price"},
        {
            "when": 'client.ip.startsWith("10.")',
            "action": "set",
            "field": "data.lan",
            "value": "true",
        },
    )
    out = cel.transform(event(1, "order", data={"price": 4, "qty": 3}), ClientInfo("10.0.0.1"))
    assert out["type"] == "big"
    assert out["data"] == {"total": 12, "items": {"count": 3}, "lan": True}


def test_a_cel_drop_names_its_rule_and_an_event_without_data_has_an_empty_map() -> None:
    cel = _cel({"name": "no_data", "when": "!has(event.data.x)", "action": "drop"})
    with pytest.raises(EventDropped) as caught:
        cel.transform(event(1, "t"), NOBODY)
    assert caught.value.reason == "no_data"
    assert _cel({"name": "r", "when": "has(event.data.x)", "action": "drop"}).transform(
        event(1, "t"), NOBODY
    ) == event(1, "t")  # nothing set: data stays absent


def test_a_rule_that_fails_on_an_event_refuses_it_naming_the_rule() -> None:
    cel = _cel({"name": "ratio", "action": "set", "field": "data.r", "value": "1 / event.data.n"})
    with pytest.raises(EventRejected, match="rule ratio: divide by zero"):
        cel.transform(event(1, "t", data={"n": 0}), NOBODY)
    cel = _cel({"name": "cond", "when": "event.data.n", "action": "drop"})
    with pytest.raises(EventRejected, match="rule cond: the condition is a int, not a bool"):
        cel.transform(event(1, "t", data={"n": 1}), NOBODY)


def test_cel_values_become_json() -> None:
    cel = _cel(
        {"action": "set", "field": "data.when", "value": "timestamp(event.timestamp)"},
        {"action": "set", "field": "data.span", "value": 'duration("90s")'},
        {"action": "set", "field": "data.list", "value": '[1, "a", null, {"k": 2.5}]'},
    )
    out = cel.transform(event(1, "t", ts="2024-05-01T10:00:00Z"), NOBODY)
    assert out["data"] == {
        "when": "2024-05-01T10:00:00Z",
        "span": 90.0,
        "list": [1, "a", None, {"k": 2.5}],
    }


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"when": 'event.type == "a" &&', "action": "drop"},
            "does not compile at line 1, column 21: Syntax error",
        ),
        (
            {"action": "set", "field": "data.x", "value": "event.data.\n  ["},
            "does not compile at line 2, column 3",
        ),
        (
            {"when": "request.ip == 1", "action": "drop"},
            "does not compile at line 1, column 8: undeclared reference to",
        ),
        ({"action": "set", "field": "data.x"}, "a set rule needs a value"),
        ({"action": "rename", "field": "type", "to": "data.t"}, "rename moves a field inside data"),
        ({"action": "delete", "field": "sourceId"}, "must start with one of: type, data, id"),
        ({"action": "explode"}, "rules.0.action"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_when_the_chain_is_built(
    rule: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CelTransformer.Params.model_validate({"rules": [rule]})
    assert message in str(caught.value)


# --- PiiRedactor ---------------------------------------------------------------------


def _redactor(**params: Any) -> PiiRedactor:
    return PiiRedactor(PiiRedactor.Params.model_validate(params))


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True)],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_patterns_in_every_string_of_data_and_only_there() -> None:
    redactor = _redactor(custom={"order": r"ORD-\d{4}"})
    text = (
        "a.b+c@mail.example.co.uk paid 5500-0000-0000-0004 (and 5500-0000-0000-0005, ver 1.2.3.4.5)"
        " from 192.0.2.55 / fe80::1 / ::ffff:192.0.2.1 for ORD-1234"
    )
    out = redactor.transform(
        event(1, "t", data={"deep": [{"s": text}], "n": 4111111111111111}), NOBODY
    )
    assert out["data"] == {
        "deep": [
            {
                "s": "[email] paid [card] (and 5500-0000-0000-0005, ver 1.2.3.4.5)"
                " from [ip] / [ip] / [ip] for [order]"
            }
        ],
        "n": 4111111111111111,  # a number, not a string: not a pattern's business
    }
    assert out["type"] == "t"


def test_paths_dropped_or_hashed_with_the_secret() -> None:
    secret = "0123456789abcdef-secret"
    redactor = _redactor(
        drop_paths=["data.items.phone"],
        hash_paths=["data.user.id", "data.user.profile"],
        secret=secret,
        patterns=[],
    )
    data = {
        "user": {"id": "u-1", "profile": {"age": 40}},
        "items": [{"phone": "1", "sku": "a"}, {"phone": "2"}],
    }
    out = redactor.transform(event(1, "t", data=data), NOBODY)

    def keyed(text: str) -> str:
        return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()

    assert out["data"] == {
        "user": {"id": keyed("u-1"), "profile": keyed('{"age": 40}')},
        "items": [{"sku": "a"}, {}],
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hash_paths": ["data.u"]}, "hash_paths need a secret of at least 16 characters"),
        ({"custom": {"x": "("}}, "x: not a regular expression"),
        ({"custom": {"x": "a*"}}, "x: the pattern matches the empty string"),
        ({"custom": {"two words": "a"}}, "a pattern's name is a word"),
        ({"drop_paths": ["type"]}, "redacted fields are inside data"),
        ({"patterns": ["phone"]}, "patterns.0"),
    ],
)
def test_redactor_parameters_that_cannot_work_are_refused(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        PiiRedactor.Params.model_validate(params)
    assert message in str(caught.value)


# --- ClientContext -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "v4", "v6", "expected"),
    [
        ("203.0.113.77", 24, 48, "203.0.113.0"),
        ("203.0.113.77", 16, 48, "203.0.0.0"),
        ("2001:db8:abcd:12::1", 24, 48, "2001:db8:abcd::"),
        ("nonsense", 24, 48, None),
    ],
)
def test_ip_truncate(ip: str, v4: int, v6: int, expected: str | None) -> None:
    assert ip_truncate(ip, v4, v6) == expected


def test_client_context_from_the_request_or_the_event(tmp_path: Path) -> None:
    database = geoip_database_write(tmp_path / "city.mmdb")
    context = ClientContext(ClientContext.Params(geoip_database=str(database)))
    out = context.transform(event(1, "t", data={"k": 1}), ClientInfo("198.51.100.8", SAFARI))
    ctx = out["data"]["context"]
    assert out["data"]["k"] == 1
    assert ctx["ip"] == "198.51.100.0"
    assert ctx["location"] == {"country": "DE", "city": "Berlin"}
    assert ctx["browser"] == {"name": "Safari", "version": "17.4"}
    assert ctx["os"]["name"] == "Mac OS X" and ctx["bot"] is False
    # An event's own context.ip / userAgent (a Segment SDK's) win over the request's.
    own = {"context": {"ip": "2001:db8:1234:1::1", "userAgent": "curl/8.5.0", "app": "x"}}
    ctx = context.transform(event(1, "t", data=own), ClientInfo("198.51.100.8", SAFARI))["data"][
        "context"
    ]
    assert ctx["ip"] == "2001:db8:1234::" and ctx["app"] == "x"
    assert ctx["location"] == {"country": "JP", "city": "Tokyo"}
    assert ctx["userAgent"] == "curl/8.5.0" and ctx["browser"]["name"] == "curl"


@pytest.mark.parametrize(
    ("user_agent", "uap", "crawlerdetect"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True, True),
        ("python-requests/2.31.0", False, True),  # a script, not a crawler to uap-core
        (SAFARI, False, False),
    ],
)
def test_the_bot_flag_by_either_list(user_agent: str, uap: bool, crawlerdetect: bool) -> None:
    for bots, expected in (("ua-parser", uap), ("crawlerdetect", crawlerdetect)):
        context = ClientContext(ClientContext.Params(bots=bots))
        out = context.transform(event(1, "t"), ClientInfo("192.0.2.1", user_agent))
        assert out["data"]["context"]["bot"] is expected, bots


def test_client_context_keeps_drops_and_wraps() -> None:
    keep = ClientContext(ClientContext.Params(ip="keep", user_agent=False))
    out = keep.transform(event(1, "t", data=[1, 2]), ClientInfo("192.0.2.3", SAFARI))
    assert out["data"] == {"value": [1, 2], "context": {"ip": "192.0.2.3"}}
    drop = ClientContext(ClientContext.Params(ip="drop", user_agent=False))
    own = {"context": {"ip": "192.0.2.3"}}
    assert drop.transform(event(1, "t", data=own), NOBODY)["data"] == {"context": {}}


def test_a_geoip_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.mmdb").write_text("not a database")
    for path, message in (
        (tmp_path / "none.mmdb", "no such file"),
        (tmp_path / "x.mmdb", "not a MaxMind database"),
    ):
        with pytest.raises(ValidationError, match=message):
            ClientContext.Params(geoip_database=str(path))


# --- Sampler -------------------------------------------------------------------------


def test_the_sampler_keeps_one_in_n_per_type_by_id_and_the_same_each_time() -> None:
    sampler = Sampler(Sampler.Params(rates={"tick": 10}))
    ticks = [event(1, "tick", id=str(i)) for i in range(5000)]
    kept = [e["id"] for e in ticks if sampler.keeps(e)]
    assert 400 <= len(kept) <= 600  # 1 in 10 of 5000 (p < 1e-6 outside)
    assert kept == [e["id"] for e in ticks if sampler.keeps(dict(e))]  # the same again
    assert all(sampler.keeps(event(1, "other", id=str(i))) for i in range(100))  # rate 1
    other_salt = Sampler(Sampler.Params(rates={"tick": 10}, salt="b"))
    assert kept != [e["id"] for e in ticks if other_salt.keeps(e)]


def test_the_sampler_by_source_and_by_content_without_an_id() -> None:
    sampler = Sampler(Sampler.Params(by="source", rates={"2": 1}, default_rate=5))
    assert all(sampler.keeps(event(2, "t", data={"i": i})) for i in range(50))
    events = [event(1, "t", data={"i": i}) for i in range(1000)]
    kept = [e for e in events if sampler.keeps(e)]
    assert 120 <= len(kept) <= 290
    for e in events[:50]:  # the same content: the same decision
        assert sampler.keeps(e) == sampler.keeps(event(1, "t", data={"i": e["data"]["i"]}))
    with pytest.raises(EventDropped, match="sampled"):
        sampler.transform(next(e for e in events if not sampler.keeps(e)), NOBODY)
    with pytest.raises(ValidationError):
        Sampler.Params(rates={"t": 0})
