"""`cairn iam`: people, groups and service accounts (gcloud iam)."""

from __future__ import annotations

import click

from cairn.cli.iam.groups import groups
from cairn.cli.iam.service_accounts import service_accounts
from cairn.cli.iam.users import users
from cairn.cli.options import CairnGroup


@click.group(cls=CairnGroup)
def iam() -> None:
    """Manage who can use Cairn: people, groups and service accounts.

    \b
    Give someone access to a project:
      cairn iam users create ada@example.com          # prints her sign-in code
      cairn projects add-iam-policy-binding cairn-local \\
          --member user:ada@example.com --role roles/ml.developer
    Give a program access (a Google key file):
      cairn iam service-accounts create trainer-bot
      cairn iam service-accounts keys create key.json \\
          --iam-account trainer-bot@cairn-local.iam.gserviceaccount.com
    """


for _command in (users, groups, service_accounts):
    iam.add_command(_command)
