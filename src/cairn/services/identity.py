"""Identity: people, groups, service accounts and their keys, and the OAuth 2.0 token endpoint.

The token endpoint speaks the grants google-auth's own credential types use, so a Google
service-account key file or authorized-user file whose `token_uri` points at Cairn works
unchanged: the JWT-bearer grant (service-account keys), the refresh-token grant
(authorized-user files, `cairn auth login`, jobs' credentials) and the authorization-code
grant (a person's one-time sign-in code).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.domain.errors import ApiError, Code, already_exists, invalid_field, not_found
from cairn.domain.names import check_project
from cairn.domain.wire import format_timestamp, now
from cairn.iam.credential_files import user_credential, write_private_file
from cairn.iam.policy import check_member
from cairn.iam.tokens import (
    ACCESS_TOKEN_PREFIX,
    ACCESS_TOKEN_SECONDS,
    JWT_BEARER_GRANT,
    new_key_pair,
    new_secret,
    secret_hash,
    unverified_assertion,
    verify_assertion,
)
from cairn.services.access import AccessService, Principal
from cairn.store import DuplicateKeyError

OWNER = Principal("user:owner@cairn.local")
LOGIN_CODE_SECONDS = 24 * 3600
# AI Platform's default maxRunningTime is 7 days; a job credential never outlives that long.
JOB_CREDENTIAL_SECONDS = 8 * 24 * 3600
_AUTH_CACHE_SECONDS = 30.0
_ACCOUNT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}")


class TokenError(Exception):
    """An OAuth 2.0 error answer: `{"error": CODE, "error_description": TEXT}` (RFC 6749)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Grant:
    """Who the token endpoint just authenticated, for the audit log."""

    principal: Principal
    response: dict[str, Any]


def _unauthenticated(message: str) -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, message)


class IdentityService:
    def __init__(
        self,
        principals: Any,
        credentials: Any,
        access: AccessService,
        *,
        access_token_seconds: int = ACCESS_TOKEN_SECONDS,
    ) -> None:
        self._token_seconds = access_token_seconds
        self._principals = principals
        self._credentials = credentials
        self._access = access
        self._lock = threading.Lock()
        self._known_tokens: dict[str, tuple[float, float, Principal]] = {}
        # Bumped whenever a token is revoked, so callers' own caches drop theirs.
        self.generation = 0

    # -- requests ----------------------------------------------------------------------------

    def cached_principal(self, token: str) -> Principal | None:
        """The principal of a recently seen valid token, without touching the database."""
        cached = self._known_tokens.get(secret_hash(token))
        moment = time.time()
        if cached is not None and cached[0] > moment and cached[1] > moment:
            return cached[2]
        return None

    def authenticate(self, token: str) -> Principal:
        """The principal an access token stands for; UNAUTHENTICATED if it is not valid."""
        cached = self.cached_principal(token)
        if cached is not None:
            return cached
        digest = secret_hash(token)
        moment = time.time()
        record = self._credentials.get(digest, "access")
        if record is None:
            raise _unauthenticated(
                "Request had invalid authentication credentials: the access token is unknown, "
                "expired or revoked. Get a new one (`cairn auth print-access-token`, or sign in "
                "again with `cairn auth login`)."
            )
        principal = Principal(record.principal)
        with self._lock:
            if len(self._known_tokens) > 50_000:
                self._known_tokens.clear()
            self._known_tokens[digest] = (
                moment + _AUTH_CACHE_SECONDS,
                float(record.expires_at or moment + _AUTH_CACHE_SECONDS),
                principal,
            )
        return principal

    def _issue_access_token(self, principal: Principal, bound_to: str) -> dict[str, Any]:
        token = new_secret(ACCESS_TOKEN_PREFIX)
        self._credentials.purge_expired()
        self._credentials.insert(
            secret_hash(token),
            "access",
            principal.member,
            bound_to=bound_to,
            expires_at=time.time() + self._token_seconds,
        )
        return {"access_token": token, "expires_in": self._token_seconds, "token_type": "Bearer"}

    def _new_refresh_token(
        self, principal: Principal, bound_to: str | None, lifetime: float | None = None
    ) -> str:
        token = new_secret()
        expires_at = None if lifetime is None else time.time() + lifetime
        self._credentials.insert(
            secret_hash(token),
            "refresh",
            principal.member,
            bound_to=bound_to,
            expires_at=expires_at,
        )
        return token

    # -- the token endpoint -------------------------------------------------------------------

    def grant(self, form: Mapping[str, str], audiences: list[str]) -> Grant:
        """`POST /token`: exchange a grant for an access token (TokenError if refused)."""
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER_GRANT:
            return self._jwt_bearer(form.get("assertion", ""), audiences)
        if grant_type == "refresh_token":
            record = self._credentials.get(secret_hash(form.get("refresh_token", "")), "refresh")
            if record is None:
                raise TokenError("invalid_grant", "The refresh token is unknown or revoked.")
            principal = Principal(record.principal)
            return Grant(principal, self._issue_access_token(principal, f"refresh:{record.id}"))
        if grant_type == "authorization_code":
            code = self._credentials.take(secret_hash(form.get("code", "")), "login_code")
            if code is None:
                raise TokenError(
                    "invalid_grant",
                    "The sign-in code is unknown, used or expired. Ask an administrator for "
                    "a new one (`cairn iam users issue-code EMAIL`).",
                )
            principal = Principal(code.principal)
            refresh = self._new_refresh_token(principal, None)
            response = self._issue_access_token(principal, f"refresh:{secret_hash(refresh)}")
            response["refresh_token"] = refresh
            response["account"] = principal.email
            return Grant(principal, response)
        raise TokenError(
            "unsupported_grant_type",
            f"Grant type '{grant_type}' is not supported: use refresh_token, "
            f"authorization_code or {JWT_BEARER_GRANT}.",
        )

    def _jwt_bearer(self, assertion: str, audiences: list[str]) -> Grant:
        try:
            header, claims = unverified_assertion(assertion)
            key = self._credentials.get(str(header.get("kid", "")), "key")
            if key is None or key.principal != f"serviceAccount:{claims.get('iss')}":
                raise TokenError(
                    "invalid_grant",
                    "The key that signed the assertion is unknown or deleted "
                    "(`cairn iam service-accounts keys list`).",
                )
            verify_assertion(assertion, key.doc["publicKeyPem"], [*audiences, key.doc["tokenUri"]])
        except ApiError as exc:
            raise TokenError("invalid_grant", exc.message) from None
        principal = Principal(key.principal)
        return Grant(principal, self._issue_access_token(principal, f"key:{key.id}"))

    def revoke(self, token: str) -> None:
        """Google's `POST /revoke?token=`: a refresh token ends with the tokens it minted."""
        digest = secret_hash(token)
        self._credentials.delete(id=digest)
        self._credentials.delete(bound_to=f"refresh:{digest}")
        self._forget_cached_tokens()

    def revoke_principal(self, principal: Principal) -> list[str]:
        ids = self._credentials.delete(principal=principal.member)
        self._forget_cached_tokens()
        return ids

    def _forget_cached_tokens(self) -> None:
        with self._lock:
            self._known_tokens.clear()
            self.generation += 1

    # -- the bootstrap owner and jobs' identities -----------------------------------------------

    def ensure_owner_credential(self, path: Path, token_uri: str) -> Principal:
        """Write the owner's credential file (0600) on first start; keep it valid after."""
        self._ensure_principal("user", OWNER.email, {"displayName": "Owner of this Cairn server"})
        self._access.ensure_instance_owner(OWNER)
        info: dict[str, Any] = {}
        if path.exists():
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                info = {}
        token = info.get("refresh_token")
        if (
            not isinstance(token, str)
            or self._credentials.get(secret_hash(token), "refresh") is None
        ):
            token = self._new_refresh_token(OWNER, None)
        write_private_file(
            path, json.dumps(user_credential(token, token_uri, OWNER.email), indent=2)
        )
        return OWNER

    def job_credential(self, job: str, principal: Principal, token_uri: str) -> dict[str, Any]:
        """A refreshable credential for `principal`, valid until `revoke_job` for `job` (or,
        should that never come, a little longer than the longest a job may run)."""
        token = self._new_refresh_token(principal, job, JOB_CREDENTIAL_SECONDS)
        return user_credential(token, token_uri, principal.email)

    def jobs_holding_credentials(self) -> list[str]:
        return sorted(
            {r.bound_to for r in self._credentials.find(kind="refresh") if _is_job(r.bound_to)}
        )

    def revoke_job(self, job: str) -> None:
        for record in self._credentials.find(kind="refresh", bound_to=job):
            self._credentials.delete(bound_to=f"refresh:{record.id}")
        self._credentials.delete(bound_to=job)
        self._forget_cached_tokens()

    # -- users and groups (instance-wide) ---------------------------------------------------

    def create_user(self, body: Any) -> dict[str, Any]:
        email = _email_of(body, "user.email")
        user = self._insert("user", email, {"displayName": _display_name(body, "user")})
        return {**user, "loginCode": self._new_login_code(Principal(f"user:{email}"))}

    def issue_login_code(self, email: str) -> dict[str, Any]:
        user = self._get("user", email)
        return {**user, "loginCode": self._new_login_code(Principal(f"user:{email}"))}

    def _new_login_code(self, principal: Principal) -> str:
        code = new_secret()
        self._credentials.insert(
            secret_hash(code),
            "login_code",
            principal.member,
            expires_at=time.time() + LOGIN_CODE_SECONDS,
        )
        return code

    def create_group(self, body: Any) -> dict[str, Any]:
        email = _email_of(body, "group.email")
        members = _members_of(body)
        group = self._insert(
            "group", email, {"displayName": _display_name(body, "group"), "members": members}
        )
        self._access.forget_cached_decisions()
        return group

    def change_group(self, email: str, add: list[str], remove: list[str]) -> dict[str, Any]:
        for index, member in enumerate([*add, *remove]):
            check_member(member, f"members[{index}]")

        def mutate(doc: dict[str, Any]) -> dict[str, Any]:
            members = (set(doc.get("members") or ()) | set(add)) - set(remove)
            return {**doc, "members": sorted(members)}

        updated = self._principals.update(("group", email), mutate)
        if updated is None:
            raise not_found(f"Group {email}")
        self._access.forget_cached_decisions()
        return dict(updated)

    def list_principals(self, kind: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            docs, cursor = self._principals.page((kind,), after=cursor, limit=500)
            found.extend(docs)
            if cursor is None:
                return found

    def delete_principal(self, kind: str, email: str) -> None:
        if kind == "user" and email == OWNER.email:
            raise ApiError(Code.FAILED_PRECONDITION, "The server's owner cannot be deleted.")
        if not self._principals.delete((kind, email)):
            raise not_found(f"{kind} {email}")
        if kind != "group":
            self.revoke_principal(Principal(f"{kind}:{email}"))
        self._access.forget_cached_decisions()

    # -- service accounts and keys (per project) ---------------------------------------------

    def create_service_account(self, project: str, body: Any) -> dict[str, Any]:
        check_project(project)
        if not isinstance(body, dict):
            raise invalid_field("account_id", "The request must be a JSON object.")
        account_id = body.get("accountId")
        if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
            raise invalid_field(
                "account_id",
                "Use 6 to 30 lowercase letters, digits and hyphens, starting with a letter.",
            )
        if account_id.startswith("service-"):
            raise invalid_field(
                "account_id", "Ids starting with 'service-' are reserved for service agents."
            )
        details = body.get("serviceAccount") or {}
        if not isinstance(details, dict):
            raise invalid_field("service_account", "Must be an object with a displayName.")
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        return self._insert(
            "serviceAccount",
            email,
            {
                "name": f"projects/{project}/serviceAccounts/{email}",
                "projectId": project,
                "uniqueId": str(int.from_bytes(os.urandom(8), "big") % 10**21),
                "displayName": _display_name({"displayName": details.get("displayName")}, "x"),
            },
        )

    def get_service_account(self, project: str, email: str) -> dict[str, Any]:
        account = self._get("serviceAccount", email)
        if account.get("projectId") != project:
            raise not_found(f"Service account {email} in project {project}")
        return account

    def list_service_accounts(self, project: str) -> dict[str, Any]:
        accounts = [a for a in self.list_principals("serviceAccount") if a["projectId"] == project]
        return {"accounts": accounts} if accounts else {}

    def delete_service_account(self, project: str, email: str) -> None:
        self.get_service_account(project, email)
        self.delete_principal("serviceAccount", email)

    def create_key(self, project: str, email: str, token_uri: str) -> dict[str, Any]:
        account = self.get_service_account(project, email)
        pair = new_key_pair()
        created = format_timestamp(now())
        name = f"{account['name']}/keys/{pair.key_id}"
        self._credentials.insert(
            pair.key_id,
            "key",
            f"serviceAccount:{email}",
            doc={
                "name": name,
                "publicKeyPem": pair.public_pem,
                "validAfterTime": created,
                "tokenUri": token_uri,
            },
        )
        key_file = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": pair.key_id,
            "private_key": pair.private_pem,
            "client_email": email,
            "client_id": account["uniqueId"],
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }
        return {
            **_key_resource(name, created),
            "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
            "privateKeyData": base64.b64encode(json.dumps(key_file).encode()).decode(),
        }

    def list_keys(self, project: str, email: str) -> dict[str, Any]:
        self.get_service_account(project, email)
        keys = [
            _key_resource(record.doc["name"], record.doc["validAfterTime"])
            for record in self._credentials.find(kind="key", principal=f"serviceAccount:{email}")
        ]
        return {"keys": keys} if keys else {}

    def delete_key(self, project: str, email: str, key_id: str) -> None:
        self.get_service_account(project, email)
        record = self._credentials.get(key_id, "key")
        if record is None or record.principal != f"serviceAccount:{email}":
            raise not_found(f"Key {key_id} of {email}")
        self._credentials.delete(id=key_id)
        self._credentials.delete(bound_to=f"key:{key_id}")
        self._forget_cached_tokens()

    # -- plumbing ----------------------------------------------------------------------------

    def _insert(self, kind: str, email: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc = {"email": email, **fields, "createTime": format_timestamp(now())}
        try:
            self._principals.insert((kind, email), doc)
        except DuplicateKeyError:
            raise already_exists("email", f"A {kind} {email} already exists.") from None
        return doc

    def _ensure_principal(self, kind: str, email: str, fields: dict[str, Any]) -> None:
        if self._principals.get((kind, email)) is None:
            # Another server on the same database may have created it meanwhile.
            with contextlib.suppress(ApiError):
                self._insert(kind, email, fields)

    def _get(self, kind: str, email: str) -> dict[str, Any]:
        doc = self._principals.get((kind, email))
        if doc is None:
            raise not_found(
                f"{'Service account' if kind == 'serviceAccount' else kind.title()} {email}"
            )
        return dict(doc)


class JobCredentialIssuer:
    """Issues and revokes jobs' credentials (`JobService`'s `JobCredentials`)."""

    def __init__(self, identity: IdentityService, token_uri: str) -> None:
        self._identity = identity
        self._token_uri = token_uri

    def issue(self, job: str, member: str) -> dict[str, Any]:
        return self._identity.job_credential(job, Principal(member), self._token_uri)

    def revoke(self, job: str) -> None:
        self._identity.revoke_job(job)

    def jobs_holding_credentials(self) -> list[str]:
        return self._identity.jobs_holding_credentials()


def _is_job(name: str | None) -> bool:
    parts = (name or "").split("/")
    return len(parts) == 4 and parts[0] == "projects" and parts[2] == "jobs"


def _key_resource(name: str, created: str) -> dict[str, Any]:
    return {
        "name": name,
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "validAfterTime": created,
        "validBeforeTime": "9999-12-31T23:59:59Z",
        "keyOrigin": "GOOGLE_PROVIDED",
        "keyType": "USER_MANAGED",
    }


def _email_of(body: Any, field_path: str) -> str:
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not _EMAIL.fullmatch(email):
        raise invalid_field(field_path, "Give an email address such as ada@example.com.")
    return email


def _display_name(body: Any, what: str) -> str:
    name = body.get("displayName") if isinstance(body, dict) else None
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > 100:
        raise invalid_field(f"{what}.display_name", "At most 100 characters of text.")
    return name


def _members_of(body: dict[str, Any]) -> list[str]:
    members = body.get("members") or []
    if not isinstance(members, list):
        raise invalid_field("group.members", "Members must be a list.")
    return sorted({check_member(m, f"group.members[{i}]") for i, m in enumerate(members)})
