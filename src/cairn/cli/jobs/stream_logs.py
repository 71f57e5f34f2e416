"""`cairn jobs stream-logs JOB`: follow a job's log lines until it ends."""

from __future__ import annotations

import time

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Printer
from cairn.client import TERMINAL_JOB_STATES, CairnClient


def follow_logs(
    client: CairnClient,
    printer: Printer,
    job_id: str,
    *,
    task_name: str | None = None,
    interval: float = 1.0,
) -> str:
    """Print the job's log lines as they come; return its state once it has ended."""
    cursor: str | None = None
    while True:
        batch = client.read_job_logs(job_id, cursor, task_name=task_name)
        entries = batch.get("entries") or []
        for entry in entries:
            task = str(entry.get("taskName", ""))
            # A tuning job's lines say which trial printed them, as AI Platform's do.
            where = f"trial-{entry['trialId']}/{task}" if entry.get("trialId") else task
            # The server filters too; an older one sends every replica's lines.
            if task_name in (None, task, where):
                printer.line(f"{where}\t{entry.get('text', '')}".rstrip("\n"))
        cursor = batch.get("cursor") or cursor
        state = str(batch.get("jobState") or "")
        if state in TERMINAL_JOB_STATES and not entries:
            return state
        if not entries:
            time.sleep(interval)


@click.command("stream-logs", cls=CairnCommand)
@click.argument("job")
@click.option(
    "--task-name",
    help="Only this replica's lines, e.g. master-replica-0 or worker-replica-1; `service` for "
    "Cairn's own lines (package installs, replica restarts); trial-3/master-replica-0 for one "
    "trial's of a tuning job.",
)
@click.option(
    "--polling-interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between checks for new lines.",
)
@common_options
def stream_logs(job: str, task_name: str | None, polling_interval: float, session: Session) -> None:
    """Print the log lines of job JOB's replicas and follow them until the job ends.

    Each line is TASK_NAME<TAB>TEXT; in a hyperparameter tuning job, trial-ID/TASK_NAME
    <TAB>TEXT. Lines of all replicas and of Cairn itself (task `service`: package installs,
    a crashed worker's restart) come in the order they were written. Stops by itself when
    the job has ended and every line has been printed; Ctrl-C stops following without
    touching the job.

    \b
    Examples:
      cairn jobs stream-logs my_job
      cairn jobs stream-logs my_job --task-name worker-replica-1
    """
    state = follow_logs(
        session.client, session.printer, job, task_name=task_name, interval=polling_interval
    )
    session.printer.status(f"Job [{job}] ended: {state}.")
