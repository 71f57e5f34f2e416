"""`cairn server`: run the API server in the foreground."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from cairn.cli.options import CairnCommand
from cairn.config import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(cls=CairnCommand)
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
    "--run-as-user",
    default=None,
    help="The unprivileged OS user that runs trainers, package builds and models when the "
    "server runs as root. Default: $CAIRN_RUN_AS_USER, else cairn-runner (created if missing).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow listening on a non-loopback address. Every request still needs a credential; "
    "serve over a TLS proxy, since tokens travel in the clear over plain HTTP.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A name clients use to reach this server besides 127.0.0.1/localhost (repeatable). "
    "Requests naming any other Host are refused, which stops DNS-rebinding web pages.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    help="A web origin (https://app.example) allowed to call the API from a browser "
    "(repeatable). By default no web page can.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Accept requests without a credential. Only on a loopback address, and never on a "
    "machine other people or untrusted code use: any local process could then drive Cairn.",
)
def server(
    host: str,
    port: int,
    home: Path | None,
    database_url: str | None,
    run_as_user: str | None,
    allow_remote: bool,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    insecure_no_auth: bool,
) -> None:
    """Run the Cairn API server (ml v1 REST API) in the foreground.

    \b
    Clients reach it at http://HOST:PORT, e.g.:
      cairn models list --api http://127.0.0.1:8080
      googleapiclient.discovery.build("ml", "v1",
          client_options={"api_endpoint": "http://127.0.0.1:8080"}, ...)

    Every request needs a credential. On first start the server writes its
    owner's credential to HOME/credentials/owner.json (readable by you alone);
    the cairn CLI on this machine finds and uses it by itself. Give others
    access with `cairn iam users create` or `cairn iam service-accounts`.

    Started as root, it runs each job, package build and served version as a
    uid of its own (in the --run-as-user group) that can read neither the
    server's files nor other jobs'; otherwise they run as the server's user,
    as a warning at start-up says.

    Stop it with Ctrl-C; running jobs are stopped and marked FAILED, deployed
    versions are loaded again at the next start.
    """
    from cairn.domain.errors import ApiError
    from cairn.server import StartupError, serve

    if not _is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"{host} is not a loopback address; pass --allow-remote to expose the server "
            "(every request still needs a credential)."
        )
    if insecure_no_auth and not _is_loopback(host):
        raise click.UsageError("--insecure-no-auth is only allowed on a loopback address.")
    if insecure_no_auth:
        click.secho(
            "WARNING: authentication is OFF (--insecure-no-auth). Any process on this machine "
            "can create jobs that run code as this server's user.",
            err=True,
            fg="red",
            bold=True,
        )
    try:
        settings = Settings.from_env(
            host=host,
            port=port,
            home=home,
            database_url=database_url,
            authentication=not insecure_no_auth,
            allowed_hosts=allowed_hosts or None,
            allowed_origins=allowed_origins or None,
            run_as_user=run_as_user,
        )
    except ValueError as exc:  # a CAIRN_* variable that does not parse
        raise click.ClickException(f"Bad setting in the environment: {exc}") from None
    try:
        serve(settings, announce=lambda line: click.echo(line, err=True))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
