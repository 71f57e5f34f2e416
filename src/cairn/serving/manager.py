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

Scaling (docs/serving.md, "Scaling"): a deployment keeps between `low` and `high` nodes
(equal for a fixed count). A request goes to the first node, in start order, with fewer than
`target_in_flight` requests in flight, so light traffic stays on one node and is batched
there; only when every node is at the target does it go to the least busy one, and an
autoscaled deployment starts nodes up to ceil((in flight + 1) / target), at most `high`. A
node beyond `low` that had no request for `idle_seconds` stops (the last started first). A
deployment with no node left starts one for the next request, which waits for it (a cold
start; a standby interpreter with the frameworks imported makes it fast, see
serving/standby.py). When every node holds `max_in_flight_per_node` requests (restarting
nodes included) and no more may start, the request is refused with 429 RESOURCE_EXHAUSTED
instead of queueing without bound. Held requests wake when a node becomes ready or a request
finishes (`_Wakeup`), with a slow poll as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
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
from cairn.serving.process import NodeProcess, NodeStartError, Standby
from cairn.serving.responses import error_body

log = logging.getLogger(__name__)

UNAVAILABLE = 503
TIMED_OUT = 504
_MAX_UNIX_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin
_SOCKET_NAME_CHARS = 20  # "/<12 hex digits>-<index>.sock"
_UID_DIR_CHARS = 11  # "/<uid>" with a uid of up to ten digits
# A version's uid is allocated under this prefix plus its key.
_VERSION_OWNER = "versions/"
# A held request re-checks at least this often even when nothing wakes it.
_HOLD_POLL_S = 0.25
# Routing attempts of one request when its node is scaled down under it.
_ROUTE_ATTEMPTS = 3


@dataclass(frozen=True)
class DeployResult:
    framework: str  # "SCIKIT_LEARN" | "XGBOOST" | "TENSORFLOW"
    nodes: int = 1
    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class NodeRange:
    """An autoscaled version's bounds: `low` may be 0 (scale to zero when idle)."""

    low: int
    high: int


@dataclass(frozen=True)
class ScalingPolicy:
    """How every deployment of one manager routes, grows, shrinks and refuses."""

    # Requests in flight a node takes before the next node gets any (and before an
    # autoscaled version grows): high enough for cross-request batching in the node.
    target_in_flight: int = 8
    # A node beyond the version's floor that answered nothing for this long stops.
    idle_seconds: float = 120.0
    # Requests one node holds at most; past it (and at the ceiling) the answer is 429.
    # (The server's values come from Settings, which checks them.)
    max_in_flight_per_node: int = 512


class _Wakeup:
    """Wakes the requests a deployment holds, on whatever event loop each waits, when a
    node becomes ready, a start ends or a request finishes; callable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def register(self) -> asyncio.Event:
        """An event of the running loop, set on every notify() until discard()."""
        event = asyncio.Event()
        with self._lock:
            self._events.append((asyncio.get_running_loop(), event))
        return event

    def discard(self, event: asyncio.Event) -> None:
        with self._lock:
            self._events = [(loop, e) for loop, e in self._events if e is not event]

    def notify(self) -> None:
        with self._lock:
            events = list(self._events)
        for loop, event in events:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)


async def _pause(event: asyncio.Event, deadline: float) -> None:
    """Until `event` is set, the poll interval passes or the deadline comes."""
    timeout = min(_HOLD_POLL_S, max(deadline - time.monotonic(), 0.0))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    event.clear()


@dataclass
class _Deployment:
    key: str
    framework: str
    nodes: list[NodeProcess]  # serving nodes in start order; replaced, never mutated in place
    model_dir: Path
    python: str | None = None
    prediction_class: str | None = None
    low: int = 1
    high: int = 1
    autoscaled: bool = False  # autoScaling (maxNodes) rather than a fixed node count
    starting: int = 0  # nodes counted as being started in the background
    waiting: int = 0  # requests held for a node to start
    start_error: str | None = None  # why the last background start failed
    start_failures: int = 0  # background starts failed in a row (repairs back off)
    repair_after: float = 0.0  # monotonic time before which no repair start is tried
    cold_starts: int = 0
    last_cold_start_s: float | None = None
    retired: bool = False  # undeployed or replaced: started nodes must not join it
    # Nodes being started: undeploy stops them too before the version's uid is freed.
    pending: set[NodeProcess] = field(default_factory=set)
    wakeup: _Wakeup = field(default_factory=_Wakeup)
    connect_locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    def free_index(self) -> int:
        """The lowest node index not in use (it names the node's log file); call locked."""
        used = {node.index for node in self.nodes} | {node.index for node in self.pending}
        return next(i for i in range(len(used) + 1) if i not in used)

    def all_nodes(self) -> list[NodeProcess]:
        """Serving and pending nodes; call locked."""
        return [*self.nodes, *self.pending]


class _NodeRetired(Exception):
    """The routed node was scaled down (or its deployment replaced) before the request
    reached it: route again."""


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
        scaling: ScalingPolicy | None = None,
        api_url: str | None = None,
    ) -> None:
        """`identities`: where each version's uid comes from (None: nodes run as this
        process's user). `api_url`: the server, for the Google clients of prediction code."""
        self.run_root = Path(run_root)
        self.api_url = api_url
        self.request_timeout_s = request_timeout_s
        self.load_timeout_s = load_timeout_s
        self.restart_wait_s = restart_wait_s
        self.scaling = scaling or ScalingPolicy()
        self._identities = identities
        self._deployments: dict[str, _Deployment] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # At most one standby node (serving/standby.py), kept while a version may scale to
        # zero; a list so the finalizer can stop it.
        self._standby: list[Standby] = []
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
            self._closed,
            self._standby,
            self._lock,
        )
        # Holds the manager weakly: a manager its owner forgot is still collected.
        threading.Thread(
            target=_shrink_idle_loop,
            args=(weakref.ref(self), self._closed, self.scaling.idle_seconds),
            name="serving-autoscaler",
            daemon=True,
        ).start()

    # -- deploy / undeploy (blocking; call from a worker thread) ------------------------------

    def deploy(
        self,
        key: str,
        model_dir: Path,
        framework: str | None,
        *,
        nodes: int = 1,
        autoscaling: NodeRange | None = None,
        python: str | None = None,
        prediction_class: str | None = None,
    ) -> DeployResult:
        """Start the version's nodes, load and warm them up, then serve them.

        `nodes` fixed nodes, or with `autoscaling` between its bounds, starting with
        max(low, 1): even a version that scales to zero proves its model loads first.
        `python`: the interpreter of the version's packageUris environment;
        `prediction_class`: a custom prediction routine's class.
        Replaces an existing deployment of the same key only once the new one is ready.
        """
        low, high = (autoscaling.low, autoscaling.high) if autoscaling else (nodes, nodes)
        if high < 1 or not 0 <= low <= high:
            raise ApiError(Code.INVALID_ARGUMENT, "A version needs at least one node.")
        model_dir = Path(model_dir)
        # A custom prediction routine's directory holds whatever its class reads: no model
        # file to detect (its framework stays unset, as on AI Platform).
        chosen = normalize_framework(framework) or (
            "" if prediction_class else detect_framework(model_dir)
        )
        deployment = _Deployment(
            key,
            chosen,
            [],
            model_dir,
            python=python,
            prediction_class=prediction_class,
            low=low,
            high=high,
            autoscaled=autoscaling is not None,
        )
        started: list[NodeProcess] = []
        try:
            for index in range(max(low, 1)):
                node = self._new_node(deployment, index)
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
        deployment.framework = str(started[0].handshake.get("framework") or chosen)
        for node in started:
            node.served()
            node.supervise()
        deployment.nodes = started
        with self._lock:
            previous = self._deployments.get(key)
            self._deployments[key] = deployment
            if previous is not None:
                previous.retired = True
                replaced = previous.all_nodes()
        if previous is not None:
            previous.wakeup.notify()  # its held requests route to this deployment
            self._retire(replaced)
        pids = tuple(node.pid for node in started if node.pid is not None)
        return DeployResult(framework=deployment.framework, nodes=len(started), pids=pids)

    def scale(
        self, key: str, *, nodes: int = 1, autoscaling: NodeRange | None = None
    ) -> DeployResult:
        """Change a deployed version's node count or bounds live (blocking).

        Nodes below the new floor start (and are warmed up) before this returns; nodes
        above the new ceiling stop. Serving nodes are kept, so predictions go on.
        """
        low, high = (autoscaling.low, autoscaling.high) if autoscaling else (nodes, nodes)
        if high < 1 or not 0 <= low <= high:
            raise ApiError(Code.INVALID_ARGUMENT, "A version needs at least one node.")
        with self._lock:
            deployment = self._deployments.get(key)
            if deployment is None:
                raise not_found(f"Version {key}")
            deployment.low, deployment.high = low, high
            deployment.autoscaled = autoscaling is not None
            surplus = deployment.nodes[high:]
            deployment.nodes = deployment.nodes[:high]
            missing = low - len(deployment.nodes) - deployment.starting
            deployment.starting += max(missing, 0)
        self._retire(surplus)
        for started in range(max(missing, 0)):
            error = self._start_one(deployment, cold=False)
            if error is not None:
                with self._lock:  # the starts not attempted are no longer under way
                    deployment.starting -= missing - started - 1
                raise ApiError(Code.FAILED_PRECONDITION, error)
        pids = tuple(node.pid for node in deployment.nodes if node.pid is not None)
        return DeployResult(framework=deployment.framework, nodes=len(deployment.nodes), pids=pids)

    def undeploy(self, key: str) -> None:
        """Stop the version's nodes (those being started too), free its uid and remove its
        node logs."""
        with self._lock:
            deployment = self._deployments.pop(key, None)
            if deployment is not None:
                deployment.retired = True  # no start begins for it from now on
                nodes = deployment.all_nodes()
        if deployment is not None:
            # Every process that may run as the version's uid ends before the uid is free.
            _stop_nodes(nodes)
            deployment.wakeup.notify()
        self._release_unless_deployed(key)
        if deployment is not None:
            for path in self.node_log_paths(key):
                path.unlink(missing_ok=True)

    def is_deployed(self, key: str) -> bool:
        """Deployed, even with no node running (an autoscaled version scaled to zero)."""
        return key in self._deployments

    def status(self, key: str) -> dict[str, int | float] | None:
        """What the version's nodes are doing now (Version.cairnServing), None if undeployed."""
        deployment = self._deployments.get(key)
        if deployment is None:
            return None
        nodes = deployment.nodes
        status: dict[str, int | float] = {
            "nodes": len(nodes) + deployment.starting,
            "readyNodes": sum(1 for n in nodes if n.ready and n.failure is None),
            "inFlightRequests": sum(n.in_flight for n in nodes) + deployment.waiting,
            "coldStarts": deployment.cold_starts,
        }
        if deployment.last_cold_start_s is not None:
            status["lastColdStartSeconds"] = round(deployment.last_cold_start_s, 3)
        return status

    def node_log_paths(self, key: str) -> list[Path]:
        """The key's node logs (stdout and stderr), present and past nodes, by node index."""
        pattern = f"{_log_digest(key)}-*-node*.log"
        found = [p for p in (self.run_root / "logs").glob(pattern) if _node_index(p) is not None]
        return sorted(found, key=lambda p: _node_index(p) or 0)

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
        """Forward a raw predict body; (200, predictions) or (400/503, {"error": ...}).

        Raises RESOURCE_EXHAUSTED (429) when the version is saturated.
        """
        for _ in range(_ROUTE_ATTEMPTS):
            deployment = self._deployments.get(key)
            if deployment is None:
                raise not_found(f"Version {key}")
            node = self._route(deployment)
            if node is None:
                try:
                    held = await self._wait_for_node(deployment)
                except _NodeRetired:
                    continue
                if isinstance(held, tuple):
                    return held
                node = held
            node.in_flight += 1
            try:
                # Scaled down (or replaced) on another thread since routing: counted in
                # flight now, a node still listed is stopped only after this request.
                if node.stopping or node not in deployment.nodes or deployment.retired:
                    continue
                return await self._forward(deployment, node, body)
            except _NodeRetired:
                continue
            finally:
                node.in_flight -= 1
                node.last_used = time.monotonic()
                if deployment.waiting:
                    deployment.wakeup.notify()  # room on this node for a held request
        return UNAVAILABLE, error_body(
            f"The prediction nodes of {key} are being replaced; retry the request."
        )

    async def _forward(
        self, deployment: _Deployment, node: NodeProcess, body: bytes
    ) -> tuple[int, bytes]:
        key = deployment.key
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

    def _route(self, deployment: _Deployment) -> NodeProcess | None:
        """The node for the next request; None: wait for one to start. Fill before spreading:
        the first node below the target, else the least busy (growing if allowed)."""
        nodes = deployment.nodes
        policy = self.scaling
        if not nodes:
            if deployment.starting == 0:
                self._grow(deployment, cold=deployment.low == 0)
            return None
        if len(nodes) == 1 and deployment.high == 1:  # the default version: one node
            node = nodes[0]
            if node.in_flight < policy.max_in_flight_per_node:
                return node
            raise self._saturated(deployment)
        up = [n for n in nodes if n.ready and not n.stopping and n.failure is None]
        for node in up:
            if node.in_flight < policy.target_in_flight:
                return node
        total = sum(n.in_flight for n in nodes) + 1
        wanted = min(deployment.high, math.ceil(total / policy.target_in_flight))
        if up and len(nodes) + deployment.starting < wanted:
            self._grow(deployment, cold=False)
        # None up (all restarting): the connect step waits for the least busy, within the
        # same bound, so requests never pile up without limit behind restarts.
        least = min(up or nodes, key=_in_flight)
        if least.in_flight < policy.max_in_flight_per_node:
            return least
        if deployment.starting:
            return None
        raise self._saturated(deployment)

    async def _wait_for_node(self, deployment: _Deployment) -> NodeProcess | tuple[int, bytes]:
        """Hold a request until a node can take it (a cold start, or a node being added)."""
        bound = self.scaling.max_in_flight_per_node * deployment.high
        if deployment.waiting >= bound:
            raise self._saturated(deployment)
        deployment.waiting += 1
        event = deployment.wakeup.register()
        try:
            deadline = time.monotonic() + self.load_timeout_s
            while True:
                if deployment.retired:
                    if self._deployments.get(deployment.key) is not None:
                        raise _NodeRetired  # redeployed: the new nodes take it
                    return UNAVAILABLE, error_body(
                        f"Version {deployment.key} was undeployed; retry later."
                    )
                if not deployment.nodes and not deployment.starting and deployment.start_error:
                    return UNAVAILABLE, error_body(
                        f"The prediction node of {deployment.key} could not be started: "
                        f"{deployment.start_error}"
                    )
                node = self._route(deployment)
                if node is not None:
                    return node
                if time.monotonic() > deadline:
                    return UNAVAILABLE, error_body(
                        f"The prediction node of {deployment.key} is not ready yet; retry later."
                    )
                await _pause(event, deadline)
        finally:
            deployment.wakeup.discard(event)
            deployment.waiting -= 1

    def _saturated(self, deployment: _Deployment) -> ApiError:
        if deployment.autoscaled:
            limit = f"maxNodes {deployment.high}"
            remedy = "raise maxNodes (`cairn versions update --max-nodes`)"
        else:
            limit = f"manual scaling: {deployment.high} node(s)"
            remedy = "give it more nodes (`cairn versions update --nodes`)"
        return ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"Version {deployment.key} is at capacity: {len(deployment.nodes)} node(s) "
            f"({limit}), each holding {self.scaling.max_in_flight_per_node} requests. "
            f"Retry with backoff, or {remedy}.",
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
            event = deployment.wakeup.register()
            try:
                return await self._connect_when_ready(deployment, node, loop, event, deadline)
            finally:
                deployment.wakeup.discard(event)

    async def _connect_when_ready(
        self,
        deployment: _Deployment,
        node: NodeProcess,
        loop: asyncio.AbstractEventLoop,
        event: asyncio.Event,
        deadline: float,
    ) -> NodeChannel | tuple[int, bytes]:
        while True:
            if node.stopping:
                if deployment.retired:
                    return UNAVAILABLE, error_body(
                        f"Version {deployment.key} is being undeployed; retry later."
                    )
                raise _NodeRetired  # scaled down meanwhile: another node takes the request
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
            await _pause(event, deadline)

    # -- internals ---------------------------------------------------------------------------

    def _new_node(self, deployment: _Deployment, index: int) -> NodeProcess:
        key = deployment.key
        digest = hashlib.sha1(f"{key}|{time.time_ns()}".encode()).hexdigest()[:12]
        run_as = self._version_identity(key)
        node = NodeProcess(
            model_dir=deployment.model_dir,
            framework=deployment.framework,
            socket_path=self._node_socket_dir(run_as) / f"{digest}-{index}.sock",
            log_path=self.run_root / "logs" / _log_name(key, index),
            load_timeout_s=self.load_timeout_s,
            run_as=run_as,
            python=deployment.python,
            prediction_class=deployment.prediction_class,
            index=index,
            api_url=self.api_url,
        )
        node.on_change = deployment.wakeup.notify
        return node

    def _grow(self, deployment: _Deployment, *, cold: bool) -> None:
        """Start one more node in the background (from the event loop or the autoscaler)."""
        with self._lock:
            if deployment.retired or self._closed.is_set():
                return
            deployment.starting += 1
        threading.Thread(
            target=self._start_one,
            args=(deployment, cold),
            name=f"node-start:{deployment.key}",
            daemon=True,
        ).start()

    def _start_one(self, deployment: _Deployment, cold: bool) -> str | None:
        """Start, warm up and add one node (`starting` was counted); the error, or None."""
        began = time.monotonic()
        node: NodeProcess | None = None
        try:
            with self._lock:
                if deployment.retired or self._closed.is_set():
                    raise NodeStartError(f"Version {deployment.key} was undeployed.")
                # Under the lock that undeploy takes to retire the deployment: either the
                # node is pending there (undeploy stops it before freeing the uid), or
                # nothing is allocated for a version already gone.
                node = self._new_node(deployment, deployment.free_index())
                deployment.pending.add(node)
            node.start(self._take_standby(deployment))
            node.warm_up(timeout_s=self.load_timeout_s)
        except Exception as error:  # a node that cannot start must not wedge the version
            if node is not None:
                node.stop(grace_s=1.0)
            message = str(error) or type(error).__name__
            with self._lock:
                deployment.starting -= 1
                if node is not None:
                    deployment.pending.discard(node)
                retired = deployment.retired
                if not retired:
                    deployment.start_error = message
                    deployment.start_failures += 1
                    backoff = min(2.0**deployment.start_failures, 60.0)
                    deployment.repair_after = time.monotonic() + backoff
            if not retired:
                log.warning("could not start a node for %s: %s", deployment.key, message)
            deployment.wakeup.notify()
            return message
        node.served()
        node.supervise()
        with self._lock:
            deployment.starting -= 1
            deployment.pending.discard(node)
            deployment.start_error = None
            deployment.start_failures = 0
            keep = (
                not deployment.retired
                and not node.stopping
                and len(deployment.nodes) < deployment.high
            )
            if keep:
                deployment.nodes = [*deployment.nodes, node]
                if cold:
                    deployment.cold_starts += 1
                    deployment.last_cold_start_s = time.monotonic() - began
        if not keep:
            _stop_nodes([node])
        deployment.wakeup.notify()
        return None

    def _take_standby(self, deployment: _Deployment) -> Standby | None:
        """The standby node for a version on the server's interpreter (its frameworks are
        the ones preloaded), if one is up; the next tick starts another."""
        if deployment.python is not None or deployment.framework == "TENSORFLOW":
            return None
        with self._lock:
            return self._standby.pop() if self._standby else None

    def _keep_standby(self) -> None:
        """One standby while a version may scale to zero (its next request is a cold start);
        none otherwise (it holds the frameworks' memory)."""
        wanted = not self._closed.is_set() and any(
            d.low == 0 and d.python is None and d.framework != "TENSORFLOW"
            for d in list(self._deployments.values())
        )
        # Decided and taken out in one locked block: _take_standby may pop it meanwhile,
        # and only whoever popped it stops it (or turns it into a node).
        with self._lock:
            current = self._standby[0] if self._standby else None
            drop = current is not None and (not wanted or not current.alive())
            if drop:
                self._standby.clear()
            start = wanted and (current is None or drop)
        if drop and current is not None:
            current.stop()
        if start:
            started = Standby(self.run_root / "logs" / "standby.log")
            with self._lock:
                keep = not self._standby and not self._closed.is_set()
                if keep:
                    self._standby.append(started)
            if not keep:
                started.stop()

    def _tend(self, deployment: _Deployment) -> None:
        """One autoscaler tick for a deployment: replace failed nodes, stop an idle one."""
        self._replace_failed(deployment)
        self._shrink_idle(deployment)

    def _replace_failed(self, deployment: _Deployment) -> None:
        """Drop nodes whose restarts gave up, and start nodes up to the floor (backing off
        while starts keep failing); a version at zero starts on its next request instead."""
        with self._lock:
            if deployment.retired:
                return
            failed = [n for n in deployment.nodes if n.failure is not None]
            if failed:
                deployment.nodes = [n for n in deployment.nodes if n.failure is None]
                deployment.start_error = failed[0].failure
            missing = deployment.low - len(deployment.nodes) - deployment.starting
            if time.monotonic() < deployment.repair_after:
                missing = 0
        if failed:
            log.warning(
                "%s: dropping %d node(s) that could not restart", deployment.key, len(failed)
            )
            _stop_nodes(failed)
        for _ in range(max(missing, 0)):
            self._grow(deployment, cold=False)

    def _shrink_idle(self, deployment: _Deployment) -> None:
        now = time.monotonic()
        with self._lock:
            nodes = deployment.nodes
            if deployment.retired or len(nodes) <= deployment.low:
                return
            last = nodes[-1]  # routing fills the first nodes: the last is the idlest
            if last.in_flight or now - last.last_used < self.scaling.idle_seconds:
                return
            deployment.nodes = nodes[:-1]
        log.info("%s: node %d idle, stopping", deployment.key, last.index)
        self._retire([last])

    def _retire(self, nodes: list[NodeProcess]) -> None:
        """Stop nodes already out of the routing; requests routed to them just before
        finish first (up to the request timeout)."""
        deadline = time.monotonic() + self.request_timeout_s
        while any(n.in_flight for n in nodes) and time.monotonic() < deadline:
            time.sleep(0.01)
        _stop_nodes(nodes)

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


def _shrink_idle_loop(
    manager_ref: weakref.ref[ServingManager], closed: threading.Event, idle_seconds: float
) -> None:
    """Stop idle nodes above each version's floor, one per version per tick."""
    tick = min(1.0, max(idle_seconds / 4, 0.05))
    while not closed.wait(tick):
        manager = manager_ref()
        if manager is None:
            return
        for deployment in list(manager._deployments.values()):
            try:
                manager._tend(deployment)
            except Exception:  # keep scaling the others
                log.exception("scaling down %s failed", deployment.key)
        try:
            manager._keep_standby()
        except Exception:  # a cold start without a standby is only slower
            log.exception("starting a standby node failed")
        del manager


def _in_flight(node: NodeProcess) -> int:
    return node.in_flight


def _log_digest(key: str) -> str:
    """What names a version's node logs: unique per key (a readable part is added too)."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _log_name(key: str, index: int) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.]", "_", key.rstrip("/").rpartition("/")[2])[:40]
    return f"{_log_digest(key)}-{readable}-node{index}.log"


def _node_index(log_path: Path) -> int | None:
    digits = log_path.name.removesuffix(".log").rpartition("-node")[2]
    return int(digits) if digits.isdigit() else None


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
    closed: threading.Event,
    standby: list[Standby],
    lock: threading.Lock,
) -> None:
    with lock:
        closed.set()  # no node start or standby begins from now on
        standbys = list(standby)
        standby.clear()
        retired = list(deployments.items())
        deployments.clear()
        for _, deployment in retired:
            deployment.retired = True
        nodes = {key: deployment.all_nodes() for key, deployment in retired}
    for waiting in standbys:
        waiting.stop()
    for key, deployment in retired:
        _stop_nodes(nodes[key])  # pending ones too, before their uid is freed
        deployment.wakeup.notify()
        _release_version(identities, socket_dir, key)
    if owns_dir:
        with contextlib.suppress(OSError):
            shutil.rmtree(socket_dir)
