"""IAM policies: parsing and checking a `google.iam.v1.Policy`, and who a policy grants what.

A policy is kept as its JSON (`{"version", "bindings": [{"role", "members"}], "etag"}`).
Policies attach to the instance (`organizations/cairn`), projects, models and jobs; a
resource's effective permissions are the union along that chain.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.iam.roles import ROLES

INSTANCE = "organizations/cairn"
ALL_AUTHENTICATED = "allAuthenticatedUsers"
ALL_USERS = "allUsers"

_EMAIL = r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}"
_MEMBER = re.compile(rf"(user|serviceAccount|group):{_EMAIL}")
_MAX_BINDINGS = 1500


def check_member(member: object, field_path: str) -> str:
    if not isinstance(member, str) or not (
        member in (ALL_AUTHENTICATED, ALL_USERS) or _MEMBER.fullmatch(member)
    ):
        raise invalid_field(
            field_path,
            f"'{member}' is not a member: use user:EMAIL, serviceAccount:EMAIL, group:EMAIL, "
            "allAuthenticatedUsers or allUsers.",
        )
    return member


def policy_etag(bindings: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256(orjson.dumps(bindings, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.b64encode(digest[:8]).decode()


def empty_policy() -> dict[str, Any]:
    return {"version": 1, "bindings": [], "etag": policy_etag([])}


def normalise_policy(body: object, field_path: str = "policy") -> dict[str, Any]:
    """Validate a Policy from a request; return it with merged, sorted bindings and no etag."""
    if not isinstance(body, Mapping):
        raise invalid_field(field_path, "A policy must be a JSON object.")
    unknown = set(body) - {"version", "bindings", "etag", "auditConfigs"}
    if unknown:
        raise invalid_field(f"{field_path}.{sorted(unknown)[0]}", "Unknown field.")
    version = body.get("version", 1)
    if version not in (0, 1, 3):
        raise invalid_field(f"{field_path}.version", "Policy version must be 1 or 3.")
    bindings = body.get("bindings") or []
    if not isinstance(bindings, list) or len(bindings) > _MAX_BINDINGS:
        raise invalid_field(f"{field_path}.bindings", "Bindings must be a list (at most 1500).")
    merged: dict[str, set[str]] = {}
    for index, binding in enumerate(bindings):
        where = f"{field_path}.bindings[{index}]"
        if not isinstance(binding, Mapping):
            raise invalid_field(where, "A binding must be a JSON object.")
        if binding.get("condition"):
            raise invalid_field(f"{where}.condition", "Conditional bindings are not supported.")
        role = binding.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise invalid_field(
                f"{where}.role", f"Role {role} does not exist; known roles: {', '.join(ROLES)}."
            )
        members = binding.get("members") or []
        if not isinstance(members, list):
            raise invalid_field(f"{where}.members", "Members must be a list.")
        for position, member in enumerate(members):
            check_member(member, f"{where}.members[{position}]")
        merged.setdefault(str(role), set()).update(members)
    return {
        "version": 1,
        "bindings": [
            {"role": role, "members": sorted(members)}
            for role, members in sorted(merged.items())
            if members
        ],
    }


def with_etag(policy: Mapping[str, Any]) -> dict[str, Any]:
    bindings = list(policy.get("bindings") or [])
    return {"version": 1, "bindings": bindings, "etag": policy_etag(bindings)}


def check_etag(current: Mapping[str, Any], sent: object) -> None:
    """ABORTED when the caller read a policy that has changed since (optimistic concurrency)."""
    if sent and sent != current.get("etag"):
        raise ApiError(
            Code.ABORTED,
            "The policy was changed since it was read (etag mismatch). Read it again and retry.",
        )


def roles_for(policy: Mapping[str, Any] | None, members: Iterable[str]) -> set[str]:
    """The roles `policy` binds to any of `members`."""
    if not policy:
        return set()
    wanted = set(members)
    return {
        binding["role"]
        for binding in policy.get("bindings") or ()
        if wanted.intersection(binding.get("members") or ())
    }


def add_binding(policy: Mapping[str, Any], role: str, member: str) -> dict[str, Any]:
    bindings = [dict(b) for b in policy.get("bindings") or ()]
    return normalise_policy({"bindings": [*bindings, {"role": role, "members": [member]}]})


def remove_binding(policy: Mapping[str, Any], role: str, member: str) -> dict[str, Any]:
    bindings = [
        {
            "role": b["role"],
            "members": [m for m in b["members"] if m != member or b["role"] != role],
        }
        for b in policy.get("bindings") or ()
    ]
    return normalise_policy({"bindings": bindings})


def parent_chain(resource: str) -> list[str]:
    """`projects/P/models/M/versions/V` → [model, project, instance]: where policies attach.

    Versions and operations have no policy of their own; they inherit their model's or
    project's, as on AI Platform.
    """
    parts = resource.split("/")
    chain: list[str] = []
    if len(parts) >= 4 and parts[0] == "projects" and parts[2] in ("models", "jobs"):
        chain.append("/".join(parts[:4]))
    if len(parts) >= 2 and parts[0] == "projects":
        chain.append("/".join(parts[:2]))
    chain.append(INSTANCE)
    return chain
