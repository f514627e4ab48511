"""The admin's parameters editor (django-jsonform) as a page sends it to the
browser: the schema it draws and the data it starts from."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["editor_config"]


def editor_config(page: str) -> dict[str, Any]:
    """The first editor's configuration on ``page``: ``schema``, and ``data``
    decoded (the widget sends it as JSON text)."""
    attribute = page.split('data-django-jsonform="', 1)[1].split('"', 1)[0]
    config: dict[str, Any] = json.loads(html.unescape(attribute))
    config["data"] = json.loads(config["data"])
    return config
