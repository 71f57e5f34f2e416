"""`cairn operations wait OPERATION`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("operation")
@click.option(
    "--polling-interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between checks.",
)
@common_options
def wait(operation: str, polling_interval: float, session: Session) -> None:
    """Wait for operation OPERATION to finish and print its result (exit 1 if it failed)."""
    with session.printer.spinner(f"Waiting for operation [{operation}] to complete..."):
        done = session.client.wait_operation(operation, interval=polling_interval)
    session.printer.resource(done.get("response") or {})
