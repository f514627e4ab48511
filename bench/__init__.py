"""Telemetron's benchmark: load generator, floors and report (see bench/RESULTS.md)."""
