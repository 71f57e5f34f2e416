"""The gate every request passes before its handler: browser checks, credential, permission.

Browser checks hold even with authentication off: a web page the user opens must never
drive the API. A page can send "simple" cross-site requests without asking (text/plain
bodies, forms) and, through DNS rebinding, can even read answers under a hostile name; so
requests must name this server in `Host`, come from no foreign `Origin`, and carry JSON as
`application/json` (which a page cannot send cross-site without a CORS preflight Cairn
never grants).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cairn.domain.errors import ApiError, Code
from cairn.services.access import AccessService, Principal
from cairn.services.identity import IdentityService

JSON_BODY = b"application/json"
FORM_BODY = b"application/x-www-form-urlencoded"
# Uploads take any media type except those a page may send cross-site without a preflight
# (the CORS "simple" types).
UPLOAD_BODY = b"any media type a web page cannot send cross-site"
_SIMPLE_TYPES = (b"text/plain", FORM_BODY, b"multipart/form-data")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
ANONYMOUS = Principal("user:anonymous@cairn.local")
_ADMITTED_SECONDS = 1.0
_ADMITTED_LIMIT = 50_000


@dataclass(frozen=True)
class Access:
    """What a route needs: a permission on the resource its path names, or nothing at all.

    `permission` may depend on the path (predict needs ml.models.predict on a model and
    ml.versions.predict on a version). `public` routes (the token endpoint, server info)
    take no credential. `audited` defaults to every method but GET.
    """

    permission: str | Callable[[dict[str, str]], str] | None
    resource: Callable[[dict[str, str]], str] | None = None
    public: bool = False
    audited: bool | None = None
    body_type: bytes = JSON_BODY

    def permission_for(self, params: dict[str, str]) -> str | None:
        return self.permission(params) if callable(self.permission) else self.permission


def public(*, body_type: bytes = JSON_BODY) -> Access:
    return Access(permission=None, public=True, audited=False, body_type=body_type)


def authenticated() -> Access:
    """Any valid credential (testIamPermissions answers for whoever asks)."""
    return Access(permission=None, audited=False)


class Gate:
    def __init__(
        self,
        identity: IdentityService,
        access: AccessService,
        *,
        authentication: bool,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.identity = identity
        self.access = access
        self.authentication = authentication
        self._hosts = {h.lower() for h in (*_LOOPBACK_NAMES, *allowed_hosts)}
        # (token, request target) -> (deadline, generations, principal): the steady predict
        # path then costs one lookup. A second at most, and dropped on any revocation or
        # policy change, so it never outlives what the services' caches would allow.
        self._admitted: dict[tuple[str, str], tuple[float, tuple[int, int], Principal]] = {}
        self._origins = {o.rstrip("/").lower() for o in allowed_origins}

    def check_browser(self, method: str, headers: dict[bytes, bytes], access: Access) -> None:
        host = headers.get(b"host", b"").decode("latin-1").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in self._hosts:
            raise ApiError(
                Code.PERMISSION_DENIED,
                f"Host '{host}' is not a name of this server. Use http://127.0.0.1:PORT, or "
                "start the server with --allowed-host NAME to serve under another name.",
            )
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1").rstrip("/").lower() not in self._origins:
            raise ApiError(
                Code.PERMISSION_DENIED,
                "Cross-origin requests are refused. Start the server with --allowed-origin "
                "ORIGIN to let a web application of your own call it.",
            )
        if method in ("POST", "PUT", "PATCH") and _has_body(headers):
            sent = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            expected = access.body_type
            if expected == UPLOAD_BODY and (method == "PUT" or b"authorization" in headers):
                return  # a page can send neither cross-site without a preflight (gcsfs: text/plain)
            if sent == expected or (expected == UPLOAD_BODY and sent and sent not in _SIMPLE_TYPES):
                return
            wanted = (
                "any media type but text/plain or a form"
                if expected == UPLOAD_BODY
                else expected.decode()
            )
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"The body's Content-Type must be {wanted}, not '{sent.decode('latin-1')}'.",
            )

    def admit_cached(
        self, token: str | None, target: str, access: Access, params: dict[str, str]
    ) -> Principal | None:
        """The caller, when the token and the decision are both cached; else None.

        `target` names what the request asks (method, path, billed project). Keeps the
        steady predict path off the database and off worker threads.
        """
        if not self.authentication:
            return ANONYMOUS
        if token is None:
            return None
        moment = time.monotonic()
        generations = (self.identity.generation, self.access.generation)
        hit = self._admitted.get((token, target))
        if hit is not None and hit[0] > moment and hit[1] == generations:
            return hit[2]
        principal = self.identity.cached_principal(token)
        if principal is None:
            return None
        permission = access.permission_for(params)
        if permission is not None and access.resource is not None:
            held = self.access.cached_permissions(principal, access.resource(params))
            if held is None or permission not in held:
                return None
        if len(self._admitted) > _ADMITTED_LIMIT:
            self._admitted.clear()
        self._admitted[(token, target)] = (moment + _ADMITTED_SECONDS, generations, principal)
        return principal

    def authenticate(self, token: str | None) -> Principal:
        """The caller (may read the database: run it off the event loop)."""
        if not self.authentication:
            return ANONYMOUS
        if token is None:
            raise ApiError(
                Code.UNAUTHENTICATED,
                "Request is missing required authentication credential. Expected an OAuth 2 "
                "access token (Authorization: Bearer TOKEN): the cairn CLI finds its credential "
                "by itself; otherwise run `cairn auth print-access-token`.",
            )
        return self.identity.authenticate(token)

    def authorize(self, principal: Principal, access: Access, params: dict[str, str]) -> None:
        """PERMISSION_DENIED unless the route's permission is granted (may read the database)."""
        permission = access.permission_for(params)
        if permission is not None and access.resource is not None:
            self.access.check(principal, permission, access.resource(params))


def check_single_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Two Host or Authorization headers could mean one thing to a proxy and another here."""
    names = [name.lower() for name, _ in headers]
    for name in (b"host", b"authorization", b"origin", b"content-type"):
        if names.count(name) > 1:
            raise ApiError(
                Code.INVALID_ARGUMENT, f"The request repeats the {name.decode()} header."
            )


def bearer_token(headers: dict[bytes, bytes], query: dict[str, list[str]]) -> str | None:
    """The access token of `Authorization: Bearer …` (or Google's `access_token` parameter)."""
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    values = query.get("access_token")
    return values[-1] if values and values[-1] else None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    return headers.get(b"transfer-encoding") is not None or (
        length is not None and length.strip() not in (b"", b"0")
    )
