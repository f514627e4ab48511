"""A plugin's ``Params`` model seen from outside: its validation messages (the
same for config.toml, the admin and ``manage.py plugins``), its defaults, and
the JSON schema the admin's form is generated from."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from plugins.base import PluginParams
from telemetron_site.errors import Loc, validation_messages

__all__ = ["Loc", "params_defaults", "params_form_schema", "params_messages"]


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
    return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}


def params_form_schema(cls: type[PluginParams]) -> dict[str, Any]:
    """The ``Params`` JSON schema (pydantic's), made drawable by django-jsonform."""
    schema = cls.model_json_schema()
    defs = dict(schema.get("$defs", {}))
    resolved: dict[str, Any] = _resolve(schema, defs)
    resolved["type"] = "object"
    resolved.setdefault("properties", {})
    resolved.pop("additionalProperties", None)
    return resolved
