"""`cairn storage`: gsutil's cp, ls, cat, rm and mb for Cairn's local buckets.

These commands run in-process on the buckets' directory, like gsutil talks to Cloud
Storage directly: `gs://BUCKET/PATH` is `<home>/storage/BUCKET/PATH`. The home is --home,
else $CAIRN_HOME, else the one of the server at --api/$CAIRN_API when it runs on this
machine, else ~/.cairn (said on stderr). Results go to stdout one per line (or as
--format json|yaml|table for `ls`); progress and summaries go to stderr, as gsutil does.
Errors print as every command's do: `ERROR: (cairn.storage.ls) ...`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from cairn.cli.buckets import find_buckets
from cairn.cli.options import CairnGroup, current_printer
from cairn.cli.output import Column, field
from cairn.domain.errors import ApiError, Code
from cairn.storage import BucketStorage, Entry, has_wildcard

F = TypeVar("F", bound=Callable[..., Any])

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _storage_command(command: F) -> F:
    """Add `--home` and hand the command a `storage`; a "not found" names where it looked."""

    @click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Cairn home whose storage/ holds the buckets [default: $CAIRN_HOME, else the "
        "home of the server at $CAIRN_API when one answers on this machine, else ~/.cairn].",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, home: Path | None, **kwargs: Any) -> Any:
        buckets = find_buckets(home)
        try:
            return command(*args, storage=buckets.storage, **kwargs)
        except ApiError as error:
            raise buckets.explain(error) from None

    return wrapper  # type: ignore[return-value]


@click.group(cls=CairnGroup)
def storage() -> None:
    """Copy, list, read and remove files in local buckets, like gsutil.

    A URI gs://BUCKET/PATH is the file <home>/storage/BUCKET/PATH, so trainers, model
    versions and batch prediction can name artefacts as they would on Cloud Storage.
    Local paths work wherever a URI does. The home is --home, else $CAIRN_HOME, else
    that of the server at $CAIRN_API (default http://127.0.0.1:8080) when it runs here.

    \b
    Examples:
      cairn storage mb gs://my-bucket
      cairn storage cp -r ./trainer-output gs://my-bucket/runs/
      cairn storage ls -l gs://my-bucket/runs/
      cairn storage cat gs://my-bucket/runs/trainer-output/metrics.json
    """


@storage.command("cp")
@click.option("-r", "-R", "recursive", is_flag=True, help="Copy directories and their contents.")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.argument("destination", metavar="DST")
@_storage_command
def cp(storage: BucketStorage, sources: tuple[str, ...], destination: str, recursive: bool) -> None:
    """Copy files between local buckets and local paths.

    SRC may use wildcards (*, **, ?, [..]). Copying into an existing directory, a
    bucket, or a DST ending with '/' keeps each source's name; several sources need such
    a directory.

    \b
    Examples:
      cairn storage cp model.joblib gs://my-bucket/model/
      cairn storage cp 'gs://my-bucket/data/*.csv' ./data/
      cairn storage cp -r gs://my-bucket/model ./model-copy
    """
    steps = storage.plan_copy(list(sources), destination, recursive)
    total_bytes = sum(step.size for step in steps)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=_stderr,
        transient=True,
        disable=not _stderr.is_terminal,
    ) as progress:
        task = progress.add_task("Copying", total=total_bytes or None)
        for step in steps:
            progress.console.print(f"Copying {step.source.display()}...")
            storage.copy_step(step)
            progress.advance(task, step.size)
    _stderr.print(f"Operation completed over {len(steps)} objects/{_human_size(total_bytes)}.")


@storage.command("ls")
@click.option("-r", "-R", "recursive", is_flag=True, help="List every object below the URI.")
@click.option("-l", "long_format", is_flag=True, help="Show sizes and modification times.")
@click.argument("uris", nargs=-1, metavar="[URI]...")
@_storage_command
def ls(storage: BucketStorage, uris: tuple[str, ...], recursive: bool, long_format: bool) -> None:
    """List buckets, or the objects and directories under each URI.

    Without a URI (or with gs://), lists the buckets. Directories end with '/'.
    Wildcards are allowed. --format json|yaml|table prints url, type, size and updated.

    \b
    Examples:
      cairn storage ls
      cairn storage ls -r gs://my-bucket
      cairn storage ls -l 'gs://my-bucket/runs/*'
      cairn storage ls gs://my-bucket --format json
    """
    printer = current_printer()
    if not uris or all(uri.rstrip("/") in ("gs:", "gs:/") for uri in uris):
        buckets = storage.buckets()
        if printer.format:
            printer.resources([{"url": b, "type": "bucket"} for b in buckets], _COLUMNS)
            return
        for bucket in buckets:
            click.echo(bucket)
        return
    entries: list[Entry] = []
    for uri in uris:
        entries.extend(storage.ls_entries(uri, recursive))
    if printer.format:
        printer.resources([_record(entry) for entry in entries], _COLUMNS)
        return
    for entry in entries:
        click.echo(_long_line(entry) if long_format else entry.display())
    if long_format:
        objects = [entry for entry in entries if not entry.is_dir]
        size = sum(entry.size for entry in objects)
        click.echo(f"TOTAL: {len(objects)} objects, {size} bytes ({_human_size(size)})")


@storage.command("cat")
@click.argument("uris", nargs=-1, required=True, metavar="URI...")
@_storage_command
def cat(storage: BucketStorage, uris: tuple[str, ...]) -> None:
    """Print the contents of objects to stdout (wildcards allowed).

    \b
    Example:
      cairn storage cat gs://my-bucket/output/metrics.json
    """
    sys.stdout.flush()
    out = sys.stdout.buffer
    for uri in uris:
        matches = storage.glob(uri) if has_wildcard(uri) else [uri]
        if not matches:
            raise ApiError(Code.NOT_FOUND, f"No URLs matched: {uri}.")
        for match in matches:
            if not match.endswith("/"):
                out.write(storage.read_bytes(match))
    out.flush()


@storage.command("rm")
@click.option("-r", "-R", "recursive", is_flag=True, help="Remove directories and all they hold.")
@click.argument("uris", nargs=-1, required=True, metavar="URI...")
@_storage_command
def rm(storage: BucketStorage, uris: tuple[str, ...], recursive: bool) -> None:
    """Remove objects (and, with -r, directories or whole buckets).

    \b
    Examples:
      cairn storage rm gs://my-bucket/tmp/scratch.txt
      cairn storage rm -r gs://my-bucket/old-runs
    """
    removed: list[str] = []
    for uri in uris:
        for gone in storage.remove(uri, recursive):
            _stderr.print(f"Removing {gone}...")
            removed.append(gone)
    _stderr.print(f"Operation completed over {len(removed)} objects.")


@storage.command("mb")
@click.argument("buckets", nargs=-1, required=True, metavar="gs://BUCKET...")
@_storage_command
def mb(storage: BucketStorage, buckets: tuple[str, ...]) -> None:
    """Make buckets (directories under <home>/storage).

    Names follow Cloud Storage's rules: lowercase letters, digits, '-', '_' and '.'.

    \b
    Example:
      cairn storage mb gs://my-bucket
    """
    for bucket in buckets:
        _stderr.print(f"Creating {bucket}...")
        storage.make_bucket(bucket)


_COLUMNS = [
    Column("URL", field("url")),
    Column("TYPE", field("type")),
    Column("SIZE", field("size")),
    Column("UPDATED", field("updated")),
]


def _record(entry: Entry) -> dict[str, Any]:
    if entry.is_dir:
        return {"url": entry.display(), "type": "directory"}
    return {
        "url": entry.display(),
        "type": "object",
        "size": entry.size,
        "updated": _when(entry.mtime),
    }


def _when(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _long_line(entry: Entry) -> str:
    if entry.is_dir:
        return f"{'':>10}  {'':>20}  {entry.display()}"
    return f"{entry.size:>10}  {_when(entry.mtime):>20}  {entry.display()}"


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
