"""``CelTransformer``: rules in Google's Common Expression Language (CEL: compiled,
sandboxed, not Turing-complete), through Google's binding of cel-cpp,
``cel-expr-python``. Each rule is a condition and an action, compiled (parsed
and checked: an unknown name is an error) once when the chain is built; an
expression that does not compile is refused there (the admin's form, start-up)
with its position."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from plugins.base import (
    ClientInfo,
    EventDropped,
    EventRejected,
    PluginParams,
    Transformer,
    format_timestamp,
)

from .paths import path_check, path_delete, path_parts, path_pop, path_set

__all__ = ["CelTransformer", "cel_compile"]

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_STATUS = re.compile(r"^[A-Z_]+: ")  # cel-cpp's status code before its message


@functools.cache
def cel_env() -> Any:
    """What an expression may name: the event (its wire form) and the request's
    client, both maps; the standard functions and the strings extension.
    cel-cpp's binding is imported here, by the first rule compiled: a process
    with no CEL rule configured never loads it."""
    from cel_expr_python import cel
    from cel_expr_python.ext.ext_strings import ExtStrings

    return cel.NewEnv(
        variables={"event": cel.Type.DYN, "client": cel.Type.DYN}, extensions=[ExtStrings()]
    )


def cel_compile(expression: str) -> Any:
    """The compiled expression, or ValueError saying where it does not compile
    (``line 1, column 15: Syntax error: …``, ``undeclared reference to 'x'``)."""
    try:
        return cel_env().compile(expression)
    except Exception as exc:
        text = str(exc)
        found = _POSITION.search(text)
        if found is None:
            raise ValueError(f"does not compile: {text.splitlines()[0]}") from None
        line, column, message = found.groups()
        message = message.split(" expecting {", 1)[0]  # (the parser's list of every token)
        message = message.replace(" (in container '')", "")
        raise ValueError(f"does not compile at line {line}, column {column}: {message}") from None


def _evaluated(expression: Any, activation: Any) -> Any:
    """The expression's value as Python data; ValueError with CEL's error."""
    from cel_expr_python import cel  # (loaded by cel_env already)

    value = expression.eval(activation)
    if value.type() == cel.Type.ERROR:  # e.g. "NOT_FOUND: Key not found in map : …"
        raise ValueError(_STATUS.sub("", str(value.plain_value())))
    return value.plain_value()


def _plain(value: Any) -> Any:
    """A CEL value as JSON data (timestamps as RFC 3339, durations in seconds)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    raise ValueError(f"a {type(value).__name__} cannot be stored in an event")


def _shown(event: dict[str, Any]) -> dict[str, Any]:
    """The event as expressions see it: without data, an empty map (so that
    ``has(event.data.x)`` is false rather than an error)."""
    return event if event.get("data") is not None else {**event, "data": {}}


class Rule(PluginParams):
    """One rule: when its condition holds, its action."""

    name: str = Field(
        "",
        max_length=100,
        description="Its name, in errors and as the reason a drop is counted under "
        "(empty: rule_<n>).",
    )
    when: str = Field(
        "true",
        min_length=1,
        description='A CEL condition on event and client, e.g. event.type == "debug".',
    )
    action: Literal["drop", "set", "rename", "delete"] = Field(
        description="drop the event; set field to value; rename field to to; delete field."
    )
    field: str = Field(
        "",
        description="The field set, renamed or deleted: type, id, data or data.<path>.",
    )
    value: str = Field("", description="For set: a CEL expression whose value is stored in field.")
    to: str = Field("", description="For rename: the field's new path (data.<path>).")

    _when: Any = PrivateAttr(None)
    _value: Any = PrivateAttr(None)

    @field_validator("when")
    @classmethod
    def _when_compiles(cls, v: str) -> str:
        cel_compile(v)
        return v

    @field_validator("value")
    @classmethod
    def _value_compiles(cls, v: str) -> str:
        if v:
            cel_compile(v)
        return v

    @model_validator(mode="after")
    def _action_complete(self) -> Rule:
        if self.action != "drop":
            if not self.field:
                raise ValueError(f"a {self.action} rule needs a field")
            path_check(self.field)
        if self.action == "set" and not self.value:
            raise ValueError("a set rule needs a value (a CEL expression)")
        if self.action == "rename":
            if not self.to:
                raise ValueError("a rename rule needs to (the new path)")
            if not (self.field.startswith("data.") and self.to.startswith("data.")):
                raise ValueError("rename moves a field inside data: data.<path> to data.<path>")
            path_check(self.to)
        if self.action == "delete" and not self.field.startswith("data."):
            raise ValueError("delete removes a field inside data (data.<path>)")
        # Compiled once here: every chain build validates its parameters anew.
        self._when = cel_compile(self.when)
        self._value = cel_compile(self.value) if self.value else None
        return self


class CelTransformer(Transformer):
    """Rules in CEL, in order: each a condition on the event (and the client) and
    an action: drop the event, set a field to an expression's value, rename a
    field, delete a field."""

    name = "CelTransformer"

    class Params(PluginParams):
        rules: list[Rule] = Field(
            default_factory=list, description="Applied in order; every rule whose condition holds."
        )

    params: CelTransformer.Params

    def __init__(self, params: CelTransformer.Params) -> None:
        super().__init__(params)
        self._rules = [
            (
                rule.name or f"rule_{n}",
                rule._when,
                rule.action,
                path_parts(rule.field) if rule.field else (),
                rule._value,
                path_parts(rule.to) if rule.to else (),
            )
            for n, rule in enumerate(params.rules, 1)
        ]
        self._always = [r.when.strip() == "true" for r in params.rules]

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        env = cel_env()
        who = {"ip": client.ip or "", "userAgent": client.user_agent or ""}
        activation = None  # made when a rule first needs it, again after a change
        for (name, when, action, field, value, to), always in zip(
            self._rules, self._always, strict=True
        ):
            try:
                if activation is None and (not always or value is not None):
                    activation = env.Activation({"event": _shown(event), "client": who})
                hit = always or _evaluated(when, activation)
                if hit is not True and hit is not False:
                    raise ValueError(f"the condition is a {type(hit).__name__}, not a bool")
                if not hit:
                    continue
                if action == "drop":
                    raise EventDropped(name)
                if action == "set":
                    path_set(event, field, _plain(_evaluated(value, activation)))
                elif action == "delete":
                    path_delete(event, field)
                else:
                    found, moved = path_pop(event, field)
                    if found:
                        path_set(event, to, moved)
                activation = None  # the next rules see the change
            except EventDropped:
                raise
            except Exception as exc:
                raise EventRejected(f"rule {name}: {exc}") from None
        return event
