"""docs/cli.md documents every group and command (its reference section is generated from
the code and must be current), and every command explains itself and takes gcloud's
global flags."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.cli.reference import BEGIN, END, render, walk

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
GLOBAL_FLAGS = ("--api", "--project", "--region", "--format", "--quiet", "--verbosity")


def command_paths() -> list[tuple[str, click.Command]]:
    return [(path, command) for path, command, _ in walk(cli, "cairn") if path != "cairn"]


def test_the_generated_reference_in_docs_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "docs/cli.md has no generated reference section"
    current = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert current == render(), (
        "docs/cli.md's reference is out of date: run "
        "`.venv/bin/python -m cairn.cli.reference docs/cli.md`"
    )


def test_every_group_is_in_the_reference() -> None:
    groups = {path.split()[1] for path, _ in command_paths()}
    assert {"storage", "data", "local", "server", "jobs", "versions", "auth"} <= groups


@pytest.mark.parametrize(("path", "command"), command_paths(), ids=lambda p: str(p))
def test_each_command_is_documented_and_has_help(path: str, command: click.Command) -> None:
    assert f"`{path}`" in DOC.read_text(), f"docs/cli.md does not describe `{path}`"
    help_text = " ".join(CliRunner().invoke(command, ["--help"], prog_name=path).output.split())
    assert command.help and " ".join(command.help.split("\n")[0].split()) in help_text
    for flag in GLOBAL_FLAGS:
        assert flag in help_text, f"`{path} --help` does not list the global flag {flag}"
