"""A plugin's parameters as the admin's editor draws them, and back.

The editor (django-jsonform) draws a subset of JSON Schema. From the JSON schema
of a plugin's ``Params`` model (pydantic's), this module makes one it draws,
whatever the parameters' types, and turns the stored parameters into the
editor's data and its data back, so that a save which changes nothing gives
back the parameters as they were:

* ``$ref`` inlined; ``X | None`` drawn as X when X is a text or number input,
  an empty one read back as None;
* a map with free keys (``dict[str, X]``: ``additionalProperties``) given the
  empty ``properties`` the editor needs (its keys come with "Add key");
* a value of any JSON (``Any``, ``dict[str, Any]``'s values, a model that
  contains itself, a union of several types, a tuple, any other ``X | None``)
  drawn as a JSON text box, and parsed back;
* a secret (``writeOnly``) drawn as a password field (``plugins.forms`` shows it
  empty and keeps the stored one when it is left so).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from plugins.base import PluginParams
from plugins.params import Loc

__all__ = [
    "EditorDataError",
    "params_editor_schema",
    "params_from_editor",
    "params_to_editor",
]

# Marks on the resolved schema, taken off before the editor sees it.
_JSON = "x-telemetron-json"  # drawn as JSON text
_NULLABLE = "x-telemetron-nullable"  # None allowed: drawn empty, read back from ""
_MARKS = (_JSON, _NULLABLE)
# What the editor needs an object's schema to hold, at least one of.
_OBJECT_SHAPES = ("properties", "keys", "oneOf", "anyOf", "allOf")
_SCALARS = ("string", "number", "integer", "boolean")
_EMPTIABLE = ("string", "number", "integer")  # drawn as inputs that can be left empty


class EditorDataError(ValueError):
    """The editor's data cannot be read back: (location, message) of each field."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


def _json_node(node: dict[str, Any]) -> dict[str, Any]:
    """A JSON text box in place of ``node`` (its title, description and default kept)."""
    out: dict[str, Any] = {"type": "string", "widget": "textarea", _JSON: True}
    for key in ("title", "description"):
        if key in node:
            out[key] = node[key]
    hint = 'Any JSON value, e.g. {"key": [1, 2]}.'
    out["description"] = f"{node.get('description', '')} {hint}".strip()
    if "default" in node:
        out["default"] = json.dumps(node["default"])
    return out


def _nullable(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    """``X | None`` as X marked nullable when X is drawn as a text or number input
    (left empty, it reads back as None); else, and for a union of several types,
    JSON text (a checkbox, a list or a group of fields has no empty state)."""
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if not isinstance(options, list):
            continue
        concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        rest = {k: v for k, v in node.items() if k != key}
        if len(concrete) != 1:
            return _json_node(node)
        out = _resolve({**concrete[0], **rest}, defs, seen)
        if len(concrete) == len(options) or out.get(_JSON):
            return out
        if out.get("type") not in _EMPTIABLE:
            return _json_node(node)
        out[_NULLABLE] = True
        if out.get("default", 0) is None:
            del out["default"]
        return out
    return None


def _enum_typed(node: dict[str, Any]) -> dict[str, Any]:
    """An enum given the type of its values (the editor needs one); an enum of
    values of several types as JSON text."""
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    types = {names.get(type(v)) for v in node["enum"]}
    if len(types) != 1 or None in types:
        return _json_node(node)
    return {**node, "type": types.pop()}


def _resolve(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` drawable by the editor, with the marks the data conversion reads."""
    if node is True or node == {}:
        return _json_node({})
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if name in seen:  # a model that contains itself: no end to draw
            return _json_node({**defs.get(name, {}), **rest})
        return _resolve({**copy.deepcopy(defs.get(name, {})), **rest}, defs, (*seen, name))
    if (union := _nullable(node, defs, seen)) is not None:
        return union
    if "enum" in node and "type" not in node:
        node = _enum_typed(node)
    if not any(k in node for k in ("type", "const", "properties", "allOf")):
        return _json_node(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: _resolve(v, defs, seen) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and value is not False:
            out[key] = _resolve(value, defs, seen)
        elif key == "allOf":
            out[key] = [_resolve(v, defs, seen) for v in value]
        elif key != "$defs":
            out[key] = value  # keywords whose values are data (default, enum, examples)
    if out.get("type") == "object" and not any(k in out for k in _OBJECT_SHAPES):
        out["properties"] = {}  # a map with free keys: they come from additionalProperties
    if out.get("type") == "array" and not isinstance(out.get("items"), dict):
        return _json_node(node)  # a tuple (prefixItems): no one schema for its items
    # The editor shows a field's ``help_text`` (a group's ``description``).
    if "description" in out and "help_text" not in out and out.get("type") in _SCALARS:
        out["help_text"] = out["description"]
    return out


def _resolved(cls: type[PluginParams]) -> dict[str, Any]:
    schema = cls.model_json_schema()
    resolved: dict[str, Any] = _resolve(schema, dict(schema.get("$defs", {})))
    resolved["type"] = "object"
    resolved.setdefault("properties", {})
    resolved.pop("additionalProperties", None)
    resolved.pop(_NULLABLE, None)
    return resolved


def _unmarked(node: Any) -> Any:
    if isinstance(node, list):
        return [_unmarked(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: _unmarked(v) for k, v in node.items() if k not in _MARKS}


def params_editor_schema(cls: type[PluginParams]) -> dict[str, Any]:
    """The ``Params`` JSON schema made drawable by the editor."""
    schema: dict[str, Any] = _unmarked(_resolved(cls))
    return schema


def _child(node: dict[str, Any], key: str | int) -> dict[str, Any]:
    """The schema of ``node``'s item or property ``key`` ({} when unknown)."""
    if node.get("type") == "array":
        items = node.get("items")
        return items if isinstance(items, dict) else {}
    known = node.get("properties", {}).get(key)
    if isinstance(known, dict):
        return known
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _to_editor(node: dict[str, Any], value: Any) -> Any:
    if node.get(_JSON):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if value is None and node.get(_NULLABLE):
        return ""
    if isinstance(value, dict):
        return {k: _to_editor(_child(node, k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_editor(_child(node, i), v) for i, v in enumerate(value)]
    return value


def params_to_editor(cls: type[PluginParams], params: Any) -> Any:
    """Stored parameters as the editor's data (JSON text where it draws a text box)."""
    return _to_editor(_resolved(cls), params)


def _from_editor(
    node: dict[str, Any], value: Any, loc: Loc, problems: list[tuple[Loc, str]]
) -> Any:
    if node.get(_JSON) and isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            problems.append((loc, f"not valid JSON: {exc}"))
            return value
    if node.get(_NULLABLE) and value in ("", None):
        return None
    if isinstance(value, dict):
        return {k: _from_editor(_child(node, k), v, (*loc, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_editor(_child(node, i), v, (*loc, i), problems) for i, v in enumerate(value)]
    return value


def params_from_editor(cls: type[PluginParams], data: Any) -> Any:
    """The editor's data as parameters to validate; EditorDataError when a JSON
    text box holds no JSON."""
    problems: list[tuple[Loc, str]] = []
    params = _from_editor(_resolved(cls), data, (), problems)
    if problems:
        raise EditorDataError(problems)
    return params
