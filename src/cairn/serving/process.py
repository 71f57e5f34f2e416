"""One prediction node's OS process: start, handshake, warm-up, restart after a crash, stop.

The server keeps the write end of each node's stdin; the node exits when it reads EOF, so
nodes die with the server even after SIGKILL. With `run_as` the node runs as that
unprivileged user: loading a pickle runs user code. A supervisor thread restarts a node that
exits while it should be serving; requests wait for the restart instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import cairn
from cairn.executors import RunAs, user_code_environment
from cairn.executors.google_clients import SITE_DIR, google_client_env
from cairn.serving.framing import HEADER, PING, PREDICT, encode_frame

log = logging.getLogger(__name__)

MAX_RESTART_FAILURES = 5


class NodeStartError(Exception):
    """The node did not come up; the message says why (the loader's words or the log tail)."""


class Standby:
    """A started `cairn.serving.standby` process: frameworks imported, waiting for its node
    arguments. The server's interpreter only (a packageUris environment has its own)."""

    def __init__(self, log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        try:
            with log_path.open("ab") as log_file:
                self.process = subprocess.Popen(
                    # -P: the server's working directory is not searched for the preloads
                    # (they are imported as the server's user).
                    [sys.executable, "-P", "-m", "cairn.serving.standby"],
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    env=_node_environment(None),
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._lock = threading.Lock()
        self.read_fd = read_fd  # the handshake comes back here, as from a fresh node
        self.ready_fd = write_fd  # the same number in the standby (pass_fds keeps it)

    def alive(self) -> bool:
        return self.process.poll() is None

    def take_handshake_fd(self) -> int:
        """The handshake pipe, now the caller's to close (stop() no longer closes it)."""
        with self._lock:
            fd, self.read_fd = self.read_fd, -1
        return fd

    def stop(self) -> None:
        """End the process; safe to call twice (the pipe is closed once: a second close
        could hit a descriptor the number was reused for)."""
        _terminate(self.process, 1.0)
        fd = self.take_handshake_fd()
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class NodeProcess:
    def __init__(
        self,
        model_dir: Path,
        framework: str | None,
        socket_path: Path,
        log_path: Path,
        load_timeout_s: float,
        run_as: RunAs | None = None,
        *,
        python: str | None = None,
        prediction_class: str | None = None,
        index: int = 0,
        api_url: str | None = None,
    ) -> None:
        """`python`: the interpreter of the version's environment (its packageUris
        installed); None: the server's. `prediction_class`: a custom prediction routine.
        `index`: the node's number within its version (it names the log). `api_url`: the
        server, where the node's Google clients are pointed (docs/google_clients.md)."""
        self.index = index
        self.api_url = api_url
        self.model_dir = model_dir
        self.python = python or sys.executable
        self.prediction_class = prediction_class
        self.framework = framework
        self.socket_path = socket_path
        self.log_path = log_path
        self.load_timeout_s = load_timeout_s
        # The user the node runs as (None: the server's): the model is user code.
        self.run_as = run_as
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.stopping = False
        self.failure: str | None = None  # set when restarts gave up
        # Called (on the supervisor's thread) when a restart made the node ready again or
        # gave up: the manager wakes the requests waiting for it.
        self.on_change: Callable[[], None] | None = None
        self.restarts = 0
        self.handshake: dict[str, Any] = {}
        self.channel: Any = None  # NodeChannel of the event loop currently using this node
        # Kept by the manager on its event loop: routing and idle scale-down read them.
        self.in_flight = 0
        self.last_used = time.monotonic()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, standby: Standby | None = None) -> dict[str, Any]:
        """Spawn (or turn `standby` into this node), wait until the model is loaded and
        listening; NodeStartError otherwise."""
        self.handshake = self._spawn(standby)
        self.ready = True
        return self.handshake

    def served(self) -> None:
        """The node starts serving now: its idle time counts from here."""
        self.last_used = time.monotonic()

    def supervise(self) -> None:
        self._supervisor = threading.Thread(
            target=self._watch, name=f"node-supervisor:{self.socket_path.name}", daemon=True
        )
        self._supervisor.start()

    def stop(self, grace_s: float = 5.0) -> None:
        with self._lock:
            self.stopping = True
            self.ready = False
            process = self.process
        if process is not None:
            _terminate(process, grace_s)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def kill(self) -> None:
        """SIGKILL the current process (it is stuck); the supervisor starts a new one."""
        process = self.process
        if process is not None and process.poll() is None:
            self.ready = False  # requests wait for the restart instead of reconnecting now
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- warm-up (blocking; deploy runs in a worker thread) ----------------------------------

    def call_blocking(self, kind: int, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """One request over a fresh connection, without an event loop."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(str(self.socket_path))
            conn.sendall(encode_frame(1, kind, body))
            header = _recv_exactly(conn, HEADER.size)
            length, _, status = HEADER.unpack(header)
            return status, _recv_exactly(conn, length)

    def warm_up(self, timeout_s: float) -> None:
        """Answer one synthetic prediction (or a ping when the model's inputs are unknown)."""
        instances = self.handshake.get("warmup")
        if instances is None:
            status, body = self.call_blocking(PING, b"", timeout_s)
        else:
            request = orjson.dumps({"instances": instances})
            status, body = self.call_blocking(PREDICT, request, timeout_s)
        if status != 200:
            try:
                detail = orjson.loads(body).get("error", body.decode())
            except (orjson.JSONDecodeError, AttributeError):
                detail = body.decode(errors="replace")
            raise NodeStartError(f"The model loaded but a warm-up prediction failed: {detail}")

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, standby: Standby | None = None) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            self.run_as.open_the_way()
        if standby is not None and self.python != sys.executable:
            standby.stop()  # it runs the server's interpreter, not this version's
            standby = None
        # Launched under the lock stop() takes: a node stopped before this point never
        # starts (its uid may be freed right after stop returns), and one stopped after it
        # is ended by stop itself.
        with self._lock:
            if self.stopping:
                if standby is not None:
                    standby.stop()
                raise NodeStartError("The prediction node was stopped before it started.")
            process, read_fd = self._launch(standby)
            self.process = process
        try:
            message = _read_handshake(read_fd, process, self.load_timeout_s)
        finally:
            os.close(read_fd)
        if message is None or not message.get("ok"):
            _terminate(process, 1.0)
            raise NodeStartError(self._failure_text(message, process))
        return message

    def _launch(self, standby: Standby | None) -> tuple[subprocess.Popen[bytes], int]:
        """The node's process and the read end of its handshake pipe: `standby` turned
        into this node, else (none, or it is gone) a fresh interpreter."""
        if standby is not None and self._assign(standby):
            return standby.process, standby.take_handshake_fd()
        read_fd, write_fd = os.pipe()
        try:
            with self.log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    self._command(write_fd),
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    env=_node_environment(self.run_as, self.api_url),
                    **(self.run_as.popen_options() if self.run_as is not None else {}),
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return process, read_fd

    def _assign(self, standby: Standby) -> bool:
        """Hand the standby this node's arguments; False if it is gone (spawn instead)."""
        env = _node_environment(self.run_as, self.api_url)
        assignment = {
            "argv": self._arguments(standby.ready_fd),
            "env": env,
            "log": str(self.log_path),
            "uid": self.run_as.uid if self.run_as is not None else None,
            "gid": self.run_as.gid if self.run_as is not None else None,
        }
        stdin = standby.process.stdin
        if not standby.alive() or stdin is None:
            standby.stop()
            return False
        try:
            stdin.write(orjson.dumps(assignment) + b"\n")
            stdin.flush()
        except OSError:
            standby.stop()
            return False
        return True

    def _command(self, ready_fd: int) -> list[str]:
        # -P: the server's working directory is not put on sys.path (a module planted
        # there would shadow the frameworks the node imports).
        return [self.python, "-P", "-m", "cairn.serving.node", *self._arguments(ready_fd)]

    def _arguments(self, ready_fd: int) -> list[str]:
        return [
            "--model-dir",
            str(self.model_dir),
            "--framework",
            self.framework or "",
            "--socket",
            str(self.socket_path),
            "--ready-fd",
            str(ready_fd),
            "--prediction-class",
            self.prediction_class or "",
        ]

    def _failure_text(
        self, message: dict[str, Any] | None, process: subprocess.Popen[bytes]
    ) -> str:
        if message is not None and message.get("error"):
            return str(message["error"])
        if process.poll() is None:
            return (
                f"The prediction node did not finish loading the model within "
                f"{self.load_timeout_s:.0f} s; see {self.log_path}."
            )
        tail = _tail(self.log_path)
        return (
            f"The prediction node exited with code {process.returncode} while loading the "
            f"model. Last lines of {self.log_path}:\n{tail}"
        )

    def _watch(self) -> None:
        failures = 0
        while True:
            process = self.process
            if process is None:
                return
            code = process.wait()
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if self.stopping:
                return
            self.ready = False
            self.restarts += 1
            log.warning("prediction node %s exited with %s; restarting", self.socket_path, code)
            while not self.stopping:
                try:
                    self.handshake = self._spawn()
                    self.ready = not self.stopping
                    failures = 0
                    self._changed()
                    break
                except (NodeStartError, OSError) as error:
                    failures += 1
                    if failures >= MAX_RESTART_FAILURES:
                        self.failure = f"The prediction node could not be restarted: {error}"
                        log.error("%s", self.failure)
                        self._changed()
                        return
                    time.sleep(min(0.2 * 2**failures, 5.0))
            if self.stopping and self.process is not None:
                _terminate(self.process, 1.0)
                return

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # waiters also poll; never kill the supervisor
                log.exception("notifying about node %s failed", self.socket_path)


def _node_environment(run_as: RunAs | None, api_url: str | None = None) -> dict[str, str]:
    env = user_code_environment()
    if run_as is not None:
        env = run_as.environment(env)
    if api_url is not None:  # Google's clients in prediction routines reach this server
        env = google_client_env(api_url, env)
    source_root = str(Path(cairn.__file__).resolve().parents[1])
    # The Google client hook is on every node's path, the standby's too (it reads the
    # endpoint variables when a client is made, after the standby gets its node's env).
    inherited = filter(None, env.get("PYTHONPATH", "").split(os.pathsep))
    paths = [str(SITE_DIR), source_root, *inherited]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _read_handshake(
    fd: int, process: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any] | None:
    """The node's one JSON line, or None if it exits or times out first."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not readable:
            if process.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    try:
        message = orjson.loads(data.split(b"\n", 1)[0])
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the prediction node closed the connection")
        chunks += chunk
    return bytes(chunks)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
