"""An unsigned 64-bit integer column on databases whose integers are signed
64-bit (SQLite, PostgreSQL): stored biased by 2**63, which keeps order and
every value from 0 to 2**64 - 1 without loss."""

from __future__ import annotations

from typing import Any

from django.db import models

__all__ = ["BIAS", "U64Field", "u64_to_db"]

BIAS = 2**63


def u64_to_db(value: int) -> int:
    return value - BIAS


class U64Field(models.BigIntegerField):
    description = "Unsigned 64-bit integer (stored biased by 2**63)"

    # Biased in get_prep_value, so Django's integer range checks of lookups see
    # the stored value. Not for a primary key that a ForeignKey points at: a
    # lookup through the relation prepares the value twice (biased twice).
    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else value - BIAS

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else value + BIAS

    @property
    def validators(self) -> list[Any]:  # the signed range checks don't apply
        return []

    def formfield(self, **kwargs: Any) -> Any:  # forms (the admin): 0 to 2**64 - 1
        return super().formfield(**{"min_value": 0, "max_value": 2**64 - 1, **kwargs})
