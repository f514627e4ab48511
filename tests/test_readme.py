"""The README's worked examples of the built-in plugins are configurations that
start: each TOML block of "Built-in plugins" builds its plugins."""

from __future__ import annotations

import re
import tomllib

import pytest

from core.config import ArchiveConfig
from plugins.base import PluginSpec
from plugins.chains import build_plugin
from plugins.registry import get_registry
from tests.support.procs import ROOT

SECTION = (ROOT / "README.md").read_text().split("## Built-in plugins", 1)[1].split("\n## ", 1)[0]
BLOCKS = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", SECTION, re.S)]


def test_each_built_in_plugin_has_a_worked_example() -> None:
    named = {
        name
        for b in BLOCKS
        for s in ("validation", "processing")
        for name in b.get(s, {}).get("plugins", {})
    }
    assert named == {"JsonSchemaValidator", "ArchiveProcessor", "WebhookProcessor"}


@pytest.mark.parametrize("block", BLOCKS)
def test_the_examples_build(block: dict[str, object]) -> None:
    for section, kind in (("validation", "validator"), ("processing", "processor")):
        for name, params in block.get(section, {}).get("plugins", {}).items():  # type: ignore[attr-defined]
            build_plugin(PluginSpec(kind, name, params), get_registry())  # type: ignore[arg-type]
    if "archive" in block:
        ArchiveConfig.model_validate(block["archive"])
