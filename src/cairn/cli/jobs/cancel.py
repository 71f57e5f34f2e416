"""`cairn jobs cancel JOB`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("job")
@common_options
def cancel(job: str, session: Session) -> None:
    """Cancel training job JOB (it goes CANCELLING, then CANCELLED)."""
    session.client.cancel_job(job)
    session.printer.status(f"Cancelled job [{job}].")
