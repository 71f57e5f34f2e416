"""`cairn auth application-default login|print-access-token`."""

from __future__ import annotations

import json

import click

from cairn.cli.options import CairnCommand, CairnGroup, Session, common_options, prompt_secret
from cairn.client.credentials import sign_in
from cairn.config import config_dir
from cairn.iam.credential_files import write_private_file


@click.group("application-default", cls=CairnGroup)
def application_default() -> None:
    """Credentials for your own programs (Google's Application Default Credentials)."""


@application_default.command("login", cls=CairnCommand)
@click.option("--code", help="The one-time sign-in code an administrator gave you.")
@common_options
def adc_login(code: str | None, session: Session) -> None:
    """Write a credential file that google-auth's `google.auth.default()` uses.

    The file is written under ~/.config/cairn ($CAIRN_CONFIG), never over your
    gcloud files; point GOOGLE_APPLICATION_CREDENTIALS at the printed path, and
    unmodified googleapiclient code authenticates against Cairn.
    """
    if code is None:
        code = prompt_secret("One-time sign-in code", "--code")
    info = sign_in(session.api, code.strip())
    path = config_dir() / "application_default_credentials.json"
    write_private_file(path, json.dumps(info, indent=2))
    session.printer.status(f"Credentials saved to file: [{path}]")
    session.printer.status(f"Use them with:\n  export GOOGLE_APPLICATION_CREDENTIALS={path}")
