"""The README's commands work when pasted by someone who followed its Quickstart: the virtual
environment is activated once, every command is written the same way, and every `connector`
command and option it shows exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from connector.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
ACTIVATE = ". .venv/bin/activate"


def shell_blocks() -> list[list[str]]:
    """The lines of each ```sh block, a line continued by an indented one joined to it."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", TEXT, flags=re.DOTALL):
        lines: list[str] = []
        for line in body.splitlines():
            if line.startswith(" ") and lines:
                lines[-1] += " " + line.strip()
            elif line.strip():
                lines.append(line.strip())
        blocks.append(lines)
    return blocks


def connector_commands() -> list[str]:
    """Every `connector …` command the README shows, in its shell blocks and in its text."""
    found = []
    for block in shell_blocks():
        for line in block:
            for part in line.split(" # ")[0].split("&&"):
                words = part.strip()
                while re.match(r"^[A-Z_]+=\S*\s", words):  # VARIABLE=value before it
                    words = words.split(None, 1)[1]
                if words.startswith("connector "):
                    found.append(words)
    found += [span for span in re.findall(r"`(connector [^`]+)`", TEXT)]
    return found


def test_the_quickstart_activates_the_virtual_environment_before_any_command() -> None:
    quickstart = shell_blocks()[0]
    assert quickstart[0] == f"python3 -m venv .venv && {ACTIVATE}"
    assert quickstart[1] == "pip install -q -e . && connector demo"
    tests = TEXT.split("<!-- test-command -->\n```sh\n", 1)[1].split("\n", 1)[0]
    assert tests == (
        f"python3 -m venv .venv && {ACTIVATE} && pip install -q -e '.[test]' && pytest -q -n 2"
    )


def test_no_command_reaches_into_the_virtual_environment_by_path() -> None:
    for block in shell_blocks():
        for line in block:
            assert ".venv/bin/" not in line.replace(ACTIVATE, ""), line


def _command_of(words: list[str]) -> tuple[Any, list[str]]:
    """The command ``words`` name (after `connector`), and the words after its name."""
    command: Any = typer.main.get_command(app)
    rest = words
    while rest and hasattr(command, "commands") and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


ROOT_OPTIONS = {opt for param in typer.main.get_command(app).params for opt in param.opts}


@pytest.mark.parametrize("line", connector_commands())
def test_every_connector_command_and_option_the_readme_shows_exists(line: str) -> None:
    words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "))
    assert words[0] == "connector"
    words = [w for w in words[1:] if not (w.startswith("--config") or w.endswith(".toml"))]
    command, rest = _command_of(words)
    if hasattr(command, "commands"):  # a group: only its root options may follow
        assert all(w in ROOT_OPTIONS for w in rest if w.startswith("-")), line
        assert rest == [] or rest[0].startswith("-") or rest[0] == "…", line
        return
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options | ROOT_OPTIONS, (line, word)
