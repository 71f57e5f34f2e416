"""`cairn iam users create|issue-code|list|delete`: the people who may sign in."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, CairnGroup, Session, common_options, confirm
from cairn.cli.output import Column, field


@click.group(cls=CairnGroup)
def users() -> None:
    """People who sign in with `cairn auth login` (instance-wide; needs roles/owner)."""


def _hand_over(session: Session, user: dict[str, str]) -> None:
    session.printer.status(
        f"Give {user['email']} this one-time code (valid 24 hours); they sign in with:\n"
        f"  cairn auth login --api {session.api} --code {user['loginCode']}"
    )
    session.printer.status(
        "Then grant a role, e.g.: cairn projects add-iam-policy-binding PROJECT "
        f"--member user:{user['email']} --role roles/ml.developer"
    )


@users.command(cls=CairnCommand)
@click.argument("email")
@click.option("--display-name", help="A name to show for the person.")
@common_options
def create(email: str, display_name: str | None, session: Session) -> None:
    """Create user EMAIL and print their one-time sign-in code."""
    user = session.client.create_user(email, display_name)
    session.printer.status(f"Created user [{email}].")
    _hand_over(session, user)


@users.command("issue-code", cls=CairnCommand)
@click.argument("email")
@common_options
def issue_code(email: str, session: Session) -> None:
    """Print a new one-time sign-in code for EMAIL (e.g. for a new machine)."""
    _hand_over(session, session.client.issue_login_code(email))


@users.command("list", cls=CairnCommand)
@common_options
def list_users(session: Session) -> None:
    """List the users."""
    columns = [Column("EMAIL", field("email")), Column("DISPLAY_NAME", field("displayName"))]
    session.printer.resources(session.client.list_users(), columns)


@users.command(cls=CairnCommand)
@click.argument("email")
@common_options
def delete(email: str, session: Session) -> None:
    """Delete user EMAIL and revoke every credential they hold."""
    confirm(f"User [{email}] will be deleted and signed out everywhere.")
    session.client.delete_user(email)
    session.printer.status(f"Deleted user [{email}].")
