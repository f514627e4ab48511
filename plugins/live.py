"""The live plugin chains every request and batch uses.

The database (``PluginConfig`` rows, edited in the admin) is the live state;
``config.toml`` seeds it at start (:mod:`plugins.sync`) and stands in while the
table is still empty.

Hot reload, with the ingest hot path in mind: :func:`get_chains` costs one
clock reading and one comparison per call. Once per ``plugins.reload_interval``
seconds one caller (the others keep going with the chains in hand) runs one
small query, the rows' ids and ``updated_at``; only when that changed are the
rows read and the chains rebuilt. A change that fails to build is logged and
never replaces the chains in use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.config import get_config
from plugins.base import PluginSpec
from plugins.chains import Chains, config_chains, specs_from_config
from plugins.registry import get_registry

__all__ = ["clock_override", "get_chains", "plugins_in_use", "reset"]

log = logging.getLogger("telemetron.plugins")


@dataclass(frozen=True, slots=True)
class _Live:
    chains: Chains
    next_check: float  # clock() value after which the database is asked again
    fingerprint: tuple[object, ...] | None  # what the last check read (None: nothing)
    read_failed: bool = False


_live: _Live | None = None
_refresh_lock = threading.Lock()
_clock: Callable[[], float] = time.monotonic


def get_chains() -> Chains:
    """The chains every request and batch uses."""
    live = _live
    if live is not None and _clock() < live.next_check:
        return live.chains
    return _refresh(live)


def plugins_in_use() -> tuple[list[str], list[str]]:
    """The names of the validators and of the processors this process holds,
    without asking the database or building a plugin (what ``/metrics`` names
    its series after: a scrape opens no connection, which on SQLite would
    create a database file that was taken away); config.toml's before the
    process built any chains."""
    live = _live
    if live is not None:
        chains = live.chains
        return [v.name for v in chains.validators], [p.name for p in chains.processors]
    specs = specs_from_config(get_config())
    return (
        [s.name for s in specs if s.kind == "validator"],
        [s.name for s in specs if s.kind == "processor"],
    )


def _refresh(seen: _Live | None) -> Chains:
    if seen is not None:
        if not _refresh_lock.acquire(blocking=False):
            return seen.chains  # another thread is checking; keep going meanwhile
    else:
        _refresh_lock.acquire()
    try:
        live = _live
        if live is not None and _clock() < live.next_check:
            return live.chains
        new = _check(live)
        _install(new)
        return new.chains
    finally:
        _refresh_lock.release()


def _install(new: _Live | None) -> None:
    global _live
    _live = new


def _specs(fingerprint: tuple[object, ...]) -> list[PluginSpec]:
    """The enabled rows, in chain order; config.toml while the table is empty
    (a database no ``serve`` or ``plugins sync`` has seeded yet)."""
    from plugins import selectors

    return selectors.plugin_specs_enabled() if fingerprint else specs_from_config(get_config())


def _check(live: _Live | None) -> _Live:
    from plugins import selectors  # the models are importable once Django is set up

    next_check = _clock() + get_config().plugins.reload_interval
    try:
        fingerprint = selectors.plugin_config_fingerprint()
        changed = live is None or fingerprint != live.fingerprint
        specs = _specs(fingerprint) if changed else []
    except Exception as exc:
        if live is None or not live.read_failed:
            log.warning(
                "cannot read the plugin configuration from the database (%s); %s",
                exc,
                "using config.toml" if live is None else "keeping the chains in use",
            )
        if live is None:
            return _Live(config_chains(), next_check, None, read_failed=True)
        return _Live(live.chains, next_check, live.fingerprint, read_failed=True)
    if not changed:
        assert live is not None
        return _Live(live.chains, next_check, fingerprint)
    try:
        chains = Chains.build(specs, get_registry())
    except Exception as exc:
        # A row that fails to build: keep what works and say why, once (the same
        # fingerprint is not rebuilt, so this is not repeated every interval).
        if live is None:
            log.error(
                "the plugin configuration in the database does not build (%s); "
                "using config.toml until it is fixed in the admin",
                exc,
            )
            return _Live(config_chains(), next_check, fingerprint)
        log.error(
            "plugin configuration change not applied (%s); keeping %s", exc, live.chains.describe()
        )
        return _Live(live.chains, next_check, fingerprint)
    if live is not None:
        log.info("plugin configuration reloaded: %s", chains.describe())
    return _Live(chains, next_check, fingerprint)


def reset(chains: Chains | None = None) -> None:
    """Forget the chains in use, so the next call reads the database again; or,
    given ``chains``, use exactly those (no reloading) until the next reset (tests)."""
    with _refresh_lock:
        _install(_Live(chains, math.inf, None) if chains is not None else None)


@contextmanager
def clock_override(clock: Callable[[], float]) -> Iterator[None]:
    """Read the reload interval off ``clock`` until the block ends (tests)."""
    global _clock
    before, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = before
