"""Identity over HTTP: the OAuth 2.0 token and revoke endpoints, IAM v1's service accounts
and keys, and Cairn's own directory of people and groups.

`POST /token` and `POST /revoke` are what google-auth calls at a credential's `token_uri`;
they take form bodies and answer in OAuth's shape, not Google's API error shape.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

from cairn.api.gate import FORM_BODY, authenticated, public
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import Params, instance, needs, project
from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.services.identity import TokenError
from cairn.services.platform import Platform

_MAX_FORM_BYTES = 64 * 1024


def token_uri(call: Call) -> str:
    """The URL this request reached `/token` at: the audience a key file's JWT names."""
    host = call.headers.get(b"host", b"127.0.0.1").decode("latin-1")
    return f"http://{host}/token"


def register(router: Router, platform: Platform) -> None:
    identity = platform.identity
    access = platform.access

    async def form(call: Call) -> dict[str, str]:
        raw = await call.body(limit=_MAX_FORM_BYTES)
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    async def token(call: Call) -> Reply:
        fields = await form(call)
        try:
            grant = await in_thread(identity.grant, fields, [token_uri(call)])
        except TokenError as refused:
            await in_thread(
                access.record,
                None,
                "POST /token",
                "organizations/cairn",
                ApiError(Code.UNAUTHENTICATED, f"{refused.error}: {refused.description}"),
            )
            body = {"error": refused.error, "error_description": refused.description}
            return Reply(refused.status, orjson.dumps(body))
        await in_thread(
            access.record, grant.principal.member, "POST /token", "organizations/cairn", None
        )
        return Reply.json(grant.response)

    async def revoke(call: Call) -> Reply:
        fields = await form(call)
        value = call.arg("token") or fields.get("token")
        if not value:
            raise invalid_field("token", "Name the token to revoke.")
        await in_thread(identity.revoke, value)
        await in_thread(access.record, None, "POST /revoke", "organizations/cairn", None)
        return Reply.json({})

    router.add("POST", "/token", token, public(body_type=FORM_BODY))
    router.add("POST", "/revoke", revoke, public(body_type=FORM_BODY))

    async def whoami(call: Call) -> Reply:
        return Reply.json({"principal": call.caller.member, "email": call.caller.email})

    router.add("GET", "/cairn/v1/auth/principal", whoami, authenticated())

    # -- service accounts and keys: IAM v1's paths -------------------------------------------

    accounts = "/v1/projects/{project}/serviceAccounts"

    def email(params: Params) -> str:
        return params["account"]

    async def create_account(call: Call) -> Reply:
        body = await call.json("account")
        return Reply.json(
            await in_thread(identity.create_service_account, call.params["project"], body)
        )

    async def list_accounts(call: Call) -> Reply:
        return Reply.json(await in_thread(identity.list_service_accounts, call.params["project"]))

    async def get_account(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(identity.get_service_account, p["project"], email(p)))

    async def delete_account(call: Call) -> Reply:
        p = call.params
        await in_thread(identity.delete_service_account, p["project"], email(p))
        return Reply.json({})

    async def create_key(call: Call) -> Reply:
        await call.json("key", required=False)
        p = call.params
        return Reply.json(
            await in_thread(identity.create_key, p["project"], email(p), token_uri(call))
        )

    async def list_keys(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(identity.list_keys, p["project"], email(p)))

    async def delete_key(call: Call) -> Reply:
        p = call.params
        await in_thread(identity.delete_key, p["project"], email(p), p["key"])
        return Reply.json({})

    one = accounts + "/{account}"
    router.add("POST", accounts, create_account, needs("iam.serviceAccounts.create", project))
    router.add("GET", accounts, list_accounts, needs("iam.serviceAccounts.list", project))
    router.add("GET", one, get_account, needs("iam.serviceAccounts.get", project))
    router.add("DELETE", one, delete_account, needs("iam.serviceAccounts.delete", project))
    router.add("POST", one + "/keys", create_key, needs("iam.serviceAccountKeys.create", project))
    router.add("GET", one + "/keys", list_keys, needs("iam.serviceAccountKeys.list", project))
    router.add(
        "DELETE", one + "/keys/{key}", delete_key, needs("iam.serviceAccountKeys.delete", project)
    )

    # -- people and groups: Cairn's own directory, instance-wide ------------------------------

    async def create_user(call: Call) -> Reply:
        return Reply.json(await in_thread(identity.create_user, await call.json("user")))

    async def issue_code(call: Call) -> Reply:
        await call.json("body", required=False)
        return Reply.json(await in_thread(identity.issue_login_code, call.params["email"]))

    async def list_users(call: Call) -> Reply:
        users = await in_thread(identity.list_principals, "user")
        return Reply.json({"users": users} if users else {})

    async def delete_user(call: Call) -> Reply:
        await in_thread(identity.delete_principal, "user", call.params["email"])
        return Reply.json({})

    async def create_group(call: Call) -> Reply:
        return Reply.json(await in_thread(identity.create_group, await call.json("group")))

    async def change_group(call: Call) -> Reply:
        body = await call.json("body")
        if not isinstance(body, dict):
            raise invalid_field("body", 'Send {"add": [...], "remove": [...]}.')
        add, remove = body.get("add") or [], body.get("remove") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise invalid_field("add", "List the members to add and to remove.")
        return Reply.json(await in_thread(identity.change_group, call.params["email"], add, remove))

    async def list_groups(call: Call) -> Reply:
        groups = await in_thread(identity.list_principals, "group")
        return Reply.json({"groups": groups} if groups else {})

    async def delete_group(call: Call) -> Reply:
        await in_thread(identity.delete_principal, "group", call.params["email"])
        return Reply.json({})

    users = "/cairn/v1/users"
    groups = "/cairn/v1/groups"
    router.add("POST", users, create_user, needs("cairn.users.create", instance))
    router.add("GET", users, list_users, needs("cairn.users.list", instance))
    router.add("DELETE", users + "/{email}", delete_user, needs("cairn.users.delete", instance))
    router.add(
        "POST", users + "/{email}:issueLoginCode", issue_code, needs("cairn.users.create", instance)
    )
    router.add("POST", groups, create_group, needs("cairn.groups.create", instance))
    router.add("GET", groups, list_groups, needs("cairn.groups.list", instance))
    router.add(
        "POST",
        groups + "/{email}:modifyMembers",
        change_group,
        needs("cairn.groups.update", instance),
    )
    router.add("DELETE", groups + "/{email}", delete_group, needs("cairn.groups.delete", instance))
