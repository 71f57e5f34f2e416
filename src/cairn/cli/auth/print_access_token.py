"""`cairn auth print-access-token`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.domain.errors import ApiError, Code


@click.command(cls=CairnCommand)
@common_options
def print_access_token(session: Session) -> None:
    """Print an access token for the active credential (valid for an hour).

    \b
    Use it with any HTTP client:
      curl -H "Authorization: Bearer $(cairn auth print-access-token)" \\
           http://127.0.0.1:8080/v1/projects/cairn-local/models
    """
    token = session.client.credential.token(session.api)
    if not token:
        raise ApiError(
            Code.UNAUTHENTICATED,
            "No credential found: sign in with `cairn auth login`, or run the CLI on the "
            "server's machine with --home/CAIRN_HOME pointing at its home.",
        )
    click.echo(token)
