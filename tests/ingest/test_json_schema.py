"""The JsonSchemaValidator: draft 2020-12, keyword family by keyword family; the
rejection names the path and the rule; types without a schema; a schema that is
not one is refused with the reason (its Params model: the admin and config.toml
both use it); through POST /ingest and the admin's form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from pydantic import ValidationError

from ingest.json_schema import JsonSchemaValidator
from plugins.base import Event, EventRejected, PluginSpec
from plugins.chains import PluginConfigError, build_plugin
from plugins.models import PluginConfig
from plugins.registry import get_registry
from tests.conftest import UseChains, event
from tests.support.client import post
from tests.support.jsonform import editor_config

PRICE = {
    "type": "object",
    "properties": {"price": {"type": "number", "minimum": 0}},
    "required": ["price"],
}


def validator(schemas: dict[str, Any], **params: Any) -> JsonSchemaValidator:
    return JsonSchemaValidator(JsonSchemaValidator.Params(schemas=schemas, **params))


def check(v: JsonSchemaValidator, data: Any, type: str = "purchase") -> str | None:
    """None when accepted, else the reason."""
    try:
        v.validate(Event.model_validate(event(1, type, data=data)))
    except EventRejected as exc:
        return exc.reason
    return None


# (schema, accepted data, refused data, the reason for the refused one)
KEYWORDS: dict[str, tuple[dict[str, Any], Any, Any, str]] = {
    "type": ({"type": "object"}, {}, [1], 'data: [1] is not of type "object"'),
    "type list": (
        {"type": ["string", "null"]},
        None,
        1,
        'data: 1 is not of types "null", "string"',
    ),
    "enum": ({"enum": ["EUR", "USD"]}, "EUR", "XBT", 'data: "XBT" is not one of "EUR" or "USD"'),
    "const": ({"const": 3}, 3, 4, "data: 3 was expected"),
    "minimum": (PRICE, {"price": 0}, {"price": -1}, "data.price: -1 is less than the minimum of 0"),
    "exclusiveMaximum": (
        {"exclusiveMaximum": 10},
        9.5,
        10,
        "data: 10 is greater than or equal to the maximum of 10",
    ),
    "multipleOf": ({"multipleOf": 5}, 15, 7, "data: 7 is not a multiple of 5"),
    "minLength": ({"minLength": 2}, "ab", "a", 'data: "a" is shorter than 2 characters'),
    "maxLength": ({"maxLength": 2}, "ab", "abc", 'data: "abc" is longer than 2 characters'),
    "pattern": (
        {"pattern": "^ord_[0-9]+$"},
        "ord_12",
        "x",
        'data: "x" does not match "^ord_[0-9]+$"',
    ),
    "format": (
        {"format": "date-time"},
        "2026-11-20T10:00:00Z",
        "yesterday",
        'data: "yesterday" is not a "date-time"',
    ),
    "items": (
        {"items": {"type": "integer"}},
        [1, 2],
        [1, "two"],
        'data.1: "two" is not of type "integer"',
    ),
    "prefixItems": (
        {"prefixItems": [{"type": "string"}, {"type": "number"}]},
        ["a", 1],
        [1, 1],
        'data.0: 1 is not of type "string"',
    ),
    "minItems": ({"minItems": 1}, [1], [], "data: [] has less than 1 item"),
    "uniqueItems": ({"uniqueItems": True}, [1, 2], [1, 1], "data: [1,1] has non-unique elements"),
    "contains": (
        {"contains": {"const": "x"}},
        ["a", "x"],
        ["a"],
        'data: None of ["a"] are valid under the given schema',
    ),
    "required": (PRICE, {"price": 1}, {}, 'data: "price" is a required property'),
    "additionalProperties": (
        {"properties": {"a": {}}, "additionalProperties": False},
        {"a": 1},
        {"a": 1, "b": 2},
        "data: Additional properties are not allowed ('b' was unexpected)",
    ),
    "patternProperties": (
        {"patternProperties": {"^n_": {"type": "number"}}},
        {"n_a": 1},
        {"n_a": "1"},
        'data.n_a: "1" is not of type "number"',
    ),
    "propertyNames": (
        {"propertyNames": {"maxLength": 3}},
        {"abc": 1},
        {"abcd": 1},
        'data: "abcd" is longer than 3 characters',
    ),
    "dependentRequired": (
        {"dependentRequired": {"coupon": ["code"]}},
        {"coupon": 1, "code": "x"},
        {"coupon": 1},
        'data: "code" is a required property',
    ),
    "unevaluatedProperties": (
        {
            "allOf": [{"properties": {"a": {}}}],
            "unevaluatedProperties": False,
        },
        {"a": 1},
        {"a": 1, "b": 2},
        "data: Unevaluated properties are not allowed ('b' was unexpected)",
    ),
    "anyOf": (
        {"anyOf": [{"type": "string"}, {"type": "number"}]},
        1,
        None,
        "data: null is not valid under any of the schemas listed in the 'anyOf' keyword",
    ),
    "oneOf": (
        {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
        -1,
        1,
        "data: 1 is valid under more than one of the schemas listed in the 'oneOf' keyword",
    ),
    "not": ({"not": {"type": "null"}}, 0, None, 'data: {"type":"null"} is not allowed for null'),
    "if/then/else": (
        {"if": {"type": "number"}, "then": {"minimum": 0}, "else": {"type": "string"}},
        "x",
        -1,
        "data: -1 is less than the minimum of 0",
    ),
    "$ref/$defs": (
        {
            "$defs": {"money": {"type": "number", "minimum": 0}},
            "properties": {"p": {"$ref": "#/$defs/money"}},
        },
        {"p": 1},
        {"p": -2},
        "data.p: -2 is less than the minimum of 0",
    ),
}


@pytest.mark.parametrize("keyword", list(KEYWORDS))
def test_each_keyword_family_accepts_and_rejects_with_the_path_and_rule(keyword: str) -> None:
    schema, good, bad, reason = KEYWORDS[keyword]
    v = validator({"purchase": schema})
    assert check(v, good) is None
    assert check(v, bad) == reason


def test_the_rejection_counts_the_other_failures_and_a_long_value_is_cut() -> None:
    v = validator({"purchase": {"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}})
    assert check(v, {"a": 1, "b": 2}) == 'data.a: 1 is not of type "string" (and 1 more)'
    reason = check(validator({"purchase": {"type": "string"}}), {"k": "x" * 5000})
    assert reason is not None and len(reason) <= 400 and reason.endswith("…")


def test_formats_are_only_annotations_when_check_formats_is_off() -> None:
    v = validator({"purchase": {"format": "email"}}, check_formats=False)
    assert check(v, "not an address") is None
    assert check(validator({"purchase": {"format": "email"}}), "not an address") is not None


def test_types_without_a_schema_are_allowed_or_rejected_as_unknown_types_says() -> None:
    assert check(validator({"purchase": PRICE}), None, type="Heartbeat") is None
    rejecting = validator({"purchase": PRICE}, unknown_types="reject")
    assert check(rejecting, None, type="Heartbeat") == "No JSON Schema for event type 'Heartbeat'"
    assert check(rejecting, {"price": 2}) is None


def test_a_schema_given_as_a_table_or_a_text_is_kept_as_json_text() -> None:
    as_table = JsonSchemaValidator.Params(schemas={"purchase": PRICE})
    as_text = JsonSchemaValidator.Params(schemas={"purchase": json.dumps(PRICE)})
    assert as_table == as_text
    assert json.loads(as_table.schemas["purchase"]) == PRICE
    assert JsonSchemaValidator.Params.model_validate(as_table.model_dump(mode="json")) == as_table


INVALID: dict[str, tuple[Any, str]] = {
    "unknown type name": (
        {"type": "nonsense"},
        'schemas.purchase: not a valid JSON Schema (draft 2020-12): type: "nonsense" is not'
        " valid under any of the schemas listed in the 'anyOf' keyword",
    ),
    "minimum not a number": (
        {"minimum": "zero"},
        'schemas.purchase: not a valid JSON Schema (draft 2020-12): minimum: "zero" is not of'
        ' type "number"',
    ),
    "bad regex": (
        {"pattern": "(unclosed"},
        "schemas.purchase: not a valid JSON Schema (draft 2020-12): pattern:",
    ),
    "not JSON": ("{price", "schemas.purchase: not valid JSON: Expecting property name"),
    "not an object": (3, "schemas.purchase: a JSON Schema is an object (or true / false)"),
    "another draft": (
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        "schemas.purchase: $schema must be https://json-schema.org/draft/2020-12/schema",
    ),
    "a remote document": (
        {"$ref": "https://example.com/price.json"},
        "schemas.purchase: not a valid JSON Schema (draft 2020-12): $ref to another document"
        " (https://example.com/price.json) is not supported",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_a_schema_that_is_not_a_valid_json_schema_is_refused_with_the_reason(case: str) -> None:
    schema, message = INVALID[case]
    with pytest.raises(PluginConfigError) as raised:
        build_plugin(
            PluginSpec("validator", "JsonSchemaValidator", {"schemas": {"purchase": schema}}),
            get_registry(),
        )
    assert str(raised.value).startswith(f"[validation.plugins.JsonSchemaValidator] {message}"), (
        raised.value
    )


def test_an_empty_event_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="an event type must not be empty"):
        JsonSchemaValidator.Params(schemas={" ": PRICE})


@pytest.mark.django_db
def test_ingest_answers_400_with_the_rule_and_counts_nothing(
    client: Client, use_validators: UseChains
) -> None:
    use_validators(("JsonSchemaValidator", {"schemas": {"purchase": PRICE}}))
    response = post(client, "/ingest", event(1, "purchase", data={"price": -1}))
    assert response.status_code == 400
    reason = "data.price: -1 is less than the minimum of 0"
    assert response.json() == {
        "error": reason,
        "details": [{"validator": "JsonSchemaValidator", "reason": reason}],
    }
    assert post(client, "/ingest", event(1, "purchase", data={"price": 3})).status_code == 202
    assert client.get("/stats").json() == {"sources_count": 1, "events_count": 1}


# --- the admin ---------------------------------------------------------------------


def _save(client: Client, params: dict[str, Any], enabled: bool = True) -> Any:
    row = PluginConfig.objects.get(name="JsonSchemaValidator")
    data = {"position": str(row.position), "params": json.dumps(params)}
    if enabled:
        data["enabled"] = "on"
    return client.post(f"/admin/plugins/pluginconfig/{row.pk}/change/", data)


def test_the_admin_form_draws_a_text_box_per_event_type_with_help(plugin_admin: Client) -> None:
    row = PluginConfig.objects.get(name="JsonSchemaValidator")
    html = plugin_admin.get(f"/admin/plugins/pluginconfig/{row.pk}/change/").content.decode()
    schema = editor_config(html)["schema"]
    schemas = schema["properties"]["schemas"]
    assert schemas["type"] == "object"
    assert schemas["additionalProperties"]["widget"] == "textarea"
    assert "minimum" in schemas["additionalProperties"]["help_text"]  # an example
    assert schema["properties"]["unknown_types"]["enum"] == ["allow", "reject"]
    assert "reject" in schema["properties"]["unknown_types"]["help_text"]


def test_the_admin_refuses_an_invalid_schema_with_the_reason_and_saves_a_valid_one(
    plugin_admin: Client,
) -> None:
    response = _save(plugin_admin, {"schemas": {"purchase": '{"type": "nonsense"}'}})
    assert response.status_code == 200
    page = response.content.decode()
    assert "not a valid JSON Schema (draft 2020-12): type: " in page.replace("&quot;", '"')
    row = PluginConfig.objects.get(name="JsonSchemaValidator")
    assert not row.enabled and row.params == {
        "schemas": {},
        "unknown_types": "allow",
        "check_formats": True,
    }

    response = _save(plugin_admin, {"schemas": {"purchase": json.dumps(PRICE)}})
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert row.enabled and json.loads(row.params["schemas"]["purchase"]) == PRICE
