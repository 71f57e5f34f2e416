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

from cairn.domain.errors import ApiError, Code, FieldViolation, invalid_field
from cairn.services.records import ListRequest

log = logging.getLogger(__name__)

JSON = b"application/json; charset=UTF-8"
DEFAULT_MAX_BODY = 32 * 1024 * 1024


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: bytes = JSON

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
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Routes `METHOD path` to handlers by regex; named groups become `Call.params`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        # `{name}` matches one segment; `{name**}` matches the rest of a resource name.
        pattern = re.sub(r"\{(\w+)\*\*\}", r"(?P<\1>.+?)", template)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", pattern)
        self.routes.append(Route(method, re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_known = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route.handler, found.groupdict()
            path_known = True
        if path_known:
            raise ApiError(Code.NOT_FOUND, f"Method {method} is not allowed on {path}.")
        raise ApiError(Code.NOT_FOUND, f"No ml v1 method answers {method} {path}.")


class AsgiApp:
    """The ASGI application: routing, error rendering, lifespan."""

    def __init__(
        self,
        router: Router,
        *,
        on_startup: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.router = router
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            handler, params = self.router.match(scope["method"], scope["path"])
            call = Call(
                method=scope["method"],
                path=scope["path"],
                params=params,
                query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
                receive=receive,
                headers=dict(scope.get("headers") or ()),
            )
            reply = await handler(call)
        except ApiError as exc:
            reply = Reply(exc.code.http_status, orjson.dumps(exc.to_error_body()))
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            error = ApiError(
                Code.INTERNAL,
                "Internal error in the Cairn server; see the server log for details.",
            )
            reply = Reply(500, orjson.dumps(error.to_error_body()))
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", reply.content_type),
                    (b"content-length", str(len(reply.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

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
