"""A plugin's ``Params`` model seen from outside: its validation messages (the
same for config.toml, the admin and ``manage.py plugins``), its defaults, and
the JSON schema the admin's form is generated from."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from core.errors import Loc, validation_messages
from plugins.base import PluginParams

__all__ = [
    "REDACTED",
    "Loc",
    "params_defaults",
    "params_form_schema",
    "params_messages",
    "params_redacted",
    "params_secret_keys",
]

REDACTED = "********"


def params_messages(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Each error as (location, message), e.g. ``(("allowed", 0), "Input should be
    a valid integer")``; an unexpected key reads "unknown parameter"."""
    return validation_messages(exc, unknown="unknown parameter")


def params_defaults(cls: type[PluginParams]) -> dict[str, Any] | None:
    """The parameters a plugin gets when none are given, or None when some are
    required."""
    try:
        return cls().model_dump(mode="json")
    except ValidationError:
        return None


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s and turn ``X | None`` into X, so the form widget (which
    knows a subset of JSON Schema) can draw every field."""
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list):
            concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(concrete) == 1 and len(concrete) < len(options):
                rest = {k: v for k, v in node.items() if k != key}
                return _resolve({**concrete[0], **rest}, defs)
    out = {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}
    # django-jsonform shows a field's ``help_text`` (a group's ``description``).
    if (
        "description" in out
        and "help_text" not in out
        and out.get("type") not in ("object", "array")
    ):
        out["help_text"] = out["description"]
    return out


def params_form_schema(cls: type[PluginParams]) -> dict[str, Any]:
    """The ``Params`` JSON schema (pydantic's), made drawable by django-jsonform."""
    schema = cls.model_json_schema()
    defs = dict(schema.get("$defs", {}))
    resolved: dict[str, Any] = _resolve(schema, defs)
    resolved["type"] = "object"
    resolved.setdefault("properties", {})
    resolved.pop("additionalProperties", None)
    return resolved


def params_secret_keys(cls: type[PluginParams] | None) -> frozenset[str]:
    """The parameters the admin never shows (``plugins.base.Secret``: writeOnly)."""
    if cls is None:
        return frozenset()
    properties = cls.model_json_schema().get("properties", {})
    return frozenset(k for k, v in properties.items() if isinstance(v, dict) and v.get("writeOnly"))


def params_redacted(params: Any, secret_keys: frozenset[str]) -> Any:
    """``params`` with each secret that is set replaced by ``REDACTED``."""
    if not secret_keys or not isinstance(params, dict):
        return params
    return {k: (REDACTED if k in secret_keys and v else v) for k, v in params.items()}
