"""The README holds: its commands run as written, in order, in a fresh directory
next to a real ``make run`` (tests/support/readme_session.py), and print what it
shows; a command it does not run is listed in NOT_RUN with the reason, and a
config.toml block it does not add in NOT_ADDED. Its links point into the
repository, and the worked examples of "Built-in plugins" build their plugins.

The reader's part, done for them: ``make run`` lines are the Makefile's recipe
on a free port (8080 in a command is that port); ``tlw_…`` / ``tlr_…`` in a
``NAME=…`` line is the last key / token a command printed; the password that
``createsuperuser`` asks for is typed on a terminal, then the admin is opened
with it; ``[y/N] y`` in a transcript is typed; after ``plugins sync`` the
session waits ``plugins.reload_interval``, as the README says processes follow
within it; a command that does not print what is shown yet is tried again for a
while, unless it changes something."""

from __future__ import annotations

import re
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import ArchiveConfig
from plugins.base import PluginSpec
from plugins.chains import build_plugin
from plugins.registry import get_registry
from tests.support.databases import sqlite_pass_only
from tests.support.procs import ROOT
from tests.support.readme import FENCE, Step, anchors, output_matches, readme_steps
from tests.support.readme_session import Ran, ReadmeSession

README = (ROOT / "README.md").read_text()
BLOCKS = readme_steps(README)
STEPS = [step for _, steps in BLOCKS for step in steps]
SECTION = README.split("### Built-in plugins", 1)[1].split("\n## ", 1)[0]
BUILT_IN = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", SECTION, re.S)]

NOT_RUN = {
    ".venv/bin/pip install segment-analytics-python": (
        "would change the virtualenv; the dev extras hold it (pyproject.toml)"
    ),
    ".venv/bin/python manage.py serve": (
        "a start refused on a bad schema: tests/e2e/test_startup_errors.py runs it"
    ),
    ".venv/bin/pip install honcho": "would change the virtualenv",
    "createdb -h 127.0.0.1 -U postgres telemetron": (
        "the multi-node set-up's PostgreSQL database: the session runs on SQLite"
    ),
    ".venv/bin/honcho run -e deploy/multinode/env .venv/bin/python manage.py migrate": (
        "the multi-node set-up: tests/e2e/test_multinode.py migrates its own database"
    ),
    ".venv/bin/honcho start -f deploy/multinode/Procfile -e deploy/multinode/env": (
        "the multi-node set-up: tests/e2e/test_multinode.py starts its very commands"
    ),
    ".venv/bin/pip install ./examples/telemetron-example-validator": (
        "would change the virtualenv: tests/integration/test_example_plugin.py installs it"
    ),
    "make test": "the suite itself, which holds this test",
    "make test-sqlite": "the suite itself",
    "make lint": "ruff and mypy: make lint's job, not the suite's",
    "scripts/repeat-under-load.sh 20": "the in-process suites twenty times over",
}
NOT_ADDED = {  # a line of the block -> why the session does not add it to config.toml
    "allowed = [1, 2, 3]": "an illustration; it would refuse the later examples' source 7",
    'url = "https://hooks.example.com/telemetron"': "an illustration; the host is not reachable",
    '[project.entry-points."telemetron.validators"]': "a plugin package's pyproject.toml",
}
# Commands that change something: never tried a second time.
CHANGES = re.compile(
    r"manage\.py (sources (create|rotate|revoke)|tokens create|dlq (replay|discard))"
)
EXIT_STATUS = {  # a command expected to fail, as the README says it does
    ".venv/bin/python manage.py dlq replay --plugin WebhookProcessor": 1,
}
ASSIGNMENT = re.compile(r"(\w+)=(\S+)")
MAKE_RUN = re.compile(r"((?:\w+=\S+ +)*)make run")
RELOAD_INTERVAL = 2.0  # plugins.reload_interval's default
PASSWORD = "readme-0123456789"


def test_every_block_is_of_a_known_kind() -> None:
    assert {language for language, _ in BLOCKS} <= {
        "sh",
        "console",
        "toml",
        "python",
        "js",
        "html",
        "yaml",
        "http",
    }
    assert not re.findall(r"^[ \t]+```", README, re.M), "an indented fence is not read"


def test_the_reading_of_blocks() -> None:
    text = (
        "```sh\n# a comment\nA=1  # set\ncurl -s x \\\n  -d y\n"
        "python - <<'EOF'\nprint(1)\nEOF\n```\n"
        "```console\n$ manage.py list   # all\nID  NAME\n1   app\n$ true\n```\n"
        "```toml\n[a]\nb = 1\n```\n```python\nprint(2)\n```\n"
    )
    blocks = readme_steps(text)
    assert [language for language, _ in blocks] == ["sh", "console", "toml", "python"]
    sh, console, toml, python = (steps for _, steps in blocks)
    assert [s.bare for s in sh] == [
        "A=1",
        "curl -s x \\\n  -d y",
        "python - <<'EOF'\nprint(1)\nEOF",
    ]
    assert [(s.bare, s.output) for s in console] == [
        ("manage.py list", ("ID  NAME", "1   app")),
        ("true", ()),
    ]
    assert toml == [Step("toml", "[a]\nb = 1\n", line=17)] and python == []


def test_what_is_shown_must_be_printed() -> None:
    assert output_matches(("created app (7)",), "created app (7)\n") is None
    assert output_matches(("created app (7)",), "created shop (1)\n") == "created app (7)"
    assert output_matches(("key: tlw_…",), "key: tlw_Abc\n") is None
    assert output_matches(("key: tlw_…",), "key: tlr_Abc\n") == "key: tlw_…"
    assert output_matches(("1 app  yes",), "x\n1   app yes\n") is None
    assert output_matches(("a", "b"), "b\na\n") == "b"  # in order
    assert output_matches(("a", "…", ""), "a\n") is None


def test_the_lists_name_what_the_readme_holds() -> None:
    commands = {s.bare for s in STEPS if s.kind == "command"}
    assert set(NOT_RUN) <= commands, set(NOT_RUN) - commands
    assert set(EXIT_STATUS) <= commands, set(EXIT_STATUS) - commands
    tomls = [s.text for s in STEPS if s.kind == "toml"]
    for line in NOT_ADDED:
        assert sum(line in t for t in tomls) == 1, line


def test_make_run_is_what_the_session_runs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun: ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [line.strip() for line in recipe] == [
        "$(PY) manage.py migrate --noinput -v 0",
        "$(PY) manage.py serve",
    ]


def test_links_stay_in_the_repository() -> None:
    outside = FENCE.sub("", README)
    targets = re.findall(r"\]\(([^)\s]+)\)", outside)
    fragments = {t[1:] for t in targets if t.startswith("#")}
    assert fragments <= anchors(README), fragments - anchors(README)
    for target in targets:
        if not target.startswith(("#", "http://", "https://")):
            assert (ROOT / target).exists(), target
    assert "../" not in README


KINDS = (
    ("validation", "validator"),
    ("transformation", "transformer"),
    ("processing", "processor"),
)


def test_each_built_in_plugin_has_a_worked_example() -> None:
    named = {name for b in BUILT_IN for s, _ in KINDS for name in b.get(s, {}).get("plugins", {})}
    assert named == {
        "JsonSchemaValidator",
        "ArchiveProcessor",
        "WebhookProcessor",
        "CelTransformer",
        "PiiRedactor",
        "ClientContext",
        "Sampler",
    }


@pytest.mark.parametrize("block", BUILT_IN)
def test_the_examples_build(block: dict[str, object]) -> None:
    for section, kind in KINDS:
        for name, params in block.get(section, {}).get("plugins", {}).items():  # type: ignore[attr-defined]
            build_plugin(PluginSpec(kind, name, params), get_registry())  # type: ignore[arg-type]
    if "archive" in block:
        ArchiveConfig.model_validate(block["archive"])


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ReadmeSession]:
    s = ReadmeSession(tmp_path / "clone", Path(sys.prefix))
    try:
        yield s
    finally:
        s.close()


def _typed(session: ReadmeSession, command: str) -> str:
    """The command as the reader's terminal gets it: on the session's port."""
    return command.replace(":8080", f":{session.port}")


def _assign(session: ReadmeSession, name: str, value: str) -> None:
    for prefix in ("tlw_", "tlr_"):
        if value == prefix + "…":
            value = session.secrets[prefix]
    assert "…" not in value, f"{name}={value}: a placeholder the session cannot fill"
    session.variables[name] = value


def _problem(step: Step, ran: Ran) -> str | None:
    if ran.status != EXIT_STATUS.get(step.bare, 0):
        return f"exit status {ran.status}"
    errors_shown = any('"error"' in line for line in step.output)
    if any(code >= 400 for code in ran.http) and not errors_shown:
        return f"HTTP {ran.http}"
    missing = output_matches(step.output, ran.printed)
    return None if missing is None else f"does not print {missing!r}"


def _admin_opens(session: ReadmeSession, step: Step) -> None:
    shown = "\n".join(step.output)
    user = re.search(r"Username .*: (\S+)", shown)
    email = re.search(r"Email address: (\S*)", shown)
    assert user and email, shown
    answers = [("Username", user[1]), ("Email address", email[1])]
    ran = session.terminal(
        _typed(session, step.text), [*answers, ("Password", PASSWORD), ("again", PASSWORD)]
    )
    assert ran.status == 0 and output_matches(step.output, ran.printed) is None, ran.printed
    with httpx.Client(base_url=session.url, timeout=30) as client:
        client.get("/admin/login/")
        form = {"username": user[1], "password": PASSWORD, "next": "/admin/"}
        form["csrfmiddlewaretoken"] = client.cookies["csrftoken"]
        assert client.post("/admin/login/?next=/admin/", data=form).status_code == 302
        page = client.get("/admin/")
    assert page.status_code == 200 and 'id="dashboard"' in page.text, page.text[:2000]


def _run(session: ReadmeSession, step: Step) -> None:
    if assignment := ASSIGNMENT.fullmatch(step.bare):
        _assign(session, assignment[1], assignment[2])
        return
    if make_run := MAKE_RUN.fullmatch(step.bare):
        session.make_run(dict(a.split("=", 1) for a in make_run[1].split()))
        return
    if "manage.py createsuperuser" in step.text:
        _admin_opens(session, step)
        return
    answer = "y\n" if any(line.rstrip().endswith("[y/N] y") for line in step.output) else None
    deadline = time.monotonic() + (0 if CHANGES.search(step.text) else 20)
    while True:
        ran = session.shell(_typed(session, step.text), answer=answer)
        problem = _problem(step, ran)
        if problem is None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert problem is None, (
        f"README line {step.line}: {step.text}\n{problem}; it printed:\n{ran.printed}"
        f"\nmake run's log:\n{session.log()[-3000:]}"
    )
    if "manage.py plugins sync" in step.text:
        time.sleep(RELOAD_INTERVAL + 0.5)


@pytest.mark.e2e
@sqlite_pass_only("a fresh clone's README session (SQLite, the default)")
def test_every_command_runs_as_written(session: ReadmeSession) -> None:
    ran = 0
    for step in STEPS:
        if step.kind == "toml":
            if not any(line in step.text for line in NOT_ADDED):
                session.config_add(step.text)
        elif step.bare not in NOT_RUN:
            _run(session, step)
            ran += 1
    assert ran == sum(s.kind == "command" for s in STEPS) - len(NOT_RUN)
