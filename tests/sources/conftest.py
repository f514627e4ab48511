"""Sources with keys for the in-process tests of the sources app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from core.config import Settings
from sources.services import source_create


@dataclass
class Keys:
    shop: str  # source 1
    blog: str  # source 2
    off: str  # source 3, disabled


@pytest.fixture
def keys(db: Any, use_config: Callable[..., Settings]) -> Keys:
    """ingest.auth = "required"; sources 1 and 2 enabled, 3 disabled, a key each.
    Source 1 allows https://shop.example and is limited to 5 events/s, burst 10."""
    use_config(ingest={"auth": "required"})
    _, shop = source_create(
        source_id=1, name="shop", origins=["https://shop.example"], rate_limit=5, rate_burst=10
    )
    _, blog = source_create(source_id=2, name="blog")
    _, off = source_create(source_id=3, name="retired", enabled=False)
    return Keys(shop.value, blog.value, off.value)
