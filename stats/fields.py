"""The u64 column lives in :mod:`telemetron_site.fields` (the sources app uses it
too, and sits below stats); this name stays for stats' migrations and store."""

from __future__ import annotations

from telemetron_site.fields import BIAS, U64Field, u64_to_db

__all__ = ["BIAS", "U64Field", "u64_to_db"]
