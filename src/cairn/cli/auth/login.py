"""`cairn auth login`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, Session, common_options, prompt_secret
from cairn.client.credentials import read_accounts, server_key, sign_in, write_accounts


@click.command(cls=CairnCommand)
@click.option("--code", help="The one-time sign-in code an administrator gave you.")
@common_options
def login(code: str | None, session: Session) -> None:
    """Sign in to the server with a one-time code and make that account active.

    The administrator creates the code with `cairn iam users create EMAIL` (or
    `cairn iam users issue-code EMAIL` for a new one). The credential is kept in
    ~/.config/cairn/credentials.json ($CAIRN_CONFIG), readable by you alone.
    """
    if code is None:
        code = prompt_secret("One-time sign-in code", "--code")
    info = sign_in(session.api, code.strip())
    account = str(info["account"])
    accounts = read_accounts()
    entry = accounts.setdefault(server_key(session.api), {"accounts": {}})
    entry.setdefault("accounts", {})[account] = info
    entry["active"] = account
    path = write_accounts(accounts)
    session.printer.status(f"You are now signed in as [{account}] on {session.api}.")
    session.printer.status(f"Your credential is saved in {path}.")
