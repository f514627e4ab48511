"""The WebhookProcessor: each batch forwarded as one signed JSON POST.

* Body: ``{"batch_id": ..., "events": [...]}``, the events in the API's shape
  (only those the ``event_types`` / ``sources`` filters keep; no POST when none
  is left). The body of a batch is the same on every retry and replay.
* Headers: ``Idempotency-Key`` (the batch id: the same on every retry, broker
  redelivery and ``dlq replay``), ``X-Telemetron-Signature: sha256=<HMAC-SHA256
  of the body with the secret>``, and the operator's extra headers.
* A non-2xx answer (a redirect included), a timeout or a connection error is a
  :class:`~plugins.base.ProcessingError`: retried, then bisected and
  dead-lettered like any processor failure; a part of a bisected batch is sent
  with its own id, ``<batch id>.0`` / ``<batch id>.1`` (README: what a receiver sees).
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from plugins.base import U64_MAX, Batch, Event, PluginParams, ProcessingError, Processor, Secret
from webhooks.signing import SIGNATURE_HEADER, signature

if TYPE_CHECKING:
    import httpx

# httpx (about 8 MB of memory with what it imports) is imported by the first
# delivery: every process imports this plugin class, only queue workers with a
# webhook configured send anything (bench/RESULTS.md, issue 23).

__all__ = ["RESERVED_HEADERS", "WebhookProcessor"]

RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("Content-Type", "Content-Length", "Host", "Idempotency-Key", SIGNATURE_HEADER)
)
USER_AGENT = "Telemetron-Webhook/1"
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook's address, or None."""
    if url != url.strip() or any(c.isspace() for c in url):
        return "must not contain spaces"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must start with https:// (or http://)"
    if not parts.hostname:
        return "must name a host, e.g. https://hooks.example.com/telemetron"
    if parts.username is not None or parts.password is not None:
        return (
            "must not hold credentials (they would show in logs): use headers, e.g. Authorization"
        )
    if parts.fragment:
        return "must not have a #fragment"
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "has an invalid port"
    return None


class WebhookProcessor(Processor):
    """Forward each batch as one JSON POST, signed (HMAC-SHA256) and with an
    Idempotency-Key (the batch id); a non-2xx answer or a timeout is retried, then
    dead-lettered, and `manage.py dlq replay` sends it again with the same key.

    Filters on event types and sources make it an alert hook too."""

    name = "WebhookProcessor"

    class Params(PluginParams):
        url: str = Field(
            description="Where to POST each batch.",
            examples=["https://hooks.example.com/telemetron"],
        )
        secret: Secret = Field(
            description="Shared secret of the HMAC-SHA256 signature (at least 16 characters,"
            " e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))').",
        )
        timeout: float = Field(
            5.0, gt=0, le=60, description="Seconds to wait to connect, and for each read."
        )
        headers: dict[str, str] = Field(
            default_factory=dict,
            description="Extra request headers, e.g. Authorization.",
            examples=[{"Authorization": "Bearer <token>"}],
        )
        event_types: list[str] = Field(
            default_factory=list,
            description="Forward only events of these types; empty forwards every type.",
        )
        sources: list[Annotated[int, Field(ge=0, le=U64_MAX)]] = Field(
            default_factory=list,
            description="Forward only events of these source ids; empty forwards every source.",
        )

        @field_validator("url")
        @classmethod
        def _url(cls, url: str) -> str:
            if problem := url_problem(url):
                raise ValueError(problem)
            return url

        @field_validator("secret")
        @classmethod
        def _secret(cls, secret: Secret) -> Secret:
            value = secret.get_secret_value()
            if len(value) < 16:
                raise ValueError("must be at least 16 characters long")
            if value != value.strip():
                raise ValueError("must not start or end with spaces")
            return secret

        @field_validator("headers")
        @classmethod
        def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
            for name, value in headers.items():
                if not name or not set(name) <= _TOKEN:
                    raise ValueError(f"{name!r} is not a valid header name")
                if name.lower() in RESERVED_HEADERS:
                    raise ValueError(f"{name} is set by the webhook itself")
                if any(c in value for c in "\r\n\x00"):
                    raise ValueError(f"the value of {name} must be one line")
            return headers

    params: WebhookProcessor.Params

    def __init__(self, params: WebhookProcessor.Params) -> None:
        super().__init__(params)
        self._types = frozenset(params.event_types)
        self._sources = frozenset(params.sources)
        self._secret = params.secret.get_secret_value()
        self._headers = {**params.headers, "Content-Type": "application/json"}
        self._headers.setdefault("User-Agent", USER_AGENT)
        self._client: tuple[int, httpx.Client] | None = None
        self._lock = threading.Lock()

    def _wanted(self, event: Event) -> bool:
        return (not self._types or event.type in self._types) and (
            not self._sources or event.source_id in self._sources
        )

    def _http(self) -> httpx.Client:
        """One keep-alive client per process (a forked worker makes its own)."""
        import httpx

        with self._lock:
            if self._client is None or self._client[0] != os.getpid():
                timeout = httpx.Timeout(self.params.timeout)
                self._client = (os.getpid(), httpx.Client(timeout=timeout, follow_redirects=False))
            return self._client[1]

    def body(self, batch: Batch) -> bytes | None:
        """What is POSTed for ``batch`` (None: no event passes the filters)."""
        events = [e.to_wire() for e in batch.events if self._wanted(e)]
        if not events:
            return None
        payload = {"batch_id": batch.id, "events": events}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def process(self, batch: Batch) -> None:
        body = self.body(batch)
        if body is None:
            return
        headers = {
            **self._headers,
            "Idempotency-Key": batch.id,
            SIGNATURE_HEADER: signature(body, self._secret),
        }
        url = self.params.url
        import httpx

        try:
            response = self._http().post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ProcessingError(
                f"webhook {url}: no answer within {self.params.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ProcessingError(f"webhook {url}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            text = " ".join(response.text[:200].split())
            raise ProcessingError(
                f"webhook {url} answered {response.status_code}{': ' + text if text else ''}"
            )
