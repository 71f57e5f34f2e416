"""`cairn projects`: a project's IAM policy (gcloud projects *-iam-policy*)."""

from __future__ import annotations

import click

from cairn.cli.options import CairnGroup
from cairn.cli.projects.policy import (
    add_iam_policy_binding,
    get_iam_policy,
    remove_iam_policy_binding,
    set_iam_policy,
)


@click.group(cls=CairnGroup)
def projects() -> None:
    """Read and change who holds which role on a project.

    \b
    Roles: roles/owner, roles/editor, roles/viewer, roles/ml.admin,
    roles/ml.developer, roles/ml.viewer, roles/ml.modelOwner, roles/ml.modelUser,
    roles/ml.jobOwner, roles/ml.operationOwner (docs/access.md lists what each may do).
    """


for _command in (get_iam_policy, set_iam_policy, add_iam_policy_binding, remove_iam_policy_binding):
    projects.add_command(_command)
