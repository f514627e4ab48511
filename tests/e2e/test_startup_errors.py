"""Start-up errors of `manage.py serve`: one clear line on stderr naming the
problem, a non-zero exit code, no traceback."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG
from tests.support.procs import Project, free_port

pytestmark = pytest.mark.e2e

Config = dict[str, dict[str, Any]]


def _missing_file(project: Project) -> None:
    project.extra_env["TELEMETRON_CONFIG"] = str(project.workdir / "nowhere" / "config.toml")


def _unknown_key(project: Project) -> None:
    project.config["http"]["colour"] = "blue"


def _wrong_type(project: Project) -> None:
    project.config["processor"]["batch_size"] = "lots"


def _unknown_plugin(project: Project) -> None:
    project.config["processing.plugins.NoSuchProcessor"] = {}


def _invalid_json_schema(project: Project) -> None:
    project.config["validation.plugins.JsonSchemaValidator"] = {
        "schemas": {"purchase": {"type": "object", "properties": {"price": {"minimum": "0"}}}}
    }


def _cel_not_compiling(project: Project) -> None:
    project.config["transformation.plugins.CelTransformer"] = {
        "rules": [{"name": "noise", "when": 'event.type == "noise" &&', "action": "drop"}]
    }


def _memory_store_with_workers(project: Project) -> None:
    project.config["stats"] = {"store": "memory"}


CASES: dict[str, tuple[Callable[[Project], None], list[str]]] = {
    "missing config file": (_missing_file, ["config file not found", "nowhere/config.toml"]),
    "unknown key": (_unknown_key, ["http.colour: unknown key"]),
    "wrong type": (_wrong_type, ["processor.batch_size", "integer"]),
    "unknown plugin": (
        _unknown_plugin,
        ["unknown processor plugin 'NoSuchProcessor'", "known:", "StorageProcessor"],
    ),
    "invalid JSON Schema": (
        _invalid_json_schema,
        [
            "[validation.plugins.JsonSchemaValidator] schemas.purchase: not a valid JSON Schema"
            ' (draft 2020-12): properties/price/minimum: "0" is not of type "number"'
        ],
    ),
    "CEL rule that does not compile": (
        _cel_not_compiling,
        [
            "[transformation.plugins.CelTransformer] rules.0.when: does not compile at line 1,"
            " column 25: Syntax error: mismatched input '<EOF>'"
        ],
    ),
    "memory store not inline": (
        _memory_store_with_workers,
        ['stats.store = "memory"', "queue.workers = 0", "queue.workers = 2"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_serve_refuses_to_start_with_one_clear_line(case: str, tmp_path: Path) -> None:
    # No database is needed: each of these stops start-up before it is opened.
    project = Project(
        workdir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'never-created.sqlite3'}",
        config=copy.deepcopy(BASE_CONFIG),
    )
    break_it, fragments = CASES[case]
    break_it(project)

    result = project.manage("serve", "--port", str(free_port()), check=False, timeout=60)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("telemetron: configuration error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "never-created.sqlite3").exists()
