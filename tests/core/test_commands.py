"""Every management command of our apps (and each of its subcommands) answers
``--help`` from the real command line: exit 0, a usage line, the command's
description, and help on every option of its own."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from django.core.management import BaseCommand, get_commands, load_command_class

from tests.support.layers import PACKAGES
from tests.support.procs import ROOT


def our_commands() -> dict[str, str]:
    return {name: app for name, app in get_commands().items() if app in PACKAGES}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_our_commands_are_discovered() -> None:
    assert {"serve", "dlq", "plugins", "archive", "sources", "tokens"} <= set(our_commands())


def test_every_command_answers_help_from_the_command_line_with_exit_0() -> None:
    env = {**os.environ, "TELEMETRON_CONFIG": str(ROOT / "tests" / "config.toml")}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "manage.py", name, "--help"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in sorted(our_commands())
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"manage.py {name} --help: exit {proc.returncode}: {err}"
        assert out.startswith(f"usage: manage.py {name}"), out[:200]
        assert len(out.splitlines()) > 3, f"manage.py {name} --help says too little"
        assert err == "", f"manage.py {name} --help wrote to stderr: {err}"


def _subcommands() -> list[tuple[str, str]]:
    out = []
    for name, app in sorted(our_commands().items()):
        parser = load_command_class(app, name).create_parser("manage.py", name)
        out += [(name, sub) for sub in sorted(_subparsers(parser))]
    return out


@pytest.mark.parametrize(("name", "sub"), _subcommands())
def test_every_subcommand_answers_help_with_exit_0(
    name: str, sub: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = load_command_class(our_commands()[name], name).create_parser("manage.py", name)
    with pytest.raises(SystemExit) as info:
        parser.parse_args([sub, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: manage.py {name} {sub}")
    assert len(out.splitlines()) > 3


@pytest.mark.parametrize("name", sorted(our_commands()))
def test_every_command_describes_itself_and_each_option(name: str) -> None:
    command = load_command_class(our_commands()[name], name)
    assert command.help.strip(), f"{name} has no help text"
    parser = command.create_parser("manage.py", name)
    assert command.help.split()[0] in parser.format_help()
    # Django's own options (--verbosity, --settings, ...) are documented by Django.
    base = {a.dest for a in BaseCommand().create_parser("manage.py", "base")._actions}
    parsers = [parser, *_subparsers(parser).values()]
    for p in parsers:
        for action in p._actions:
            if action.dest in base or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
