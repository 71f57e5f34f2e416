"""`cairn jobs describe JOB`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("job")
@common_options
def describe(job: str, session: Session) -> None:
    """Show everything about training job JOB (YAML by default)."""
    session.printer.resource(session.client.get_job(job))
