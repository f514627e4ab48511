"""The parameters as the admin's editor (django-jsonform) draws them, and back
(plugins/editor.py): a schema it can draw for every installed plugin whatever
its types, and stored parameters that come back unchanged from the editor's
data, for each kind of parameter."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import Field

from plugins.base import PluginParams, Secret
from plugins.editor import (
    EditorDataError,
    params_editor_schema,
    params_from_editor,
    params_to_editor,
)
from plugins.params import params_initial, params_secret_keys
from plugins.registry import get_registry

# What the editor refuses to draw ("Invalid schema: ..."), as its own checks
# read: a node without a type, an object without properties, a reference.
SCHEMA_NODES = ("properties", "items", "additionalProperties")


def _undrawable(node: Any, where: str = "(top)") -> list[str]:
    if not isinstance(node, dict):
        return [] if isinstance(node, bool) else [f"{where}: not a schema"]
    problems = []
    if "type" not in node and "const" not in node:
        problems.append(f"{where}: no type")
    if any(k in node for k in ("$ref", "anyOf", "oneOf")):
        problems.append(f"{where}: a $ref, anyOf or oneOf left")
    if node.get("type") == "object" and "properties" not in node:
        problems.append(f"{where}: an object without properties")
    for key in SCHEMA_NODES:
        value = node.get(key)
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                problems += _undrawable(sub, f"{where}.{name}")
        elif value is not None and value is not False:
            problems += _undrawable(value, f"{where}[{key}]")
    return problems


def _installed() -> list[tuple[str, str]]:
    registry = get_registry()
    return [(kind, name) for kind in registry.plugins for name in registry.names(kind)]


@pytest.mark.parametrize(("kind", "name"), _installed())
def test_every_installed_plugin_gets_a_schema_the_editor_draws(kind: str, name: str) -> None:
    cls = get_registry().get(kind, name)  # type: ignore[arg-type]
    assert cls is not None
    schema = params_editor_schema(cls.Params)
    assert _undrawable(schema) == []
    assert set(schema["properties"]) == set(cls.Params.model_fields)
    assert not any(k.startswith("x-telemetron") for k in json.dumps(schema).split('"'))


def test_a_map_with_free_keys_is_an_object_with_empty_properties() -> None:
    """The cause of "Schema of type 'object' must have at least one of these keys"."""
    webhook = get_registry().get("processor", "WebhookProcessor")
    assert webhook is not None
    headers = params_editor_schema(webhook.Params)["properties"]["headers"]
    assert headers["type"] == "object" and headers["properties"] == {}
    assert headers["additionalProperties"] == {"type": "string"}


class Rule(PluginParams):
    field: str
    equals: str = ""


class Tree(PluginParams):
    label: str = ""
    children: list[Tree] = Field(default_factory=list)


class Window(PluginParams):
    start: int = 0


class Kinds(PluginParams):
    labels: dict[str, str] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    token: Secret
    tree: Tree = Field(default_factory=Tree)
    mode: Literal["fast", "safe"] = "safe"
    ratio: float = 0.5
    on: bool = False
    limit: int | None = None
    note: str | None = None
    anything: Any = None
    extra: dict[str, Any] = Field(default_factory=dict)
    either: int | str = 3
    mixed: Literal[1, "one"] = 1
    window: Window | None = None  # no empty state in the editor: JSON text
    ids: list[int] | None = None
    flag: bool | None = None
    pair: tuple[int, str] = (1, "a")


STORED: dict[str, Any] = {
    "labels": {"team": "ops", "env": "prod"},
    "rules": [{"field": "plan", "equals": "pro"}, {"field": "country", "equals": ""}],
    "token": "s3cret-token",
    "tree": {"label": "root", "children": [{"label": "leaf", "children": []}]},
    "mode": "fast",
    "ratio": 2.0,
    "on": True,
    "limit": None,
    "note": None,
    "anything": {"a": [1, None, "x"]},
    "extra": {"n": 1, "s": "text", "l": [1, 2], "o": {"k": False}},
    "either": "three",
    "mixed": "one",
    "window": None,
    "ids": [1, 2],
    "flag": None,
    "pair": [2, "b"],
}


def test_each_kind_of_parameter_comes_back_unchanged_from_the_editor() -> None:
    stored = Kinds.model_validate(STORED).model_dump(mode="json")
    assert stored == STORED
    shown = params_to_editor(Kinds, stored)
    # What the editor draws as JSON text, it is given as JSON text; an empty
    # optional field as an empty input.
    assert shown["anything"] == json.dumps(STORED["anything"], indent=2)
    assert shown["extra"]["o"] == '{\n  "k": false\n}'
    assert shown["tree"]["children"] == ['{\n  "label": "leaf",\n  "children": []\n}']
    assert shown["either"] == '"three"' and shown["mixed"] == '"one"'
    assert shown["limit"] == "" and shown["note"] == ""
    assert (shown["window"], shown["ids"], shown["flag"]) == ("null", "[\n  1,\n  2\n]", "null")
    assert shown["pair"] == '[\n  2,\n  "b"\n]'
    assert shown["labels"] == STORED["labels"] and shown["rules"] == STORED["rules"]

    back = Kinds.model_validate(params_from_editor(Kinds, shown)).model_dump(mode="json")
    assert back == stored


def test_the_schema_draws_each_kind_as_the_editor_knows_it() -> None:
    properties = params_editor_schema(Kinds)["properties"]
    assert properties["rules"]["items"]["properties"]["field"]["type"] == "string"
    assert properties["token"]["format"] == "password"
    assert properties["mode"]["enum"] == ["fast", "safe"] and properties["mode"]["type"] == "string"
    assert properties["limit"]["type"] == "integer" and "default" not in properties["limit"]
    for text in ("anything", "either", "mixed", "window", "ids", "flag", "pair"):
        assert properties[text]["widget"] == "textarea", text
    assert properties["extra"]["additionalProperties"]["widget"] == "textarea"
    # A model that contains itself: drawn down to where it repeats, then as JSON.
    assert properties["tree"]["properties"]["children"]["items"]["widget"] == "textarea"
    assert params_secret_keys(Kinds) == {"token"}


def test_an_empty_optional_field_reads_back_as_none() -> None:
    shown = params_to_editor(Kinds, {**STORED, "limit": 4, "note": "n"})
    shown |= {"limit": "", "note": ""}
    back = params_from_editor(Kinds, shown)
    assert back["limit"] is None and back["note"] is None
    assert params_from_editor(Kinds, {**shown, "limit": None})["limit"] is None


def test_text_that_is_not_json_is_refused_where_it_was_typed() -> None:
    shown = params_to_editor(Kinds, STORED)
    shown["extra"]["o"] = "{not json"
    shown["anything"] = "[1,"
    with pytest.raises(EditorDataError) as caught:
        params_from_editor(Kinds, shown)
    where = [loc for loc, _ in caught.value.problems]
    assert where == [("anything",), ("extra", "o")]
    assert all(msg.startswith("not valid JSON: ") for _, msg in caught.value.problems)


def test_a_new_row_starts_from_the_defaults_the_model_has() -> None:
    initial = params_initial(Kinds)
    assert "token" not in initial  # required: the operator gives it
    assert initial["rules"] == [] and initial["mode"] == "safe" and initial["limit"] is None
    assert initial["tree"] == {"label": "", "children": []}
