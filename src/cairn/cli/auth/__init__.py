"""`cairn auth`: sign in, print tokens, and manage signed-in accounts (gcloud auth)."""

from __future__ import annotations

import click

from cairn.cli.auth.application_default import application_default
from cairn.cli.auth.list_accounts import list_accounts
from cairn.cli.auth.login import login
from cairn.cli.auth.print_access_token import print_access_token
from cairn.cli.auth.revoke import revoke
from cairn.cli.options import CairnGroup


@click.group(cls=CairnGroup)
def auth() -> None:
    """Sign in to a Cairn server and manage the credentials the CLI uses.

    \b
    On the machine that runs the server you need nothing: the CLI uses the
    owner credential the server wrote into its home. Anyone else signs in
    with a one-time code an administrator gives them:
      cairn iam users create ada@example.com      # the administrator
      cairn auth login --code CODE                # Ada, on her machine
    """


for _command in (login, print_access_token, application_default, list_accounts, revoke):
    auth.add_command(_command)
