"""Reading a request body safely: the size limit, gzip (limit applied after
decompression, so a gzip bomb is never inflated past it)."""

from __future__ import annotations

import zlib

from django.http import HttpRequest

from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.metrics.recording import events_rejected
from core.metrics.series import TOO_LARGE

__all__ = ["read_body"]


def _too_large(limit: int) -> PayloadTooLarge:
    events_rejected(TOO_LARGE)  # one event: the body is not read
    return PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")


def read_body(request: HttpRequest, *, limit: int) -> bytes:
    """Return the (decompressed) body, or raise 413 / 415 / 400."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Invalid Content-Length header") from None
    if declared > limit:
        raise _too_large(limit)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit)

    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Unsupported Content-Encoding: {encoding} (use gzip or none)")
    return _gunzip(raw, limit)


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Every member of a gzip stream (``cat a.gz b.gz`` is one valid body),
    inflated to at most ``limit`` bytes in all."""
    out = bytearray()
    data = raw
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise _too_large(limit)
            out += inflater.flush()
        except zlib.error as exc:
            raise BadRequest(f"Invalid gzip body: {exc}") from None
        if len(out) > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise BadRequest("Invalid gzip body: truncated stream")
        data = inflater.unused_data
        if not data:
            return bytes(out)
