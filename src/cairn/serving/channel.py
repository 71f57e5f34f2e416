"""The server's side of a node connection: many concurrent requests multiplexed by id.

Runs on the ASGI server's event loop. Queueing a frame and resolving a future per answer is
all the per-request work the server does; parsing and prediction happen in the node. The
frames of requests that arrive in the same turn of the loop go out in one write, at the
turn's end: one system call and one wake-up of the node for all of them, which the node
then answers with one model call.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

from cairn.serving.framing import HEADER, FrameReader

_WATCH_EVERY_S = 1.0


class NodeGone(Exception):
    """The connection closed before the node answered (the node crashed or was stopped)."""


class NodeTimedOut(Exception):
    """The node did not answer within the request timeout."""


Pending = tuple["asyncio.Future[tuple[int, bytes]]", float]


class NodeChannel(asyncio.Protocol):
    """Requests in flight are checked once a second; any older than `timeout_s` fail with
    NodeTimedOut and `on_timeout` runs (the manager kills the stuck node to restart it)."""

    def __init__(
        self, timeout_s: float = 60.0, on_timeout: Callable[[], None] | None = None
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, Pending] = {}
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self._next_id = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._probe: socket.socket | None = None
        self._outbox: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._watchdog = self.loop.call_later(_WATCH_EVERY_S, self._expire_old_requests)
        # A handle of our own on the connection's socket, to peek at it (`peer_gone`); the
        # transport's socket object cannot receive under uvloop.
        transport_socket = transport.get_extra_info("socket")
        if transport_socket is not None:
            self._probe = socket.socket(fileno=os.dup(transport_socket.fileno()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._probe is not None:
            self._probe.close()
        pending, self.pending = self.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(NodeGone())

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        for request_id, status, payload in self.reader.feed(data):
            entry = pending.pop(request_id, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result((status, payload))

    def _expire_old_requests(self) -> None:
        if self.closed:
            return
        oldest_allowed = time.monotonic() - self.timeout_s
        expired = [rid for rid, (_, sent) in self.pending.items() if sent < oldest_allowed]
        for request_id in expired:
            future, _ = self.pending.pop(request_id)
            if not future.done():
                future.set_exception(NodeTimedOut())
        if expired:
            if self.on_timeout is not None:
                self.on_timeout()
            # The node is being replaced: no new request may use this connection.
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self._watchdog = self.loop.call_later(_WATCH_EVERY_S, self._expire_old_requests)

    def peer_gone(self) -> bool:
        """True when the connection is closed, or the node hung up without the loop having
        noticed yet: a node killed a moment ago must not take a request sent after its death
        down with it, so the caller reconnects (to its restart) instead of sending here."""
        if self.closed or self._probe is None:
            return self.closed
        try:
            peeked = self._probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False  # open, nothing to read: the node is there
        except OSError:
            return True  # reset by the peer
        return peeked == b""  # end of file: the node closed its end

    def request(self, kind: int, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one frame; the future gives (HTTP status, JSON body) or raises NodeGone."""
        future: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(NodeGone())
            return future
        self._next_id = request_id = (self._next_id + 1) & 0xFFFFFFFF
        self.pending[request_id] = (future, time.monotonic())
        if not self._outbox:
            self.loop.call_soon(self._flush)
        self._outbox.append(HEADER.pack(len(body), request_id, kind))
        self._outbox.append(body)
        return future

    def _flush(self) -> None:
        frames, self._outbox = self._outbox, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(frames))

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
