"""Plugin discovery through the entry-point groups: two plugins with one name
are refused, and a plugin that fails to import is recorded with its name
instead of stopping everything. The broken packages here are real installed
distributions (a ``*.dist-info`` on ``sys.path``), found by importlib.metadata."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.validators import SourceIdValidator
from plugins.base import Event, EventRejected, Processor, Validator
from plugins.registry import GROUPS, LoadFailure, Registry, RegistryError, discover

Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(dist, {group: {name: "module:attr"}}, {module: source})`` puts a
    distribution with those entry points and modules on ``sys.path``."""
    modules: list[str] = []

    def make(dist: str, entry_points: dict[str, dict[str, str]], sources: dict[str, str]) -> None:
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {target}" for name, target in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in sources.items():
            (tmp_path / f"{module}.py").write_text(source)
            modules.append(module)

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for module in modules:
        sys.modules.pop(module, None)


# --- the registry itself ------------------------------------------------------------


def _validator(name: str) -> type[Validator]:
    return type(name, (Validator,), {"name": name, "validate": lambda self, event: None})


def test_two_plugins_with_one_name_are_rejected() -> None:
    registry = Registry()
    first, second = _validator("Same"), _validator("Same")
    registry.register("validator", first)
    with pytest.raises(RegistryError, match="two validator plugins are named 'Same'"):
        registry.register("validator", second)
    assert registry.get("validator", "Same") is first


def test_registering_the_same_class_again_is_harmless() -> None:
    registry = Registry()
    cls = _validator("Once")
    registry.register("validator", cls)
    registry.register("validator", cls)
    assert registry.names("validator") == ["Once"]


def test_one_name_may_be_a_validator_and_a_processor() -> None:
    registry = Registry()
    registry.register("validator", _validator("Both"))
    registry.register("processor", type("Both", (Processor,), {"name": "Both"}))
    assert registry.names("validator") == registry.names("processor") == ["Both"]


def test_a_plugin_of_the_wrong_kind_is_rejected() -> None:
    with pytest.raises(RegistryError, match="not a Processor subclass"):
        Registry().register("processor", _validator("Wrong"))
    with pytest.raises(RegistryError, match="not a Validator subclass"):
        Registry().register("validator", object)  # type: ignore[arg-type]


# --- discovery ---------------------------------------------------------------------------


def test_builtins_are_discovered_through_their_entry_points() -> None:
    registry = discover(strict=True)
    assert registry.get("validator", "SourceIdValidator") is SourceIdValidator
    assert {"SourceIdValidator", "EventTypeValidator"} <= set(registry.names("validator"))
    assert "StorageProcessor" in registry.names("processor")
    assert registry.origins[("validator", "SourceIdValidator")].startswith("telemetron ")
    assert registry.packages[("validator", "SourceIdValidator")][0] == "telemetron"


def test_a_third_party_plugin_is_discovered(install: Install) -> None:
    install(
        "tp-allow-even",
        {GROUPS["validator"]: {"EvenOnly": "tp_even:EvenOnly"}},
        {
            "tp_even": (
                "from plugins.base import EventRejected, Validator\n"
                "class EvenOnly(Validator):\n"
                "    name = 'EvenOnly'\n"
                "    def validate(self, event):\n"
                "        if event.source_id % 2:\n"
                "            raise EventRejected(f'odd: {event.source_id}')\n"
            )
        },
    )
    registry = discover(strict=True)
    cls = registry.get("validator", "EvenOnly")
    assert cls is not None
    assert registry.packages[("validator", "EvenOnly")] == ("tp-allow-even", "1.0")
    plugin = cls(cls.Params())
    assert isinstance(plugin, Validator)
    event = Event.model_validate({"sourceId": 3, "type": "A", "timestamp": "2023-10-27T09:30:00Z"})
    with pytest.raises(EventRejected, match="odd: 3"):
        plugin.validate(event)


def test_failing_import_is_recorded_as_a_load_failure(install: Install) -> None:
    install(
        "tp-broken",
        {GROUPS["processor"]: {"BrokenProcessor": "tp_broken:BrokenProcessor"}},
        {"tp_broken": "raise RuntimeError('missing native library')\n"},
    )
    registry = discover()
    assert registry.get("processor", "BrokenProcessor") is None
    assert (
        LoadFailure(
            kind="processor",
            name="BrokenProcessor",
            target="tp_broken:BrokenProcessor",
            error="RuntimeError: missing native library",
            package="tp-broken",
            version="1.0",
        )
        in registry.failures
    )
    # The other plugins are still there.
    assert "StorageProcessor" in registry.names("processor")
    assert "SourceIdValidator" in registry.names("validator")


def test_missing_module_and_syntax_error_are_recorded_too(install: Install) -> None:
    install(
        "tp-more-broken",
        {
            GROUPS["validator"]: {
                "Ghost": "tp_no_such_module:Ghost",
                "Typo": "tp_typo:Typo",
            }
        },
        {"tp_typo": "class Typo(:\n"},
    )
    failures = {f.name: f for f in discover().failures}
    assert failures["Ghost"].error.startswith("ModuleNotFoundError: No module named")
    assert failures["Typo"].error.startswith("SyntaxError:")
    assert failures["Typo"].kind == "validator"


def test_strict_discovery_raises_the_import_error(install: Install) -> None:
    install(
        "tp-broken-strict",
        {GROUPS["processor"]: {"BrokenStrict": "tp_broken_strict:BrokenStrict"}},
        {"tp_broken_strict": "raise ImportError('no such thing')\n"},
    )
    with pytest.raises(ImportError, match="no such thing"):
        discover(strict=True)


def test_entry_point_name_must_match_the_plugin_name(install: Install) -> None:
    install(
        "tp-misnamed",
        {GROUPS["validator"]: {"Advertised": "tp_misnamed:Actual"}},
        {
            "tp_misnamed": (
                "from plugins.base import Validator\n"
                "class Actual(Validator):\n"
                "    name = 'Actual'\n"
            )
        },
    )
    registry = discover()
    [failure] = [f for f in registry.failures if f.name == "Advertised"]
    assert "loads a plugin named 'Actual'" in failure.error
    assert registry.get("validator", "Advertised") is registry.get("validator", "Actual") is None


def test_a_package_reusing_a_builtin_name_is_refused(install: Install) -> None:
    install(
        "tp-impostor",
        {GROUPS["validator"]: {"SourceIdValidator": "tp_impostor:SourceIdValidator"}},
        {
            "tp_impostor": (
                "from plugins.base import Validator\n"
                "class SourceIdValidator(Validator):\n"
                "    name = 'SourceIdValidator'\n"
                "    def validate(self, event):\n"
                "        pass\n"
            )
        },
    )
    registry = discover()
    [failure] = [f for f in registry.failures if f.name == "SourceIdValidator"]
    assert "two validator plugins are named 'SourceIdValidator'" in failure.error
    assert registry.get("validator", "SourceIdValidator") is not None  # exactly one kept
    with pytest.raises(RegistryError, match="two validator plugins"):
        discover(strict=True)
