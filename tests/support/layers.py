"""The project's top-level packages in their layers, read from the "Layers" block
of docs/architecture.md (the one place the order is written)."""

from __future__ import annotations

import re

from tests.support.procs import ROOT

__all__ = ["LAYERS", "PACKAGES", "layers_parse"]


def layers_parse(markdown: str) -> tuple[tuple[str, ...], ...]:
    """The layers, bottom first: each line of the first code block after the
    "## Layers" heading names its packages as ``name/`` words, top layer first."""
    section = markdown.split("\n## Layers\n", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, 'no code block under "## Layers"'
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    layers = [tuple(re.findall(r"(?:^|\s)([a-z_]+)/(?=\s|$)", line)) for line in lines]
    return tuple(reversed(layers))


LAYERS = layers_parse((ROOT / "docs" / "architecture.md").read_text())
PACKAGES = tuple(name for layer in LAYERS for name in layer)
