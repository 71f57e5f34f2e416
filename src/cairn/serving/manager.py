"""ServingManager: deploys versions into node processes and forwards predictions to them.

User models never load into the server: each deployed version runs in node process(es) of
its own, reached over a Unix socket with length-prefixed frames. The server's per-request
work is one frame write and one future; a node that crashes is restarted by its supervisor
while in-flight requests get a 503 and later ones wait for the restart.

With `identities` (a root server), each deployed version's nodes run as a uid of its own:
loading a model runs user code (unpickling). The version's uid owns a socket directory of
its own (`sockets/<uid>/`, 0700), so no other version's nodes, nor any job, can connect to
its nodes; the server, as root, connects regardless. The uid is freed (after ending
whatever still runs as it) when the version is undeployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from cairn.domain.errors import ApiError, Code, not_found
from cairn.executors import RunAs, UidAllocator
from cairn.executors.acl import SEARCH, grant_group
from cairn.serving.channel import NodeChannel, NodeGone, NodeTimedOut
from cairn.serving.frameworks import detect_framework, normalize_framework
from cairn.serving.framing import PING, PREDICT
from cairn.serving.process import NodeProcess, NodeStartError
from cairn.serving.responses import error_body

UNAVAILABLE = 503
TIMED_OUT = 504
_MAX_UNIX_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin
_SOCKET_NAME_CHARS = 20  # "/<12 hex digits>-<index>.sock"
_UID_DIR_CHARS = 11  # "/<uid>" with a uid of up to ten digits
# A version's uid is allocated under this prefix plus its key.
_VERSION_OWNER = "versions/"


@dataclass(frozen=True)
class DeployResult:
    framework: str  # "SCIKIT_LEARN" | "XGBOOST" | "TENSORFLOW"
    nodes: int = 1
    pids: tuple[int, ...] = ()


@dataclass
class _Deployment:
    key: str
    framework: str
    nodes: list[NodeProcess]
    connect_locks: dict[int, asyncio.Lock] = field(default_factory=dict)


class ServingManager:
    """Owns every prediction node of one server process."""

    def __init__(
        self,
        run_root: Path,
        *,
        identities: UidAllocator | None = None,
        load_timeout_s: float = 300.0,
        restart_wait_s: float = 60.0,
        request_timeout_s: float = 60.0,
    ) -> None:
        """`identities`: where each version's uid comes from (None: nodes run as this
        process's user)."""
        self.run_root = Path(run_root)
        self.request_timeout_s = request_timeout_s
        self.load_timeout_s = load_timeout_s
        self.restart_wait_s = restart_wait_s
        self._identities = identities
        self._deployments: dict[str, _Deployment] = {}
        self._lock = threading.Lock()
        self._socket_dir = self._make_socket_dir()
        if identities is not None:
            # Versions a previous server served: their nodes ended with it (or end now).
            for owner in identities.owners(_VERSION_OWNER):
                identities.release(owner)
            # Every node may pass through to its version's socket directory, no further.
            if self._socket_dir.parent == self.run_root:
                grant_group(self.run_root, identities.base.gid, SEARCH)
            grant_group(self._socket_dir, identities.base.gid, SEARCH)
        # Stop nodes even if the owner forgets shutdown(); nodes also exit on their own
        # when this process dies (their stdin closes).
        self._finalizer = weakref.finalize(
            self,
            _stop_all,
            self._deployments,
            self._socket_dir,
            self._owns_socket_dir,
            identities,
        )

    # -- deploy / undeploy (blocking; call from a worker thread) ------------------------------

    def deploy(
        self, key: str, model_dir: Path, framework: str | None, *, nodes: int = 1
    ) -> DeployResult:
        """Start `nodes` node processes for `key`, load and warm them up, then serve them.

        Replaces an existing deployment of the same key only once the new one is ready.
        """
        if nodes < 1:
            raise ApiError(Code.INVALID_ARGUMENT, "A version needs at least one node.")
        model_dir = Path(model_dir)
        chosen = normalize_framework(framework) or detect_framework(model_dir)
        started: list[NodeProcess] = []
        try:
            for index in range(nodes):
                node = self._new_node(key, index, model_dir, chosen)
                started.append(node)
                node.start()
                node.warm_up(timeout_s=self.load_timeout_s)
        except (NodeStartError, OSError) as error:
            for node in started:
                node.stop(grace_s=1.0)
            self._release_unless_deployed(key)
            raise ApiError(Code.FAILED_PRECONDITION, str(error)) from None
        except BaseException:
            for node in started:
                node.stop(grace_s=1.0)
            self._release_unless_deployed(key)
            raise
        framework_loaded = str(started[0].handshake.get("framework") or chosen)
        for node in started:
            node.supervise()
        with self._lock:
            previous = self._deployments.get(key)
            self._deployments[key] = _Deployment(key, framework_loaded, started)
        if previous is not None:
            _stop_nodes(previous.nodes)
        pids = tuple(node.pid for node in started if node.pid is not None)
        return DeployResult(framework=framework_loaded, nodes=nodes, pids=pids)

    def undeploy(self, key: str) -> None:
        with self._lock:
            deployment = self._deployments.pop(key, None)
        if deployment is not None:
            _stop_nodes(deployment.nodes)
        self._release_unless_deployed(key)

    def is_deployed(self, key: str) -> bool:
        return key in self._deployments

    def deployed_keys(self) -> list[str]:
        return sorted(self._deployments)

    def node_pids(self, key: str) -> list[int]:
        """PIDs of the key's node processes (for monitoring and tests)."""
        deployment = self._deployments.get(key)
        if deployment is None:
            raise not_found(f"Version {key}")
        return [node.pid for node in deployment.nodes if node.pid is not None]

    def shutdown(self) -> None:
        """Stop every node; nothing is left running."""
        self._finalizer()

    # -- predict (on the server's event loop) ------------------------------------------------

    async def predict(self, key: str, body: bytes) -> tuple[int, bytes]:
        """Forward a raw predict body; (200, predictions) or (400/503, {"error": ...})."""
        deployment = self._deployments.get(key)
        if deployment is None:
            raise not_found(f"Version {key}")
        node = _least_busy(deployment.nodes)
        channel = node.channel
        if not _usable(channel, asyncio.get_running_loop()):
            connected = await self._connect(deployment, node)
            if isinstance(connected, tuple):
                return connected
            channel = connected
        try:
            return await channel.request(PREDICT, body)
        except NodeGone:
            if node.stopping:
                message = f"Version {key} was undeployed while answering; retry later."
            else:
                message = (
                    f"The prediction node of {key} stopped while answering this request; it "
                    "is being restarted. Retry the request."
                )
            return UNAVAILABLE, error_body(message)
        except NodeTimedOut:
            return TIMED_OUT, error_body(
                f"Prediction failed: the model of {key} did not answer within "
                f"{self.request_timeout_s:g} s; its node is being restarted. Check the model "
                "(see the node log) or send fewer instances per request."
            )

    async def _connect(
        self, deployment: _Deployment, node: NodeProcess
    ) -> NodeChannel | tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        lock = deployment.connect_locks.get(id(loop))
        if lock is None:
            lock = deployment.connect_locks[id(loop)] = asyncio.Lock()
        async with lock:
            channel = node.channel
            if _usable(channel, loop):
                return channel  # type: ignore[no-any-return]
            if channel is not None and channel.loop is loop:
                channel.close()  # its node is gone; requests in flight on it fail with it
            deadline = time.monotonic() + self.restart_wait_s
            while True:
                if node.stopping:
                    return UNAVAILABLE, error_body(
                        f"Version {deployment.key} is being undeployed; retry later."
                    )
                if node.failure is not None:
                    return UNAVAILABLE, error_body(node.failure)
                if node.ready:
                    try:
                        _, protocol = await loop.create_unix_connection(
                            lambda: NodeChannel(self.request_timeout_s, node.kill),
                            str(node.socket_path),
                        )
                        # A node killed a moment ago may still accept; prove it answers.
                        await protocol.request(PING, b"")
                        node.channel = protocol
                        return protocol
                    except (OSError, NodeGone, NodeTimedOut):
                        pass  # restarting: the socket is not there yet
                if time.monotonic() > deadline:
                    return UNAVAILABLE, error_body(
                        f"The prediction node of {deployment.key} is not ready yet; retry later."
                    )
                await asyncio.sleep(0.02)

    # -- internals ---------------------------------------------------------------------------

    def _new_node(self, key: str, index: int, model_dir: Path, framework: str) -> NodeProcess:
        digest = hashlib.sha1(f"{key}|{time.time_ns()}".encode()).hexdigest()[:12]
        slug = key.strip("/").replace("/", "_")[-80:]
        run_as = self._version_identity(key)
        return NodeProcess(
            model_dir=model_dir,
            framework=framework,
            socket_path=self._node_socket_dir(run_as) / f"{digest}-{index}.sock",
            log_path=self.run_root / "logs" / f"{slug}-node{index}.log",
            load_timeout_s=self.load_timeout_s,
            run_as=run_as,
        )

    def _version_identity(self, key: str) -> RunAs | None:
        """The version's own uid (the same for all its nodes, rescales included)."""
        if self._identities is None:
            return None
        return self._identities.allocate(_VERSION_OWNER + key)

    def _node_socket_dir(self, run_as: RunAs | None) -> Path:
        """Where a node binds its socket: a directory its version's uid alone may enter."""
        if run_as is None:
            return self._socket_dir
        directory = self._socket_dir / str(run_as.uid)
        directory.mkdir(exist_ok=True)
        run_as.give(directory, 0o700)
        return directory

    def _release_unless_deployed(self, key: str) -> None:
        with self._lock:
            if key in self._deployments:
                return  # a failed rescale: the old nodes serve on, as the same uid
        _release_version(self._identities, self._socket_dir, key)

    def _make_socket_dir(self) -> Path:
        preferred = self.run_root / "sockets"
        room = _SOCKET_NAME_CHARS + (_UID_DIR_CHARS if self._identities is not None else 0)
        if len(str(preferred)) + room <= _MAX_UNIX_PATH:
            preferred.mkdir(parents=True, exist_ok=True)
            if self._identities is not None:
                # The server's (a home from when all nodes ran as one user gave it to that user).
                os.chown(preferred, os.geteuid(), os.getegid(), follow_symlinks=False)
            preferred.chmod(0o700)
            self._owns_socket_dir = False
            return preferred
        self.run_root.mkdir(parents=True, exist_ok=True)
        self._owns_socket_dir = True
        return Path(tempfile.mkdtemp(prefix="cairn-serving-"))


def _usable(channel: NodeChannel | None, loop: asyncio.AbstractEventLoop) -> bool:
    """A connection of this event loop to a node that is still there."""
    return channel is not None and channel.loop is loop and not channel.peer_gone()


def _least_busy(nodes: list[NodeProcess]) -> NodeProcess:
    """The serving node with the fewest requests in flight; a restarting node only if all are."""
    if len(nodes) == 1:
        return nodes[0]
    up = [n for n in nodes if n.ready and not n.stopping and n.failure is None] or nodes
    return min(up, key=lambda n: len(n.channel.pending) if n.channel is not None else 0)


def _stop_nodes(nodes: list[NodeProcess]) -> None:
    for node in nodes:
        node.stopping = True  # stop supervisors from restarting siblings mid-shutdown
    for node in nodes:
        node.stop()


def _release_version(identities: UidAllocator | None, socket_dir: Path, key: str) -> None:
    """Free the version's uid (ending whatever still runs as it) and its socket directory."""
    if identities is None:
        return
    uid = identities.release(_VERSION_OWNER + key)
    if uid is not None:
        shutil.rmtree(socket_dir / str(uid), ignore_errors=True)


def _stop_all(
    deployments: dict[str, _Deployment],
    socket_dir: Path,
    owns_dir: bool,
    identities: UidAllocator | None,
) -> None:
    while deployments:
        key, deployment = deployments.popitem()
        _stop_nodes(deployment.nodes)
        _release_version(identities, socket_dir, key)
    if owns_dir:
        with contextlib.suppress(OSError):
            shutil.rmtree(socket_dir)
