"""``Sampler``: keep 1 in N events, per event type or per source, decided by a
hash of the event's id (or, without one, of its content), so a retried event
is kept or dropped exactly as the first time."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field

from plugins.base import ClientInfo, EventDropped, PluginParams, Transformer

__all__ = ["Sampler"]

_SPACE = 2**64


class Sampler(Transformer):
    """Keeps 1 in N events per type or per source (N per key, or a default),
    by a hash of the event's id, or of its content when it has none: a retry is
    kept or dropped the same way. Dropped events count as sampled."""

    name = "Sampler"

    class Params(PluginParams):
        by: Literal["type", "source"] = Field(
            "type", description="What rates are per: the event's type or its source id."
        )
        rates: dict[str, Annotated[int, Field(ge=1)]] = Field(
            default_factory=dict,
            description="N per type (or per source id, as text): keep 1 event in N.",
        )
        default_rate: int = Field(
            1, ge=1, description="N for the types or sources not in rates (1: keep all)."
        )
        salt: str = Field(
            "", max_length=64, description="Mixed into the hash: another salt keeps another sample."
        )

    params: Sampler.Params

    def __init__(self, params: Sampler.Params) -> None:
        super().__init__(params)
        self._field = "type" if params.by == "type" else "sourceId"
        self._rates = params.rates
        self._salt = params.salt.encode()

    def keeps(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` is in the sample (a pure function of the event)."""
        key = str(event.get(self._field))
        rate = self._rates.get(key, self.params.default_rate)
        if rate <= 1:
            return True
        event_id = event.get("id")
        if event_id is not None:
            basis = f"{event.get('sourceId')}\0{event_id}".encode()
        else:
            basis = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.blake2b(basis, digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "big") * rate < _SPACE

    def transform(self, event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        if not self.keeps(event):
            raise EventDropped("sampled")
        return event
