"""What the data commands share: output paths in local buckets, progress and error display."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cairn.cli.buckets import find_buckets, local_buckets
from cairn.cli.options import GcloudChoice
from cairn.domain.errors import ApiError, Code

if TYPE_CHECKING:
    from cairn.data.sources import SourceSpec

console = Console(stderr=True)


def local_path(target: str) -> Path:
    """`gs://BUCKET/PATH` -> its file in the local buckets (never outside); paths unchanged."""
    if "://" in target and not target.startswith("gs://"):
        raise click.BadParameter(
            f"{target}: only local paths and gs:// (local buckets) are supported."
        )
    return local_buckets().local_path(target) if target.startswith("gs://") else Path(target)


def source_spec_options(function: Callable[..., object]) -> Callable[..., object]:
    """--source-format, --table, --query, --delimiter, --encoding for commands reading one
    source (not --format: that is gcloud's global output flag, as on every command)."""
    options = [
        click.option(
            "--source-format",
            "fmt",
            type=GcloudChoice(["csv", "parquet", "jsonl", "sql"]),
            help="Source format (default: from the file suffix).",
        ),
        click.option(
            "--table",
            help="Table to read when SOURCE is a database URL (sqlite:///x.db, postgresql://...).",
        ),
        click.option("--query", help="SQL query to read when SOURCE is a database URL."),
        click.option("--delimiter", help="CSV delimiter (default: sniffed)."),
        click.option(
            "--encoding", help="CSV encoding (default: sniffed: utf-8, utf-16 or latin-1)."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@contextmanager
def reported_errors() -> Iterator[None]:
    """A "not found" also says which buckets were searched (CairnCommand prints the error)."""
    try:
        yield
    except ApiError as error:
        if error.code is not Code.NOT_FOUND:
            raise
        raise find_buckets().explain(error) from None


@contextmanager
def progress_status(start: str, total: int | None = None) -> Iterator[Callable[[str], None]]:
    """A progress bar over `total` steps (a spinner when unknown); each message starts a step."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(start, total=total)
        started = False

        def update(message: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=message)

        yield update
        progress.update(task, completed=total, description="done")


def build_source(
    source: str,
    fmt: str | None = None,
    table: str | None = None,
    query: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> SourceSpec:
    """The SourceSpec for a SOURCE argument: a file path, gs:// path or database URL."""
    from cairn.data.sources import SourceSpec

    if "://" in source and not source.startswith("gs://"):
        return SourceSpec(name="source", url=source, table=table, query=query, format="sql")
    path = local_path(source)
    if not path.exists():
        raise click.BadParameter(f"{source} does not exist.", param_hint="SOURCE")
    return SourceSpec(
        name="source", path=str(path), format=fmt, delimiter=delimiter, encoding=encoding
    )
