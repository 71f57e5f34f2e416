"""`cairn projects get-iam-policy|set-iam-policy|add-iam-policy-binding|remove-iam-policy-binding`."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.options import CairnCommand, Session, common_options, load_config_file
from cairn.iam.policy import add_binding, remove_binding

member_option = click.option(
    "--member",
    required=True,
    help="user:EMAIL, serviceAccount:EMAIL, group:EMAIL or allAuthenticatedUsers.",
)
role_option = click.option("--role", required=True, help="A role name, e.g. roles/ml.developer.")


def _resource(project_id: str) -> str:
    return f"projects/{project_id}"


@click.command("get-iam-policy", cls=CairnCommand)
@click.argument("project_id")
@common_options
def get_iam_policy(project_id: str, session: Session) -> None:
    """Print PROJECT_ID's IAM policy (YAML by default)."""
    session.printer.resource(session.client.get_iam_policy(_resource(project_id)))


@click.command("set-iam-policy", cls=CairnCommand)
@click.argument("project_id")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False))
@common_options
def set_iam_policy(project_id: str, policy_file: str, session: Session) -> None:
    """Replace PROJECT_ID's policy with POLICY_FILE (JSON or YAML, as get-iam-policy prints).

    Keep the file's etag: if the policy changed since you read it, the server
    refuses, and you read it again instead of overwriting someone's change.
    """
    policy: dict[str, Any] = load_config_file(policy_file, "POLICY_FILE")
    session.printer.resource(session.client.set_iam_policy(_resource(project_id), policy))


def _change(session: Session, project_id: str, change: Any, member: str, role: str) -> None:
    resource = _resource(project_id)
    current = session.client.get_iam_policy(resource)
    changed = {**change(current, role, member), "etag": current.get("etag")}
    session.printer.status(f"Updated IAM policy for project [{project_id}].")
    session.printer.resource(session.client.set_iam_policy(resource, changed))


@click.command("add-iam-policy-binding", cls=CairnCommand)
@click.argument("project_id")
@member_option
@role_option
@common_options
def add_iam_policy_binding(project_id: str, member: str, role: str, session: Session) -> None:
    """Grant ROLE on PROJECT_ID to MEMBER."""
    _change(session, project_id, add_binding, member, role)


@click.command("remove-iam-policy-binding", cls=CairnCommand)
@click.argument("project_id")
@member_option
@role_option
@common_options
def remove_iam_policy_binding(project_id: str, member: str, role: str, session: Session) -> None:
    """Take ROLE on PROJECT_ID away from MEMBER."""
    _change(session, project_id, remove_binding, member, role)
