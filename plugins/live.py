"""The live plugin chains every request and batch uses.

The database (``PluginConfig`` rows, edited in the admin) is the live state;
``config.toml`` seeds it at start (:mod:`plugins.sync`) and stands in while the
table is still empty. Kept live as :mod:`core.live` says (a call costs one
clock reading and one comparison; the rows are read again only when their ids
and ``updated_at`` changed, at most once per ``plugins.reload_interval``). A
change that fails to build is logged and never replaces the chains in use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from core.config import get_config
from core.live import Fingerprint, LiveValue
from plugins.base import PluginSpec
from plugins.chains import Chains, config_chains, specs_from_config
from plugins.registry import get_registry

__all__ = ["clock_override", "get_chains", "plugins_in_use", "reset"]

log = logging.getLogger("telemetron.plugins")


class _LiveChains(LiveValue[Chains]):
    def _interval(self) -> float:
        return get_config().plugins.reload_interval

    def _fingerprint(self) -> Fingerprint:
        from plugins import selectors  # the models are importable once Django is set up

        return selectors.plugin_config_fingerprint()

    def _load(self, fingerprint: Fingerprint, current: Chains | None) -> Chains:
        specs = _specs(fingerprint)
        try:
            chains = Chains.build(specs, get_registry())
        except Exception as exc:
            # A row that fails to build: keep what works and say why, once (the same
            # fingerprint is not rebuilt, so this is not repeated every interval).
            if current is None:
                log.error(
                    "the plugin configuration in the database does not build (%s); "
                    "using config.toml until it is fixed in the admin",
                    exc,
                )
                return config_chains()
            log.error(
                "plugin configuration change not applied (%s); keeping %s",
                exc,
                current.describe(),
            )
            return current
        if current is not None:
            log.info("plugin configuration reloaded: %s", chains.describe())
        return chains

    def _unreadable(self, exc: Exception, current: Chains | None, *, first: bool) -> Chains:
        if first:
            log.warning(
                "cannot read the plugin configuration from the database (%s); %s",
                exc,
                "using config.toml" if current is None else "keeping the chains in use",
            )
        return config_chains() if current is None else current


def _specs(fingerprint: Fingerprint) -> list[PluginSpec]:
    """The enabled rows, in chain order; config.toml while the table is empty
    (a database no ``serve`` or ``plugins sync`` has seeded yet)."""
    from plugins import selectors

    return selectors.plugin_specs_enabled() if fingerprint else specs_from_config(get_config())


_live = _LiveChains()

get_chains = _live.get  # the chains every request and batch uses


def plugins_in_use() -> tuple[list[str], list[str], list[str]]:
    """The names of the validators, the transformers and the processors this process holds,
    without asking the database or building a plugin (what ``/metrics`` names
    its series after: a scrape opens no connection, which on SQLite would
    create a database file that was taken away); config.toml's before the
    process built any chains."""
    chains = _live.peek()
    if chains is not None:
        return (
            [v.name for v in chains.validators],
            [t.name for t in chains.transformers],
            [p.name for p in chains.processors],
        )
    specs = specs_from_config(get_config())
    return (
        [s.name for s in specs if s.kind == "validator"],
        [s.name for s in specs if s.kind == "transformer"],
        [s.name for s in specs if s.kind == "processor"],
    )


def reset(chains: Chains | None = None) -> None:
    """Forget the chains in use, so the next call reads the database again; or,
    given ``chains``, use exactly those (no reloading) until the next reset (tests)."""
    _live.pin(chains)


@contextmanager
def clock_override(clock: Callable[[], float]) -> Iterator[None]:
    """Read the reload interval off ``clock`` until the block ends (tests)."""
    before, _live.clock = _live.clock, clock
    try:
        yield
    finally:
        _live.clock = before
