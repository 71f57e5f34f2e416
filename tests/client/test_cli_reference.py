"""docs/cli.md documents every server-facing command, and every command explains itself."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cairn.cli.auth import auth
from cairn.cli.iam import iam
from cairn.cli.jobs import jobs
from cairn.cli.logging_read import logging
from cairn.cli.models import models
from cairn.cli.operations import operations
from cairn.cli.predict import predict
from cairn.cli.projects import projects
from cairn.cli.versions import versions

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def command_paths() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [("cairn predict", predict)]

    def walk(prefix: str, group: click.Group) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(f"{prefix} {name}", command)
            else:
                found.append((f"{prefix} {name}", command))

    for group in (jobs, models, versions, operations, auth, iam, projects, logging):
        assert group.name is not None
        walk(f"cairn {group.name}", group)
    return found


@pytest.mark.parametrize(("path", "command"), command_paths(), ids=lambda p: str(p))
def test_each_command_is_documented_and_has_help(path: str, command: click.Command) -> None:
    assert f"`{path}" in DOC.read_text(), f"docs/cli.md does not describe `{path}`"
    help_text = " ".join(CliRunner().invoke(command, ["--help"], prog_name=path).output.split())
    assert command.help and " ".join(command.help.split("\n")[0].split()) in help_text
    assert "--api" in help_text and "--format" in help_text
