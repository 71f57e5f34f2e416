"""The wire between the server and a prediction node: length-prefixed frames on a Unix socket.

A frame is a 12-byte little-endian header (payload length, request id, kind or HTTP status)
followed by the payload: the raw request body going in, the JSON answer coming back. Request
ids let one connection carry many concurrent requests, so the node sees them together and
can answer them with one model call.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<III")
PREDICT = 0
PING = 1

Frame = tuple[int, int, bytes]  # (request id, kind or status, payload)


def encode_frame(request_id: int, kind_or_status: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), request_id, kind_or_status) + payload


class FrameReader:
    """Reassembles frames from stream chunks."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        position = 0
        size = HEADER.size
        available = len(buffer)
        while available - position >= size:
            length, request_id, kind = HEADER.unpack_from(buffer, position)
            end = position + size + length
            if end > available:
                break
            frames.append((request_id, kind, bytes(buffer[position + size : end])))
            position = end
        if position:
            del buffer[:position]
        return frames
