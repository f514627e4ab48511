"""What an event may hold so that every store can keep it: the broker (pickled,
within Python's recursion limit), PostgreSQL's text and jsonb (no NUL character,
no unpaired surrogate) and SQLite alike. An event that passes is never refused
later by one database and kept by another."""

from __future__ import annotations

from typing import Any

__all__ = ["data_problem", "string_problem"]


def string_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def data_problem(value: Any, max_depth: int, *, strings: bool = True) -> str | None:
    """Why the JSON ``value`` cannot be stored, or None: nested deeper than
    ``max_depth`` arrays/objects, or a string or key :func:`string_problem`
    refuses. Iterative, so any depth is safe to inspect. ``strings=False``: the
    depth only, for data whose strings are known to be storable (ingest/fast_parse.py)."""
    if isinstance(value, str):
        return string_problem(value) if strings else None
    if not isinstance(value, dict | list):
        return None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if strings:
                for key in node:
                    if isinstance(key, str) and (problem := string_problem(key)):
                        return problem
            children: Any = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= max_depth:
                    return f"must not nest deeper than {max_depth} arrays/objects"
                stack.append((child, depth + 1))
            elif (
                strings
                and isinstance(child, str)
                and (not child.isascii() or "\x00" in child)
                and (problem := string_problem(child))
            ):
                return problem
    return None
