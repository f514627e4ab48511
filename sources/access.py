"""Who may write and read: the one service every endpoint asks.

``write_access(request)`` reads the write key (``ingest.auth = "required"``) as
``Authorization: Bearer <key>``, HTTP Basic with the key as user name (what
Segment-style SDKs send), ``X-Write-Key`` or ``?key=`` (``sendBeacon`` can set
no header); a missing or unknown key is a 401. The :class:`WriteAccess` it
returns then says, per event, whether its source id may be written: the key's
own source only, an enabled source only, and from a browser only an origin the
source (or ``ingest.allowed_origins``) allows. ``read_access_check`` guards
``/stats*`` and ``/metrics`` with read tokens (``security.read_auth``).

Everything is read from the process's live directory (:mod:`sources.live`):
no database query per request. A process that could not read it yet (the
database away since it started) answers ``503`` to a key or token it cannot
find: the key store is unreachable, the key not necessarily wrong.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from django.http import HttpRequest

from core.config import get_config
from core.errors import Forbidden, ServiceUnavailable, Unauthorized
from sources.directory import Directory, SourceEntry
from sources.keys import digest
from sources.live import get_directory, live_directory

__all__ = ["WriteAccess", "key_access", "presented_key", "read_access_check", "write_access"]

_MISSING_KEY = (
    "A write key is required: send it as 'Authorization: Bearer <key>', HTTP Basic"
    " (the key as user name), an 'X-Write-Key' header or a 'key' query parameter"
)


def _basic_user(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def presented_key(request: HttpRequest) -> str | None:
    """The key or token the request carries, in the order of the module docstring."""
    meta = request.META
    auth = meta.get("HTTP_AUTHORIZATION")
    if auth:
        scheme, _, credentials = auth.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return credentials.strip() or None
        if scheme == "basic":
            return _basic_user(credentials.strip())
    header = meta.get("HTTP_X_WRITE_KEY")
    if header:
        return str(header).strip()
    return query_key(meta.get("QUERY_STRING", ""))


def query_key(query: str) -> str | None:
    """The ``key`` parameter of a query string (cheaper than parsing it all)."""
    if "key=" not in query:
        return None
    for part in query.split("&"):
        if part.startswith("key="):
            return unquote_plus(part[4:]) or None
    return None


class WriteAccess:
    """What one request may write (see the module docstring)."""

    __slots__ = ("directory", "key_source", "origin", "request")

    def __init__(
        self,
        directory: Directory,
        key_source: SourceEntry | None,
        origin: str | None,
        request: HttpRequest | None = None,
    ) -> None:
        self.directory = directory
        self.key_source = key_source
        self.origin = origin
        self.request = request  # for the service's own origin, when asked

    def refusal(self, source_id: int) -> str | None:
        """Why an event of ``source_id`` is refused (a 403), or None."""
        key_source = self.key_source
        if key_source is not None and key_source.id != source_id:
            return f"The write key is for source {key_source.id}, not {source_id}"
        source = key_source or self.directory.sources.get(source_id)
        if source is not None and not source.enabled:
            return f"Source {source_id} is disabled"
        if self.origin is not None and not self._origin_allowed(source):
            return f"Origin {self.origin} may not send events of source {source_id}"
        return None

    def source(self, source_id: int) -> SourceEntry | None:
        return self.key_source or self.directory.sources.get(source_id)

    def _origin_allowed(self, source: SourceEntry | None) -> bool:
        origin = self.origin
        assert origin is not None
        if source is not None and source.origin_allowed(origin):
            return True
        if origin_globally_allowed(origin):
            return True
        return self.request is not None and origin == own_origin(self.request)


def origin_globally_allowed(origin: str) -> bool:
    allowed = get_config().ingest.allowed_origins
    return "*" in allowed or origin in allowed


def own_origin(request: HttpRequest) -> str:
    """This service's origin as the request reached it (a same-origin page)."""
    meta = request.META
    host = meta.get("HTTP_HOST") or meta.get("SERVER_NAME", "")
    return f"{request.scheme}://{host}".lower()


def request_origin(request: HttpRequest) -> str | None:
    """The Origin a browser sent (lower-cased), or None."""
    origin = request.META.get("HTTP_ORIGIN")
    return str(origin).lower() if origin else None


def write_access(request: HttpRequest) -> WriteAccess:
    """The request's write access, or Unauthorized (401)."""
    directory = get_directory()
    origin = request_origin(request)
    key_source = None
    if get_config().ingest.auth == "required":
        key_source = _key_source(directory, presented_key(request))
    return WriteAccess(directory, key_source, origin, request)


def _key_source(directory: Directory, key: str | None) -> SourceEntry:
    if key is None:
        raise Unauthorized(_MISSING_KEY)
    entry = directory.keys.get(digest(key))
    if entry is None:
        _unloaded_check(directory, "write keys")
        raise Unauthorized("Unknown or revoked write key")
    live_directory().used_keys.add(entry.id)
    return entry.source


def _unloaded_check(directory: Directory, what: str) -> None:
    """ServiceUnavailable (503) while the directory could not be read yet."""
    if not directory.loaded:
        raise ServiceUnavailable(
            f"The {what} cannot be checked now (the database is unreachable); retry later",
            get_config().ingest.retry_after,
        )


def key_access(request: HttpRequest, key: str | None) -> WriteAccess:
    """The access of a write key, whatever ``ingest.auth`` says (the Segment API,
    whose events name no source: the key's is theirs); Unauthorized (401)
    without a live one."""
    directory = get_directory()
    return WriteAccess(directory, _key_source(directory, key), request_origin(request), request)


def read_access_check(request: HttpRequest, *, scope: str) -> None:
    """With ``security.read_auth = "token"``: a live read token of ``scope``
    (``Authorization: Bearer <token>``), else 401 (none, unknown) or 403."""
    if get_config().security.read_auth == "off":
        return
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"A read token of scope {scope!r} is required: Authorization: Bearer")
    directory = get_directory()
    entry = directory.tokens.get(digest(token.strip()))
    if entry is None:
        _unloaded_check(directory, "read tokens")
        raise Unauthorized("Unknown or revoked read token")
    live_directory().used_tokens.add(entry.id)
    if entry.scope != scope:
        raise Forbidden(f"This read token's scope is {entry.scope!r}, not {scope!r}")
