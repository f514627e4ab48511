"""Write keys and read tokens as secrets: made random, kept as a digest.

A key is ``tlw_`` (a read token ``tlr_``) and 40 characters of URL-safe base64
(240 random bits). Its SHA-256 digest is what the database holds and what a
process looks a presented key up by; its first 12 characters (the prefix) name
it in lists and logs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

__all__ = ["PREFIX_LENGTH", "READ_TOKEN", "WRITE_KEY", "NewSecret", "digest", "secret_new"]

WRITE_KEY = "tlw_"
READ_TOKEN = "tlr_"
PREFIX_LENGTH = 12
_RANDOM_BYTES = 30  # 240 bits, 40 characters


@dataclass(frozen=True)
class NewSecret:
    """A secret just made: ``value`` is shown once and never stored."""

    value: str
    prefix: str
    digest: str


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def secret_new(kind: str) -> NewSecret:
    """A new write key (``kind`` = WRITE_KEY) or read token (READ_TOKEN)."""
    value = kind + secrets.token_urlsafe(_RANDOM_BYTES)
    return NewSecret(value=value, prefix=value[:PREFIX_LENGTH], digest=digest(value))
