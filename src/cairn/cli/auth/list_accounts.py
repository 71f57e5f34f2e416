"""`cairn auth list`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.client.credentials import read_accounts, server_key


@click.command("list", cls=CairnCommand)
@common_options
def list_accounts(session: Session) -> None:
    """Show the accounts signed in to this server and the credential in use."""
    entry = read_accounts().get(server_key(session.api)) or {}
    active = entry.get("active")
    for account in sorted(entry.get("accounts") or {}):
        click.echo(f"{'*' if account == active else ' '} {account}")
    session.printer.status(
        f"Requests to {session.api} use {session.client.credential.description}."
    )
