"""`cairn versions console-log read VERSION --model M`: what the version's nodes printed."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, CairnGroup, Session, common_options


@click.group("console-log", cls=CairnGroup)
def console_log() -> None:
    """Read the stdout/stderr of a version's prediction nodes.

    Kept readable for models created with --enable-console-logging
    (onlinePredictionConsoleLogging).
    """


@console_log.command(cls=CairnCommand)
@click.argument("version")
@click.option("--model", required=True, help="Model the version belongs to.")
@click.option(
    "--lines",
    type=click.IntRange(min=1, max=5000),
    default=100,
    show_default=True,
    help="How many of the last lines of each node to print.",
)
@common_options
def read(version: str, model: str, lines: int, session: Session) -> None:
    """Print the last lines each node of version VERSION wrote, as node-N<TAB>TEXT.

    \b
    Example:
      cairn models create census --enable-console-logging
      cairn versions console-log read v1 --model census --lines 20
    """
    answer = session.client.read_console_logs(model, version, lines)
    if session.printer.format:
        session.printer.value(answer)
        return
    for entry in answer.get("entries") or []:
        session.printer.line(f"node-{entry.get('node')}\t{entry.get('text', '')}")
