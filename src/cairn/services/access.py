"""Authorization: IAM policies on the instance, projects, models and jobs; the audit log.

Every API route names the permission it needs and the resource it acts on; `check` grants
it when any policy along the resource's chain (job or model → project → instance) binds a
role holding it to the caller, a group the caller is in, or `allAuthenticatedUsers`.
Answers are cached for a few seconds so the predict path costs a dictionary lookup; a
change made through this server clears the cache at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.wire import format_timestamp, now
from cairn.iam.policy import (
    ALL_AUTHENTICATED,
    ALL_USERS,
    INSTANCE,
    check_etag,
    empty_policy,
    normalise_policy,
    parent_chain,
    roles_for,
    with_etag,
)
from cairn.iam.roles import ALL_PERMISSIONS, permissions_of
from cairn.services.projects import project_number
from cairn.services.records import ListRequest, list_page
from cairn.store import DuplicateKeyError

_CACHE_SECONDS = 5.0
_CACHE_LIMIT = 50_000
INSTANCE_AUDIT_KEY = "-"
_MAX_ANONYMOUS_RESOURCE = 256  # audit entries not tied to one project (sign-ins, people, groups)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: `user:EMAIL` or `serviceAccount:EMAIL`."""

    member: str

    @property
    def email(self) -> str:
        return self.member.split(":", 1)[1]

    @property
    def kind(self) -> str:
        return self.member.split(":", 1)[0]


def service_agent(project: str) -> str:
    """The identity a job runs as when it names no service account (AI Platform's agent)."""
    number = project_number(project)
    return f"serviceAccount:service-{number}@cloud-ml.google.com.iam.gserviceaccount.com"


def _project_of(resource: str) -> str | None:
    parts = resource.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "projects" else None


class AccessService:
    def __init__(self, policies: Any, principals: Any, audit: Any) -> None:
        self._policies = policies
        self._principals = principals
        self._audit = audit
        self._lock = threading.Lock()
        self._granted: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._groups: tuple[float, dict[str, frozenset[str]]] = (0.0, {})
        # False only under --insecure-no-auth: every check then passes.
        self.enforcing = True
        # Bumped whenever cached decisions are dropped, so callers' own caches drop theirs.
        self.generation = 0

    # -- decisions ---------------------------------------------------------------------------

    def cached_permissions(self, principal: Principal, resource: str) -> frozenset[str] | None:
        cached = self._granted.get((principal.member, resource))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def permissions_on(self, principal: Principal, resource: str) -> frozenset[str]:
        """Every permission `principal` holds on `resource` (cached a few seconds)."""
        cached = self.cached_permissions(principal, resource)
        if cached is not None:
            return cached
        key = (principal.member, resource)
        moment = time.monotonic()
        members = self._members_of(principal)
        roles: set[str] = set()
        for attached in parent_chain(resource):
            roles |= roles_for(self._policies.get((attached,)), members)
        project = _project_of(resource)
        if project is not None and principal.member == service_agent(project):
            roles.add("roles/ml.serviceAgent")
        granted = permissions_of(roles)
        with self._lock:
            if len(self._granted) > _CACHE_LIMIT:
                self._granted.clear()
            self._granted[key] = (moment + _CACHE_SECONDS, granted)
        return granted

    def check(self, principal: Principal, permission: str, resource: str) -> None:
        if self.enforcing and permission not in self.permissions_on(principal, resource):
            raise ApiError(
                Code.PERMISSION_DENIED,
                f"Permission '{permission}' denied on resource '{resource}' for "
                f"{principal.member}. Ask an owner of the project to grant you a role that "
                "holds it (`cairn projects add-iam-policy-binding`).",
            )

    def test_permissions(self, principal: Principal, resource: str, body: Any) -> dict[str, Any]:
        """testIamPermissions: the subset of the asked permissions the caller holds."""
        asked = body.get("permissions") if isinstance(body, dict) else None
        if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
            raise invalid_field("permissions", "Give the permissions to test as a list of names.")
        if any("*" in p for p in asked):
            raise invalid_field("permissions", "Wildcards are not allowed in permissions.")
        held = self.permissions_on(principal, resource)
        allowed = sorted({p for p in asked if p in held})
        return {"permissions": allowed} if allowed else {}

    def _members_of(self, principal: Principal) -> set[str]:
        members = {principal.member, ALL_AUTHENTICATED, ALL_USERS}
        members |= {group for group, inside in self._group_members().items() if members & inside}
        return members

    def _group_members(self) -> dict[str, frozenset[str]]:
        expires, groups = self._groups
        if expires > time.monotonic():
            return groups
        loaded: dict[str, frozenset[str]] = {}
        cursor = None
        while True:
            docs, cursor = self._principals.page(("group",), after=cursor, limit=500)
            for doc in docs:
                loaded[f"group:{doc['email']}"] = frozenset(doc.get("members") or ())
            if cursor is None:
                break
        self._groups = (time.monotonic() + _CACHE_SECONDS, loaded)
        return loaded

    def forget_cached_decisions(self) -> None:
        """Policies or groups changed: decide afresh from the next request on."""
        with self._lock:
            self._granted.clear()
            self._groups = (0.0, {})
            self.generation += 1

    # -- policies ----------------------------------------------------------------------------

    def get_policy(self, resource: str) -> dict[str, Any]:
        stored = self._policies.get((resource,))
        return with_etag(stored) if stored else empty_policy()

    def set_policy(self, resource: str, request: Any) -> dict[str, Any]:
        """setIamPolicy: replace the policy (the `etag`, when sent, must be the current one)."""
        if not isinstance(request, dict) or "policy" not in request:
            raise invalid_field("policy", "The request needs a 'policy' object.")
        unknown = set(request) - {"policy", "updateMask"}
        if unknown:
            raise invalid_field(sorted(unknown)[0], "Unknown field.")
        mask = request.get("updateMask") or "bindings,etag"
        if not isinstance(mask, str) or not set(mask.split(",")) <= {"bindings", "etag", "version"}:
            raise invalid_field("update_mask", "Only bindings and etag can be updated.")
        sent = request["policy"]
        replacement = normalise_policy(sent)
        check_grantable(resource, replacement)

        def replace(current: dict[str, Any]) -> dict[str, Any]:
            check_etag(with_etag(current), sent.get("etag"))
            return replacement

        if self._policies.update((resource,), replace) is None:
            check_etag(empty_policy(), sent.get("etag"))
            self._store_new(resource, replacement)
        self.forget_cached_decisions()
        return with_etag(replacement)

    def grant_creator(self, resource: str, role: str, principal: Principal) -> None:
        """The creator of a model or job owns it, as on AI Platform.

        Overwrites whatever policy an earlier resource of the same name left behind.
        """
        policy = normalise_policy({"bindings": [{"role": role, "members": [principal.member]}]})
        if self._policies.update((resource,), lambda _old: policy) is None:
            self._store_new(resource, policy)
        self.forget_cached_decisions()

    def ensure_instance_owner(self, principal: Principal) -> None:
        """The first start makes the bootstrap owner an owner of the whole instance."""
        if self._policies.get((INSTANCE,)) is None:
            policy = normalise_policy(
                {"bindings": [{"role": "roles/owner", "members": [principal.member]}]}
            )
            self._store_new(INSTANCE, policy)

    def _store_new(self, resource: str, policy: dict[str, Any]) -> None:
        try:
            self._policies.insert((resource,), policy)
        except DuplicateKeyError:
            raise ApiError(
                Code.ABORTED, "The policy was changed concurrently. Read it again and retry."
            ) from None

    # -- audit log ---------------------------------------------------------------------------

    def record(
        self,
        principal: str | None,
        method: str,
        resource: str,
        status: ApiError | None,
        permission: str | None = None,
    ) -> None:
        """Append one entry to the audit log, in Cloud Audit Logs' LogEntry shape.

        A caller nobody authenticated names the resource itself: its refusals go to the
        instance's log, cut short, so no stranger can fill a project's log.
        """
        if principal is None:
            resource = resource[:_MAX_ANONYMOUS_RESOURCE]
        project = _project_of(resource) if principal else None
        scope = f"projects/{project}" if project else INSTANCE
        payload: dict[str, Any] = {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "ml.googleapis.com",
            "methodName": method,
            "resourceName": resource,
            "authenticationInfo": {"principalEmail": principal.split(":", 1)[-1]}
            if principal
            else {},
            "status": status.to_status() if status else {"code": 0},
        }
        if permission:
            payload["authorizationInfo"] = [
                {
                    "permission": permission,
                    "resource": resource,
                    "granted": status is None,
                }
            ]
        entry_id = uuid.uuid4().hex
        entry = {
            "logName": f"{scope}/logs/cloudaudit.googleapis.com%2Factivity",
            "insertId": entry_id,
            "timestamp": format_timestamp(now()),
            "severity": "ERROR" if status else "NOTICE",
            "resource": {"type": "audited_resource", "labels": {"project_id": project or ""}},
            "protoPayload": payload,
        }
        self._audit.insert((project or INSTANCE_AUDIT_KEY, entry_id), entry)

    def read_audit(self, scope: str, request: ListRequest, *, newest_first: bool) -> dict[str, Any]:
        """One page of the audit entries of `projects/P` or of the instance."""
        project = _project_of(scope)
        key = project if project else INSTANCE_AUDIT_KEY
        return list_page(
            self._audit, (key,), request, collection="entries", newest_first=newest_first
        )


# What a model's or a job's own policy may bind, as on AI Platform; anything wider is granted
# on the project. Otherwise a model's creator could bind, say, roles/owner on the model and
# pass a check meant for the project.
GRANTABLE_ON = {
    "models": frozenset({"roles/ml.modelOwner", "roles/ml.modelUser"}),
    "jobs": frozenset({"roles/ml.jobOwner"}),
}


def check_grantable(resource: str, policy: dict[str, Any]) -> None:
    parts = resource.split("/")
    allowed = GRANTABLE_ON.get(parts[2]) if len(parts) == 4 else None
    if allowed is None:
        return
    for index, binding in enumerate(policy["bindings"]):
        if binding["role"] not in allowed:
            raise invalid_field(
                f"policy.bindings[{index}].role",
                f"Role {binding['role']} is not supported for this resource (use "
                f"{', '.join(sorted(allowed))}); grant wider roles on the project.",
            )


def known_permission(permission: str) -> str:
    """Route tables name permissions by string; a typo must fail at start-up, not deny."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"{permission} is not a permission any role grants")
    return permission
