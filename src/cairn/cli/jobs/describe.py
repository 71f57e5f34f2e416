"""`cairn jobs describe JOB`."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.jobs.trials import print_summary
from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Printer, render_table


@click.command(cls=CairnCommand)
@click.argument("job")
@click.option(
    "--summarize",
    is_flag=True,
    help="Print a short summary instead: state, times and error, each replica's state and "
    "restarts, and for a tuning job its goal and its trials as a table, best first.",
)
@common_options
def describe(job: str, summarize: bool, session: Session) -> None:
    """Show everything about training job JOB (YAML by default).

    The Cairn-only field `cairnReplicas` lists each replica of a training job (task name,
    state: RUNNING, RESTARTING, SUCCEEDED, FAILED or STOPPED, restarts after crashes, and
    the last exit code, negative for a signal).

    \b
    Examples:
      cairn jobs describe my_job
      cairn jobs describe my_tuning_job --summarize
    """
    document = session.client.get_job(job)
    if summarize:
        print_summary(document, session.printer)
        print_replicas(document, session.printer)
    else:
        session.printer.resource(document)


def print_replicas(document: dict[str, Any], printer: Printer) -> None:
    """A table of the job's replicas under the summary (text output only)."""
    replicas = document.get("cairnReplicas") or []
    if not replicas or printer.format in ("json", "yaml"):
        return
    rows = [
        [
            str(replica.get("taskName", "")),
            str(replica.get("state", "")),
            str(replica.get("restartCount", 0)),
            "" if replica.get("exitCode") is None else str(replica["exitCode"]),
        ]
        for replica in replicas
    ]
    printer.line("")
    printer.line(render_table(["REPLICA", "STATE", "RESTARTS", "EXIT_CODE"], rows).rstrip("\n"))
