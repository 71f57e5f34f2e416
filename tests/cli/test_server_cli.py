"""`cairn server` start-up and exit, with real server processes: lock and port first,
"listening" only once it answers, one clear line for what stops it, no stale PID left."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import CAIRN
from tests.remote import free_port

from cairn.config import Settings
from cairn.executors import RunAs, ensure_user
from cairn.isolation import paths_user_code_needs

REPO = Path(__file__).resolve().parents[2]
LISTENING = "Cairn server listening on"
# A graceful stop by SIGTERM: uvicorn ends the process with the signal it was stopped by.
STOPPED = (0, -signal.SIGTERM)


class ServerProcess:
    """A `cairn server` whose stderr is read line by line as it comes."""

    def __init__(
        self,
        home: Path,
        port: int,
        *options: str,
        wrap: list[str] | None = None,
        user: RunAs | None = None,
    ) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [*(wrap or []), CAIRN, "server", "--home", str(home), "--port", str(port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=user.environment(os.environ) if user else None,
            **(user.popen_options() if user else {}),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"the server ended without saying {text!r}: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the process to end; returns its exit code with every stderr line read."""
        code = self.process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def start(
    servers: list[ServerProcess], home: Path, port: int, *options: str, **keywords: Any
) -> ServerProcess:
    server = ServerProcess(home, port, *options, **keywords)
    servers.append(server)
    return server


def assert_one_clear_error(server: ServerProcess, expected: str) -> None:
    assert server.finish() == 1
    assert server.lines and expected in server.lines[-1], server.lines
    assert server.lines[-1].startswith("ERROR: (cairn.server) ")
    text = "\n".join(server.lines)
    assert "Traceback" not in text
    assert LISTENING not in text


def test_listening_is_announced_once_the_server_answers_and_the_pid_leaves_on_exit(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = start(servers, home, free_port())
    server.wait_for_line(LISTENING)
    # No retry: the moment the line appears, a request is answered.
    response = httpx.get(f"http://127.0.0.1:{server.port}/v1/projects/p:getConfig", timeout=10)
    assert response.status_code < 500
    assert (home / "server.lock").read_text() == str(server.process.pid)

    server.stop()
    assert server.process.returncode in STOPPED
    assert (home / "server.lock").read_text() == ""  # no stale PID for `make stop` to hit


def test_a_busy_port_is_one_clear_error(servers: list[ServerProcess], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start(servers, tmp_path / "home", port)
        assert_one_clear_error(server, f"Port {port} on 127.0.0.1 is already in use")
    assert (tmp_path / "home" / "server.lock").read_text() == ""


def test_a_second_server_on_the_same_home_is_refused_before_touching_it(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first = start(servers, home, free_port())
    first.wait_for_line(LISTENING)
    second = start(servers, home, free_port())
    assert_one_clear_error(second, f"Another Cairn server is already using {home}")
    assert (home / "server.lock").read_text() == str(first.process.pid)
    response = httpx.get(f"http://127.0.0.1:{first.port}/v1/projects/p:getConfig", timeout=10)
    assert response.status_code < 500


def test_an_unwritable_home_is_one_clear_error(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if os.geteuid() != 0:
        home.chmod(0o555)
        server = start(servers, home, free_port())
        assert_one_clear_error(server, f"Cannot use {home} as Cairn's home: Permission denied")
        return
    # Root writes through any permission: give it a read-only file system instead.
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {home}"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here: {probe.stderr.decode()}")
    wrap = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        f'mount -t tmpfs -o ro tmpfs {home} && exec "$@"',
        "-",
    ]
    server = start(servers, home, free_port(), wrap=wrap)
    assert_one_clear_error(server, f"Cannot use {home} as Cairn's home: Read-only file system")


def test_start_up_says_whether_user_code_runs_as_an_unprivileged_user(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = start(servers, tmp_path / "home", free_port())
    server.wait_for_line(LISTENING)
    warnings = [line for line in server.lines if "cannot switch users" in line]
    assert len(warnings) == (0 if os.geteuid() == 0 else 1), server.lines


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")
def test_a_missing_run_as_user_is_one_clear_error(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = start(servers, tmp_path / "home", free_port(), "--run-as-user", "no-such-user")
    assert_one_clear_error(server, "The run-as user 'no-such-user' does not exist.")


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a server as another user needs root")
def test_a_server_that_is_not_root_warns_once_that_it_cannot_switch_users(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(home=home)
    user = replace(ensure_user(None), reaches=paths_user_code_needs(settings))
    user.open_the_way()
    user.give(home)
    server = start(servers, home, free_port(), user=user)
    server.wait_for_line(LISTENING)
    warnings = [line for line in server.lines if "cannot switch users" in line]
    assert len(warnings) == 1, server.lines
    assert (
        warnings[0].startswith("Warning: Cairn is not running as root") and user.name in warnings[0]
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_stop_ends_only_a_cairn_server_of_that_home(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stranger = subprocess.Popen(["sleep", "600"])
    try:
        (home / "server.lock").write_text(str(stranger.pid))  # a stale PID, now someone else's
        stop = subprocess.run(
            ["make", "-s", "-C", str(REPO), "stop", f"DEMO_HOME={home}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "No demo server is running." in stop.stdout
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()

    server = start(servers, home, free_port())
    server.wait_for_line(LISTENING)
    stop = subprocess.run(
        ["make", "-s", "-C", str(REPO), "stop", f"DEMO_HOME={home}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Stopped the demo server." in stop.stdout
    assert server.finish() in STOPPED


def test_a_googleapiclient_connection_left_idle_still_works(start_server: Any) -> None:
    server = start_server()
    ml = server.client()
    ml.projects().getConfig(name="projects/idle").execute()
    time.sleep(6)  # longer than uvicorn's default keep-alive, which closed it under the client
    created = ml.projects().models().create(parent="projects/idle", body={"name": "m"}).execute()
    assert created["name"] == "projects/idle/models/m"
