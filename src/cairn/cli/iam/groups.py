"""`cairn iam groups create|add-member|remove-member|list|delete`."""

from __future__ import annotations

import click

from cairn.cli.options import CairnCommand, CairnGroup, Session, common_options, confirm
from cairn.cli.output import Column, field


@click.group(cls=CairnGroup)
def groups() -> None:
    """Groups of members; bind a role to `group:EMAIL` to grant it to all of them."""


@groups.command(cls=CairnCommand)
@click.argument("email")
@click.option("--member", "members", multiple=True, help="user:, serviceAccount: or group: member.")
@click.option("--display-name", help="A name to show for the group.")
@common_options
def create(
    email: str, members: tuple[str, ...], display_name: str | None, session: Session
) -> None:
    """Create group EMAIL (e.g. ml-team@example.com) with the given members."""
    session.printer.resource(session.client.create_group(email, list(members), display_name))


@groups.command("add-member", cls=CairnCommand)
@click.argument("email")
@click.argument("member")
@common_options
def add_member(email: str, member: str, session: Session) -> None:
    """Add MEMBER (user:EMAIL, serviceAccount:EMAIL or group:EMAIL) to group EMAIL."""
    session.printer.resource(session.client.modify_group(email, [member], []))


@groups.command("remove-member", cls=CairnCommand)
@click.argument("email")
@click.argument("member")
@common_options
def remove_member(email: str, member: str, session: Session) -> None:
    """Remove MEMBER from group EMAIL."""
    session.printer.resource(session.client.modify_group(email, [], [member]))


@groups.command("list", cls=CairnCommand)
@common_options
def list_groups(session: Session) -> None:
    """List the groups and their members."""
    columns = [
        Column("EMAIL", field("email")),
        Column("MEMBERS", lambda g: ",".join(g.get("members") or [])),
    ]
    session.printer.resources(session.client.list_groups(), columns)


@groups.command(cls=CairnCommand)
@click.argument("email")
@common_options
def delete(email: str, session: Session) -> None:
    """Delete group EMAIL (its members lose what was granted through it)."""
    confirm(f"Group [{email}] will be deleted.")
    session.client.delete_group(email)
    session.printer.status(f"Deleted group [{email}].")
