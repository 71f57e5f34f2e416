"""`cairn jobs describe JOB`."""

from __future__ import annotations

import click

from cairn.cli.jobs.trials import print_summary
from cairn.cli.options import CairnCommand, Session, common_options


@click.command(cls=CairnCommand)
@click.argument("job")
@click.option(
    "--summarize",
    is_flag=True,
    help="Print a short summary instead: state, times and error, and for a tuning job its "
    "goal and its trials as a table, best first.",
)
@common_options
def describe(job: str, summarize: bool, session: Session) -> None:
    """Show everything about training job JOB (YAML by default).

    \b
    Examples:
      cairn jobs describe my_job
      cairn jobs describe my_tuning_job --summarize
    """
    document = session.client.get_job(job)
    if summarize:
        print_summary(document, session.printer)
    else:
        session.printer.resource(document)
