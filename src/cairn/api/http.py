"""A lean ASGI core: one request object, one reply type, Google's error rendering.

The ml v1 paths put verbs after a colon (`.../jobs/j:cancel`) and names span slashes
(`projects/**:predict`), which suit a small regex router better than a framework's. Keeping
the core this thin also keeps the predict path fast.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import orjson

from cairn.api.gate import Access, Gate, bearer_token, check_single_headers
from cairn.domain.errors import ApiError, Code, FieldViolation, invalid_field
from cairn.services.access import Principal
from cairn.services.records import ListRequest

log = logging.getLogger(__name__)

JSON = b"application/json; charset=UTF-8"
DEFAULT_MAX_BODY = 32 * 1024 * 1024


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: bytes = JSON
    # Extra response headers (Cloud Storage's Location, Range, Content-Range).
    headers: tuple[tuple[bytes, bytes], ...] = ()
    # A body sent as it is read (object downloads), `length` bytes long; `body` is unused.
    stream: AsyncIterator[bytes] | None = None
    length: int = 0

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status, orjson.dumps(data))


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    receive: Any
    headers: dict[bytes, bytes] = field(default_factory=dict)
    # Who is calling; set by the gate before the handler runs (public routes: None).
    principal: Principal | None = None

    @property
    def caller(self) -> Principal:
        if self.principal is None:
            raise ApiError(Code.UNAUTHENTICATED, "This method needs a credential.")
        return self.principal

    @property
    def access_params(self) -> dict[str, str]:
        """What the route's Access reads: the path's names, and Cloud Storage's userProject."""
        project = self.arg("userProject")
        return {**self.params, "userProject": project} if project else self.params

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def int_arg(self, name: str, field_name: str) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise invalid_field(field_name, f"'{value}' is not an integer.") from None

    def list_request(self) -> ListRequest:
        """The standard list parameters: `filter`, `pageSize`, `pageToken`."""
        return ListRequest(
            filter_text=self.arg("filter"),
            page_size=self.int_arg("pageSize", "page_size"),
            page_token=self.arg("pageToken"),
        )

    async def chunks(self, limit: int = DEFAULT_MAX_BODY) -> AsyncIterator[bytes]:
        """The request body as it arrives; INVALID_ARGUMENT once it passes `limit` bytes."""
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        size = 0
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ApiError(Code.CANCELLED, "The client closed the connection.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            yield chunk
            more = message.get("more_body", False)

    async def body(self, limit: int = DEFAULT_MAX_BODY) -> bytes:
        return b"".join([chunk async for chunk in self.chunks(limit)])

    async def json(self, root: str, *, required: bool = True) -> Any:
        raw = await self.body()
        if not raw.strip():
            if required:
                raise ApiError(
                    Code.INVALID_ARGUMENT,
                    f"Invalid JSON payload received. The request needs a '{root}' object.",
                    [FieldViolation(root, "Missing request body.")],
                )
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"Invalid JSON payload received. {exc}",
                [FieldViolation(root, "The body is not valid JSON.")],
            ) from None


def _length(reply: Reply) -> int:
    return reply.length if reply.stream is not None else len(reply.body)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        Code.INVALID_ARGUMENT,
        f"Request payload size exceeds the limit: {limit} bytes. Send fewer instances per request.",
    )


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking service call off the event loop."""
    return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    access: Access


class Router:
    """Routes `METHOD path` to handlers by regex; named groups become `Call.params`.

    Every route names its `Access` (the permission it needs, or that it is public), so a
    method cannot be added without deciding who may call it.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, access: Access) -> None:
        if not isinstance(access, Access):
            raise TypeError(f"{method} {template} must name its Access")
        # `{name}` matches one segment; `{name**}` matches the rest of a resource name.
        pattern = re.sub(r"\{(\w+)\*\*\}", r"(?P<\1>.+?)", template)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", pattern)
        self.routes.append(Route(method, template, re.compile(pattern), handler, access))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        path_known = False
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            path_known = True
        if path_known:
            raise ApiError(Code.NOT_FOUND, f"Method {method} is not allowed on {path}.")
        raise ApiError(Code.NOT_FOUND, f"No ml v1 method answers {method} {path}.")


class AsgiApp:
    """The ASGI application: routing, error rendering, lifespan."""

    def __init__(
        self,
        router: Router,
        gate: Gate,
        *,
        on_startup: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.router = router
        self.gate = gate
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route: Route | None = None
        call: Call | None = None
        failure: ApiError | None = None
        try:
            route, params = self.router.match(scope["method"], scope["path"])
            raw_headers = scope.get("headers") or ()
            call = Call(
                method=scope["method"],
                path=scope["path"],
                params=params,
                query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
                receive=receive,
                headers=dict(raw_headers),
            )
            check_single_headers(raw_headers)
            call.principal = await self._admit(route, call)
            reply = await route.handler(call)
        except ApiError as exc:
            failure = exc
            reply = Reply(exc.code.http_status, orjson.dumps(exc.to_error_body()))
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            error = ApiError(
                Code.INTERNAL,
                "Internal error in the Cairn server; see the server log for details.",
            )
            failure = error
            reply = Reply(500, orjson.dumps(error.to_error_body()))
        if route is not None and call is not None:
            await self._audit(route, call, failure)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", reply.content_type),
                    (b"content-length", str(_length(reply)).encode()),
                    *reply.headers,
                ],
            }
        )
        if reply.stream is None:
            await send({"type": "http.response.body", "body": reply.body})
            return
        async for chunk in reply.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _admit(self, route: Route, call: Call) -> Principal | None:
        self.gate.check_browser(call.method, call.headers, route.access)
        if route.access.public:
            return None
        token = bearer_token(call.headers, call.query)
        params = call.access_params
        target = f"{call.method} {call.path} {params.get('userProject', '')}"
        admitted = self.gate.admit_cached(token, target, route.access, params)
        if admitted is not None:
            return admitted
        principal: Principal = await in_thread(self.gate.authenticate, token)
        call.principal = principal  # known even if refused below, for the audit log
        await in_thread(self.gate.authorize, principal, route.access, params)
        return principal

    async def _audit(self, route: Route, call: Call, failure: ApiError | None) -> None:
        """Record mutating calls and every refused one (who, what, on which resource)."""
        access = route.access
        denied = failure is not None and failure.code in (
            Code.UNAUTHENTICATED,
            Code.PERMISSION_DENIED,
        )
        audited = access.audited if access.audited is not None else call.method != "GET"
        if not (audited or denied) or not self.gate.authentication:
            return
        params = call.access_params
        try:
            resource = access.resource(params) if access.resource else call.path
        except ApiError:
            resource = call.path  # the path named no valid resource (refused for that)
        try:
            await in_thread(
                self.gate.access.record,
                call.principal.member if call.principal else None,
                f"{call.method} {route.template}",
                resource,
                failure,
                access.permission_for(params),
            )
        except Exception:
            log.exception("could not write the audit log entry for %s %s", call.method, call.path)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._on_startup:
                        await in_thread(self._on_startup)
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_shutdown:
                    await in_thread(self._on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return
