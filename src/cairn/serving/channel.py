"""The server's side of a node connection: many concurrent requests multiplexed by id.

Runs on the ASGI server's event loop. Writing a frame and resolving a future per answer is
all the per-request work the server does; parsing and prediction happen in the node.
"""

from __future__ import annotations

import asyncio

from cairn.serving.framing import HEADER, FrameReader


class NodeGone(Exception):
    """The connection closed before the node answered (the node crashed or was stopped)."""


class NodeChannel(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(NodeGone())

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        for request_id, status, payload in self.reader.feed(data):
            future = pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result((status, payload))

    def request(self, kind: int, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one frame; the future gives (HTTP status, JSON body) or raises NodeGone."""
        future: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(NodeGone())
            return future
        self._next_id = request_id = (self._next_id + 1) & 0xFFFFFFFF
        self.pending[request_id] = future
        self.transport.write(HEADER.pack(len(body), request_id, kind) + body)
        return future

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
