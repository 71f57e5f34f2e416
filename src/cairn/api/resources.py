"""Which resource a route acts on, read from its path, and the permission it needs there."""

from __future__ import annotations

from collections.abc import Callable

from cairn.api.gate import JSON_BODY, Access
from cairn.domain.names import check_project
from cairn.iam.policy import INSTANCE
from cairn.services.access import known_permission

Params = dict[str, str]


def project(params: Params) -> str:
    return f"projects/{params['project']}"


def model(params: Params) -> str:
    return f"projects/{params['project']}/models/{params['model']}"


def job(params: Params) -> str:
    return f"projects/{params['project']}/jobs/{params['job']}"


def instance(_params: Params) -> str:
    return INSTANCE


def billed_project(params: Params) -> str:
    """Cloud Storage names the project a call is for in `userProject`; Cairn's buckets have
    no IAM of their own, so storage permissions are checked there (else instance-wide)."""
    project = params.get("userProject")
    return f"projects/{check_project(project)}" if project else INSTANCE


def predict_target(params: Params) -> str:
    return "projects/" + params["name"]


def predict_permission(params: Params) -> str:
    """ml.versions.predict on a version, ml.models.predict on a model's default version."""
    return "ml.versions.predict" if "/versions/" in params["name"] else "ml.models.predict"


def needs(
    permission: str,
    on: Callable[[Params], str],
    *,
    audited: bool | None = None,
    body_type: bytes = JSON_BODY,
) -> Access:
    """`permission` on the resource `on` names; a misspelt permission fails at start-up."""
    return Access(known_permission(permission), on, audited=audited, body_type=body_type)
