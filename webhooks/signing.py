"""The signature of a webhook delivery: HMAC-SHA256 of the exact body bytes with
the shared secret, sent as ``X-Telemetron-Signature: sha256=<hex>`` (GitHub's
scheme). :func:`signature_verify` is what a receiver does (README, Built-in
plugins, has the same in a few lines)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "signature", "signature_verify"]

SIGNATURE_HEADER = "X-Telemetron-Signature"


def signature(body: bytes, secret: str) -> str:
    """The header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_verify(body: bytes, secret: str, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` (constant-time compare)."""
    return header is not None and hmac.compare_digest(signature(body, secret), header)
