"""A tiny real HTTP server on 127.0.0.1 that answers with canned, Google-shaped bodies.

It lets the client and CLI tests check exactly which requests go out and how every error
shape is parsed, without depending on the real server's behaviour.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    authorization: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeMl:
    """Answers queued per (method, path); a path with no answer left gets 404 NOT_FOUND."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)

    def answer(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.answers.setdefault((method, path), []).append((status, body))

    def next_answer(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.answers.get((method, path))
        if not queue:
            return 404, {
                "error": {"code": 404, "message": f"{path} unknown", "status": "NOT_FOUND"}
            }
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(fake: FakeMl) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = self.rfile.read(length)
            authorization = self.headers.get("Authorization")
            fake.requests.append(Request(self.command, parts.path, query, body, authorization))
            status, body = fake.next_answer(self.command, parts.path)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


FAKE_TOKEN = "fake-access-token"


@pytest.fixture(name="fake_ml")
def fake_ml_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMl]:
    """A fresh fake server per test (import `fake_ml_fixture` to use `fake_ml`).

    Clients get their access token from CAIRN_ACCESS_TOKEN, so they send exactly the
    requests under test and no credential search.
    """
    monkeypatch.setenv("CAIRN_ACCESS_TOKEN", FAKE_TOKEN)
    fake = FakeMl()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
