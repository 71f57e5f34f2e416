"""`cairn iam service-accounts create|list|delete` and `… keys create|list|delete`."""

from __future__ import annotations

import base64
from pathlib import Path

import click

from cairn.cli.options import CairnCommand, CairnGroup, Session, common_options, confirm
from cairn.cli.output import Column, basename_of, field
from cairn.iam.credential_files import write_private_file


@click.group("service-accounts", cls=CairnGroup)
def service_accounts() -> None:
    """Identities for programs and jobs (a job runs as the account its
    trainingInput.serviceAccount names)."""


@service_accounts.command(cls=CairnCommand)
@click.argument("name")
@click.option("--display-name", help="A name to show for the account.")
@common_options
def create(name: str, display_name: str | None, session: Session) -> None:
    """Create service account NAME (6-30 lowercase letters, digits, hyphens) in the project."""
    account = session.client.create_service_account(name, display_name)
    session.printer.status(f"Created service account [{account['email']}].")
    if session.printer.format:
        session.printer.resource(account)


@service_accounts.command("list", cls=CairnCommand)
@common_options
def list_accounts(session: Session) -> None:
    """List the project's service accounts."""
    columns = [Column("EMAIL", field("email")), Column("DISPLAY_NAME", field("displayName"))]
    session.printer.resources(session.client.list_service_accounts(), columns)


@service_accounts.command(cls=CairnCommand)
@click.argument("email")
@common_options
def delete(email: str, session: Session) -> None:
    """Delete service account EMAIL with its keys and tokens."""
    confirm(f"Service account [{email}] will be deleted.")
    session.client.delete_service_account(email)
    session.printer.status(f"Deleted service account [{email}].")


@service_accounts.group()
def keys() -> None:
    """Key files of a service account (Google's JSON key format)."""


iam_account = click.option("--iam-account", required=True, help="The service account's email.")


@keys.command("create", cls=CairnCommand)
@click.argument("output_file", type=click.Path(path_type=Path, dir_okay=False))
@iam_account
@common_options
def create_key(output_file: Path, iam_account: str, session: Session) -> None:
    """Create a key and write its key file to OUTPUT_FILE (readable by you alone).

    \b
    Google's client libraries use the file unchanged:
      credentials = service_account.Credentials.from_service_account_file(
          "key.json", scopes=["https://www.googleapis.com/auth/cloud-platform"])
    Cairn keeps only the public half: keep the file safe.
    """
    key = session.client.create_service_account_key(iam_account)
    write_private_file(output_file, base64.b64decode(key["privateKeyData"]))
    key_id = key["name"].rsplit("/", 1)[-1]
    session.printer.status(f"Created key [{key_id}] of [{iam_account}] as [{output_file}].")


@keys.command("list", cls=CairnCommand)
@iam_account
@common_options
def list_keys(iam_account: str, session: Session) -> None:
    """List the keys of a service account."""
    columns = [Column("KEY_ID", basename_of("name")), Column("CREATED_AT", field("validAfterTime"))]
    session.printer.resources(session.client.list_service_account_keys(iam_account), columns)


@keys.command("delete", cls=CairnCommand)
@click.argument("key_id")
@iam_account
@common_options
def delete_key(key_id: str, iam_account: str, session: Session) -> None:
    """Delete key KEY_ID; tokens obtained with it stop working at once."""
    confirm(f"Key [{key_id}] of [{iam_account}] will be deleted.")
    session.client.delete_service_account_key(iam_account, key_id)
    session.printer.status(f"Deleted key [{key_id}] of [{iam_account}].")
