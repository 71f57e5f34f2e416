"""`cairn server`: run the API server in the foreground."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from cairn.config import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where Cairn keeps its state (metadata, buckets, jobs, models). "
    "Default: $CAIRN_HOME or ~/.cairn.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL of the metadata store, e.g. postgresql+psycopg://user@host/db. "
    "Default: SQLite in the home directory.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow listening on a non-loopback address. Cairn has no authentication yet: "
    "anyone who can reach the port can run code on this machine.",
)
def server(
    host: str, port: int, home: Path | None, database_url: str | None, allow_remote: bool
) -> None:
    """Run the Cairn API server (ml v1 REST API) in the foreground.

    \b
    Clients reach it at http://HOST:PORT, e.g.:
      cairn models list --api http://127.0.0.1:8080
      googleapiclient.discovery.build("ml", "v1",
          client_options={"api_endpoint": "http://127.0.0.1:8080"}, ...)

    Stop it with Ctrl-C; running jobs are stopped and marked FAILED, deployed
    versions are loaded again at the next start.
    """
    from cairn.domain.errors import ApiError
    from cairn.server import serve

    if not _is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"{host} is not a loopback address. Cairn has no authentication yet; "
            "pass --allow-remote if you really want to expose it."
        )
    settings = Settings.from_env(host=host, port=port, home=home, database_url=database_url)
    click.echo(
        f"Cairn server listening on http://{host}:{port} (home: {settings.home}). "
        "Stop it with Ctrl-C.",
        err=True,
    )
    try:
        serve(settings)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
