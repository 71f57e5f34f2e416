"""`cairn auth revoke`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options
from cairn.client.credentials import (
    read_accounts,
    server_key,
    write_accounts,
)
from cairn.client.credentials import (
    revoke as revoke_at_server,
)
from cairn.domain.errors import not_found


@click.command(cls=CairnCommand)
@click.argument("account", required=False)
@common_options
def revoke(account: str | None, session: Session) -> None:
    """Revoke ACCOUNT's credential on the server and forget it (default: the active one)."""
    accounts = read_accounts()
    entry = accounts.get(server_key(session.api)) or {}
    account = account or entry.get("active")
    info = (entry.get("accounts") or {}).get(account) if account else None
    if not isinstance(info, dict):
        raise not_found(
            f"Signed-in account {account or ''} for {session.api} (see `cairn auth list`)"
        )
    revoke_at_server(session.api, str(info.get("refresh_token", "")))
    del entry["accounts"][account]
    if entry.get("active") == account:
        entry.pop("active")
    write_accounts(accounts)
    session.printer.status(f"Revoked credentials: [{account}].")
