"""A plugin's ``Params`` model seen from outside: its validation messages (the
same for config.toml, the admin and ``manage.py plugins``), its defaults and its
secrets (the admin's editor: :mod:`plugins.editor`)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from plugins.base import PluginParams
from telemetron_site.errors import Loc, loc_text, validation_messages

__all__ = [
    "REDACTED",
    "Loc",
    "params_defaults",
    "params_initial",
    "params_messages",
    "params_problems_text",
    "params_redacted",
    "params_secret_keys",
]

REDACTED = "********"


def params_messages(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Each error as (location, message), e.g. ``(("allowed", 0), "Input should be
    a valid integer")``; an unexpected key reads "unknown parameter"."""
    return validation_messages(exc, unknown="unknown parameter")


def params_problems_text(problems: list[tuple[Loc, str]]) -> str:
    """Every (location, message) on one line: ``allowed.0: Input should be ...``."""
    return "; ".join(f"{loc_text(loc, '(all)')}: {msg}" for loc, msg in problems)


def params_defaults(cls: type[PluginParams]) -> dict[str, Any] | None:
    """The parameters a plugin gets when none are given, or None when some are
    required."""
    try:
        return cls().model_dump(mode="json")
    except ValidationError:
        return None


def params_initial(cls: type[PluginParams]) -> dict[str, Any]:
    """The parameters that have a default, with it: what a form for a new row
    starts from (the required ones are left for the operator to give)."""
    values = {
        name: field.get_default(call_default_factory=True)
        for name, field in cls.model_fields.items()
        if not field.is_required()
    }
    return cls.model_construct(**values).model_dump(mode="json", include=set(values))


def params_secret_keys(cls: type[PluginParams] | None) -> frozenset[str]:
    """The parameters the admin never shows (``plugins.base.Secret``: writeOnly)."""
    if cls is None:
        return frozenset()
    properties = cls.model_json_schema().get("properties", {})
    return frozenset(k for k, v in properties.items() if _write_only(v))


def _write_only(node: Any) -> bool:
    """A property marked writeOnly, itself or as an option (``Secret | None``)."""
    if not isinstance(node, dict):
        return False
    options = [*node.get("anyOf", ()), *node.get("oneOf", ())]
    return bool(node.get("writeOnly")) or any(_write_only(o) for o in options)


def params_redacted(params: Any, secret_keys: frozenset[str]) -> Any:
    """``params`` with each secret that is set replaced by ``REDACTED``."""
    if not secret_keys or not isinstance(params, dict):
        return params
    return {k: (REDACTED if k in secret_keys and v else v) for k, v in params.items()}
