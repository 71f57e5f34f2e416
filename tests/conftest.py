"""Fixtures shared by every test folder: a real Cairn server on loopback, and real clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.remote import access_token, free_port, ml_client, owner_credentials

VENV_BIN = Path(sys.executable).parent
CAIRN = str(VENV_BIN / "cairn")


@dataclass
class RunningServer:
    """A `cairn server` subprocess; `restart()` keeps its home, like a real restart."""

    home: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    _token: tuple[str, float] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home.parent / f"{self.home.name}-server.log"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "CAIRN_HOME": str(self.home), **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [CAIRN, "server", "--home", str(self.home), "--port", str(self.port), *self.extra_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cairn server exited early:\n{self.log_path.read_text()}")
            try:
                httpx.get(f"{self.url}/v1/projects/probe:getConfig", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(
            f"cairn server did not answer in {timeout}s:\n{self.log_path.read_text()}"
        )

    def stop(self) -> None:
        """Graceful stop (SIGTERM), as Ctrl-C would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """A crash: SIGKILL the server process alone (its children live on)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self._token = None
        self.start()

    def headers(self) -> dict[str, str]:
        """Headers that authenticate a raw HTTP request to this server (as its owner)."""
        if self._token is None or self._token[1] < time.monotonic():
            self._token = (access_token(self.home), time.monotonic() + 1800)
        return {"Authorization": f"Bearer {self._token[0]}"}

    def credentials(self):  # type: ignore[no-untyped-def]
        """The owner's google-auth credentials (refreshed by the client as needed)."""
        return owner_credentials(self.home)

    def client(self):  # type: ignore[no-untyped-def]
        """googleapiclient's ml v1 client, signed in as the owner."""
        return ml_client(self.url, self.credentials())

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[RunningServer]]:
    """Factory for servers of one's own (for restart tests); all stopped at the end."""
    started: list[RunningServer] = []

    def make(**kwargs: object) -> RunningServer:
        home = tmp_path_factory.mktemp("cairn-home")
        server = RunningServer(home=home, **kwargs)  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def cairn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server shared by the session's API and CLI tests (each test uses its own names)."""
    server = RunningServer(home=tmp_path_factory.mktemp("cairn-shared-home"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ml(cairn_server: RunningServer):  # type: ignore[no-untyped-def]
    return cairn_server.client()
