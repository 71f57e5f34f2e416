"""`cairn jobs list`."""

from __future__ import annotations

import itertools

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.cli.output import Column, field

JOB_COLUMNS = [
    Column("JOB_ID", field("jobId")),
    Column("STATUS", field("state")),
    Column("CREATED", field("createTime")),
]


@click.command("list", cls=CairnCommand)
@click.option(
    "--filter", "filter_", help="Server-side filter, e.g. 'state:FAILED' or 'jobId:census*'."
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many jobs.")
@click.option("--page-size", type=click.IntRange(1, 100), help="Jobs fetched per request.")
@common_options
def list_jobs(
    filter_: str | None, limit: int | None, page_size: int | None, session: Session
) -> None:
    """List the project's training jobs: JOB_ID, STATUS and CREATED."""
    found = session.client.list_jobs(filter=filter_, page_size=page_size)
    session.printer.resources(itertools.islice(found, limit), JOB_COLUMNS)
