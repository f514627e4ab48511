"""The JsonSchemaValidator: a JSON Schema (draft 2020-12) per event type for the
event's ``data``, checked by jsonschema-rs (compiled once, when the chain is
built: about 1 µs per valid event with a 10-property schema, ~100 times less than
the pure-Python ``jsonschema``; bench/RESULTS.md).

A schema is given as a JSON text (the admin's text box) or, in config.toml, as a
table; either way it is stored as JSON text, and checked against the draft
2020-12 meta-schema when the parameters are validated, so the admin and
config.toml refuse a schema that is not one, with the reason. References to
other documents (``$ref`` to a URL) are refused: nothing is fetched, ever.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import jsonschema_rs
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator

from plugins.base import Event, EventRejected, PluginParams, Validator

__all__ = ["JsonSchemaValidator", "schema_compile"]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# A rejection names one failing rule; an instance value quoted in it is cut here.
MAX_REASON = 400


def _no_remote_documents(uri: str) -> Any:
    raise ValueError(f"$ref to another document ({uri}) is not supported: inline it or use $defs")


def schema_compile(schema: Any, *, check_formats: bool = True) -> jsonschema_rs.Validator:
    """A compiled draft 2020-12 validator; ValueError saying why ``schema`` is not
    a valid JSON Schema."""
    if isinstance(schema, dict) and schema.get("$schema", DRAFT_2020_12).rstrip("#") != (
        DRAFT_2020_12
    ):
        raise ValueError(f"$schema must be {DRAFT_2020_12} (draft 2020-12) or absent")
    if not isinstance(schema, dict | bool):
        raise ValueError("a JSON Schema is an object (or true / false)")
    try:
        return jsonschema_rs.Draft202012Validator(
            schema, validate_formats=check_formats, retriever=_no_remote_documents
        )
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(p) for p in exc.instance_path)
        first = str(exc.message).splitlines()[0]
        first = first.split("retrieving it failed: ValueError: ", 1)[-1]
        raise ValueError(
            f"not a valid JSON Schema (draft 2020-12): {where + ': ' if where else ''}{first}"
        ) from None


def _schema_text(value: Any) -> Any:
    """A schema given as a table / object becomes its JSON text; a text must be JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    if isinstance(value, dict | bool):
        return json.dumps(value, indent=2, ensure_ascii=False)
    raise ValueError("a JSON Schema is an object (or true / false), or its JSON text")


def _compiles(text: str) -> str:
    schema_compile(json.loads(text))  # formats do not change what a valid schema is
    return text


SchemaText = Annotated[
    str,
    BeforeValidator(_schema_text),
    AfterValidator(_compiles),
    WithJsonSchema(
        {
            "type": "string",
            "widget": "textarea",
            "help_text": 'The JSON Schema of data, e.g. {"type": "object", "properties":'
            ' {"price": {"type": "number", "minimum": 0}}, "required": ["price"]}',
        }
    ),
]


def _path(parts: Any) -> str:
    return "".join(f".{p}" for p in parts)


class JsonSchemaValidator(Validator):
    """Check each event's ``data`` against the JSON Schema (draft 2020-12) of its
    type; a rejection names the failing path and rule, e.g. ``data.price: -1 is
    less than the minimum of 0``.

    Event types without a schema are accepted or refused as ``unknown_types`` says."""

    name = "JsonSchemaValidator"

    class Params(PluginParams):
        schemas: dict[str, SchemaText] = Field(
            default_factory=dict,
            description="One JSON Schema (draft 2020-12) per event type, for the event's"
            " data. Add a key per type, e.g. purchase.",
            examples=[{"purchase": '{"type": "object", "required": ["price"]}'}],
        )
        unknown_types: Literal["allow", "reject"] = Field(
            "allow",
            description="Events of a type with no schema: allow (accept them unchecked) or reject.",
        )
        check_formats: bool = Field(
            True,
            description='Enforce "format" (date-time, email, uuid, ...); off, formats are'
            " only annotations, as draft 2020-12 allows.",
        )

        @field_validator("schemas")
        @classmethod
        def _types_named(cls, schemas: dict[str, str]) -> dict[str, str]:
            if any(not event_type.strip() for event_type in schemas):
                raise ValueError("an event type must not be empty")
            return schemas

    params: JsonSchemaValidator.Params

    def __init__(self, params: JsonSchemaValidator.Params) -> None:
        super().__init__(params)
        self._reject_unknown = params.unknown_types == "reject"
        self._validators = {
            event_type: schema_compile(json.loads(text), check_formats=params.check_formats)
            for event_type, text in params.schemas.items()
        }

    def validate(self, event: Event) -> None:
        validator = self._validators.get(event.type)
        if validator is None:
            if self._reject_unknown:
                raise EventRejected(f"No JSON Schema for event type {event.type!r}")
            return
        if validator.is_valid(event.data):
            return
        errors = list(validator.iter_errors(event.data))
        first = errors[0]
        message = f"data{_path(first.instance_path)}: {first.message}"
        if len(message) > MAX_REASON:
            message = message[: MAX_REASON - 1] + "…"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EventRejected(message + more)
