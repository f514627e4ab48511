"""Dotted paths into an event's wire form (``type``, ``data.user.email``), as the
built-in transformers' parameters name fields. A list on the way applies the
rest of the path to each of its elements (``data.items.sku``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "path_check",
    "path_delete",
    "path_get",
    "path_parts",
    "path_pop",
    "path_replace",
    "path_set",
    "walk",
]

_ROOTS = ("type", "data", "id")


def path_parts(path: str) -> tuple[str, ...]:
    """``"data.a.b"`` as ``("data", "a", "b")``; ValueError for a path that names
    nothing a transformer may change (it starts at ``type``, ``data`` or ``id``)."""
    parts = tuple(path.split("."))
    if not path or any(not p for p in parts):
        raise ValueError(f"{path!r} is not a dotted path (e.g. data.user.email)")
    if parts[0] not in _ROOTS:
        raise ValueError(f"{path!r} must start with one of: {', '.join(_ROOTS)}")
    if parts[0] != "data" and len(parts) > 1:
        raise ValueError(f"{path!r}: only data has fields inside it")
    return parts


def path_check(path: str) -> str:
    """A pydantic validator's check of a path parameter."""
    path_parts(path)
    return path


def _parents(node: Any, parts: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The dicts that hold the path's last key (lists fanned out)."""
    if isinstance(node, list):
        for item in node:
            yield from _parents(item, parts)
        return
    if not isinstance(node, dict):
        return
    if len(parts) == 1:
        yield node
        return
    child = node.get(parts[0])
    if child is not None:
        yield from _parents(child, parts[1:])


def path_get(event: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at ``parts`` (the first one, where a list fans out), or None."""
    for parent in _parents(event, parts):
        if parts[-1] in parent:
            return parent[parts[-1]]
    return None


def path_set(event: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    """Set the value at ``parts``, making the dicts on the way (no fan-out)."""
    node = event
    for key in parts[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[parts[-1]] = value


def path_delete(event: dict[str, Any], parts: tuple[str, ...]) -> bool:
    """Remove the key at ``parts`` everywhere it is; whether one was."""
    found = False
    for parent in _parents(event, parts):
        if parts[-1] in parent:
            del parent[parts[-1]]
            found = True
    return found


def path_pop(event: dict[str, Any], parts: tuple[str, ...]) -> tuple[bool, Any]:
    """Remove and return the first value at ``parts`` (``(False, None)``: none)."""
    for parent in _parents(event, parts):
        if parts[-1] in parent:
            return True, parent.pop(parts[-1])
    return False, None


def path_replace(event: dict[str, Any], parts: tuple[str, ...], fn: Callable[[Any], Any]) -> None:
    """Replace every value at ``parts`` by ``fn(value)``."""
    for parent in _parents(event, parts):
        if parts[-1] in parent:
            parent[parts[-1]] = fn(parent[parts[-1]])


def walk(value: Any, fn: Callable[[str], str]) -> Any:
    """``value`` with every string in it (not keys) replaced by ``fn(string)``,
    changed in place where it is a dict or a list."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                value[key] = fn(item)
            elif isinstance(item, dict | list):
                walk(item, fn)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                value[index] = fn(item)
            elif isinstance(item, dict | list):
                walk(item, fn)
    return value
