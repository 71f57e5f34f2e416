"""Run `cairn ...` in-process against a given server URL, as a user's shell would."""

from __future__ import annotations

from click.testing import CliRunner, Result

from cairn.cli.main import cli


def invoke(
    api_url: str,
    *args: str,
    input: str | None = None,
    project: str = "proj",
    env: dict[str, str] | None = None,
) -> Result:
    runner = CliRunner(env={"CAIRN_API": api_url, "CAIRN_PROJECT": project, **(env or {})})
    return runner.invoke(cli, list(args), prog_name="cairn", input=input, catch_exceptions=False)
