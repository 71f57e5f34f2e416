"""The generated command reference at the end of docs/cli.md: every group and command's
--help, so the document cannot miss a command or drift from the code.

    python -m cairn.cli.reference docs/cli.md    # rewrite the section in place
    python -m cairn.cli.reference                # print it

tests/client/test_cli_reference.py fails when the section is out of date.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from cairn.cli.options import GlobalOption

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m cairn.cli.reference docs/cli.md -->"
END = "<!-- END GENERATED REFERENCE -->"
WIDTH = 100


def walk(
    command: click.Command, path: str, parent: click.Context | None = None
) -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every group and command below `command`, depth first, names sorted."""
    ctx = click.Context(
        command,
        info_name=path.rsplit(" ", 1)[-1],
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **{k: v for k, v in command.context_settings.items() if k != "max_content_width"},
    )
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, f"{path} {name}", ctx)


def command_help(command: click.Command, ctx: click.Context) -> str:
    """The command's --help without the global flags (the reference lists them once)."""
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    command.format_help_text(ctx, formatter)
    rows = [
        record
        for param in command.get_params(ctx)
        if not isinstance(param, GlobalOption) and (record := param.get_help_record(ctx))
    ]
    if rows:
        with formatter.section("Options"):
            formatter.write_dl(rows)
    if isinstance(command, click.Group):
        commands = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                commands.append((name, sub.get_short_help_str(WIDTH)))
        with formatter.section("Commands"):
            formatter.write_dl(commands)
    return formatter.getvalue().rstrip()


def render() -> str:
    from cairn.cli.main import cli

    lines = [
        BEGIN,
        "",
        "## Reference: every command's --help",
        "",
        "Generated from the code; the global flags each command also takes are listed once, "
        "in [Every command takes](#every-command-takes).",
        "",
    ]
    for path, command, ctx in walk(cli, "cairn"):
        if path == "cairn":
            continue
        depth = min(path.count(" ") + 2, 4)
        lines += [f"{'#' * depth} `{path}`", "", "```text", command_help(command, ctx), "```", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """`document` with its generated section replaced (appended when it has none)."""
    if BEGIN in document and END in document:
        head, _, rest = document.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + section.rstrip("\n") + tail
    return document.rstrip("\n") + "\n\n" + section


def main(argv: list[str]) -> int:
    section = render()
    if not argv:
        sys.stdout.write(section)
        return 0
    path = Path(argv[0])
    path.write_text(replace_section(path.read_text(encoding="utf-8"), section), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
