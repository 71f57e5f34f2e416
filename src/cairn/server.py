"""The composition root: build every component from Settings and serve the API."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from cairn.api.app import create_app
from cairn.api.http import AsgiApp
from cairn.config import Settings
from cairn.executors import UidAllocator, make_executor
from cairn.home_identity import home_id
from cairn.isolation import IsolationError, isolate_user_code
from cairn.monitoring.service_log import install_service_log
from cairn.services.platform import Platform, build_platform
from cairn.serving import ServingManager
from cairn.serving.batch import BatchRunner
from cairn.serving.manager import ScalingPolicy
from cairn.storage import BucketStorage
from cairn.store import MetadataStore
from cairn.training import TrainingRunner
from cairn.training.capacity import machine_capacity

log = logging.getLogger("cairn.server")


class StartupError(Exception):
    """The server cannot start; the message says why and what to do (no traceback needed)."""


def lock_home(home: Path) -> IO[str]:
    """Hold an exclusive lock on the home: two servers must never drive the same state.

    The lock file holds the server's PID while it runs (`make stop` reads it).
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StartupError(
            f"Cannot use {home} as Cairn's home: {error.strerror} ({error.filename}). "
            "Choose a directory this user can write, with --home or CAIRN_HOME."
        ) from None
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StartupError(
            f"Another Cairn server is already using {home}. Stop it first, "
            "or start this one with a different --home."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_home(lock: IO[str]) -> None:
    """Clear the PID from the lock file (a stale one would point at a stranger), unlock.

    Safe to call twice: the server releases the home as soon as it has shut down.
    """
    if lock.closed:
        return
    with contextlib.suppress(OSError):
        lock.seek(0)
        lock.truncate()
    lock.close()


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, bound before anything else starts, or StartupError."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise StartupError(_listen_problem(host, port, error)) from None
    return listener


def _listen_problem(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another program, perhaps another "
            "Cairn server, listens there). Stop it, or start Cairn with another --port."
        )
    if error.errno == errno.EACCES:
        return (
            f"Not allowed to listen on port {port} on {host} (ports below 1024 need root). "
            "Start Cairn with another --port."
        )
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return f"Cannot listen on {host}: it is not an address of this machine. Check --host."
    return f"Cannot listen on {host}:{port}: {error.strerror or error}."


def build_app(
    settings: Settings, *, identities: UidAllocator | None = None
) -> tuple[AsgiApp, Platform]:
    """Wire the store, storage, engines and services into the ASGI app.

    `identities`: the uids user code runs as, one per job, build and served version (see
    `cairn.isolation`); None: user code runs as this process's user.
    """
    for path in (settings.home, settings.storage_root, settings.jobs_root, settings.models_root):
        path.mkdir(parents=True, exist_ok=True)
    store = MetadataStore(settings.sqlalchemy_url)
    storage = BucketStorage(settings.storage_root)
    # One executor for every engine that launches user code (docs/architecture.md).
    executor = make_executor(settings.executor)
    runner = TrainingRunner(
        settings.jobs_root,
        settings.envs_root,
        storage,
        identities=identities,
        home_id=home_id(settings.home),
        api_url=settings.api_url,
        max_restarts=settings.max_replica_restarts,
        container_engine=settings.container_engine,
        executor=executor,
    )
    runner.environments.use_runtimes(settings.runtimes_root)  # docs/runtimes.md
    serving = ServingManager(
        settings.home / "serving",
        identities=identities,
        api_url=settings.api_url,
        scaling=ScalingPolicy(
            target_in_flight=settings.autoscale_target_in_flight,
            idle_seconds=settings.autoscale_idle_seconds,
            max_in_flight_per_node=settings.serving_max_in_flight_per_node,
        ),
    )
    platform = build_platform(
        store,
        storage,
        runner,
        serving,
        models_root=settings.models_root,
        max_running_jobs=settings.max_running_jobs,
        capacity=machine_capacity(settings),  # docs/scheduling.md
        min_max_wait_seconds=settings.min_max_wait_seconds,
        max_nodes_per_version=settings.max_nodes_per_version,
        max_replicas=settings.max_replicas,
        local_roots=settings.local_roots,
        access_token_seconds=settings.access_token_seconds,
        token_uri=settings.token_uri,
        home=settings.home,  # entries:list (docs/logging.md)
        jobs_root=settings.jobs_root,
        prediction_log_queue_size=settings.prediction_log_queue_size,
        prediction_log_queue_bytes=settings.prediction_log_queue_bytes,
        prediction_log_max_rows=settings.prediction_log_max_rows,
        prediction_log_max_total_rows=settings.prediction_log_max_total_rows,
        prediction_log_retention_days=settings.prediction_log_retention_days,
        batch_engine=BatchRunner(
            settings.jobs_root,
            identities=identities,
            home_id=home_id(settings.home),
            executor=executor,
        ),
    )
    if settings.environment_retention_days > 0:
        # Only now: the versions service has said which environments deployed models hold.
        runner.environments.start_collector(settings.environment_retention_days * 86400)
    # The owner's credential exists before the first request, so the local CLI finds it.
    platform.identity.ensure_owner_credential(settings.owner_credential, settings.token_uri)
    app = create_app(
        platform,
        predict_max_bytes=settings.predict_max_bytes,
        home=settings.home,
        storage_root=settings.storage_root,
        authentication=settings.authentication,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )

    def shutdown() -> None:
        try:
            platform.stop()
        finally:
            serving.shutdown()
            runner.environments.stop_collector()
            store.close()

    app_any: Any = app
    app_any._on_shutdown = shutdown
    return app, platform


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def serve(settings: Settings, announce: Callable[[str], None] = _to_stderr) -> None:
    """Run the server in the foreground until interrupted; `announce` tells the operator.

    The home's lock and the port come first, so a second server or a busy port fails fast
    with a StartupError; "listening" is announced once connections are being answered.
    """
    lock = lock_home(settings.home)
    try:
        with listen(settings.host, settings.port) as listener:
            settings = replace(settings, port=listener.getsockname()[1])  # --port 0
            try:
                isolation = isolate_user_code(settings)
            except IsolationError as error:
                raise StartupError(str(error)) from None
            for notice in isolation.notices:
                announce(notice)
            try:
                install_service_log(settings.home)  # <home>/logs/cairn.jsonl (docs/logging.md)
                app, _ = build_app(settings, identities=isolation.identities)
            except OSError as error:
                raise StartupError(
                    f"Cannot use {settings.home} as Cairn's home: {error.strerror} "
                    f"({error.filename}). Check its permissions, or choose another --home."
                ) from None
            _run_uvicorn(
                app,
                listener,
                on_started=lambda: announce(
                    f"Cairn server listening on http://{settings.host}:{settings.port} "
                    f"(home: {settings.home}). Stop it with Ctrl-C."
                ),
                on_stopped=lambda: release_home(lock),
            )
    finally:
        release_home(lock)


def _run_uvicorn(
    app: AsgiApp,
    listener: socket.socket,
    on_started: Callable[[], None],
    on_stopped: Callable[[], None],
) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the app's start-up (recovery) is done and the socket serves
                on_started()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            # Now: uvicorn ends a process stopped by a signal with that same signal, after
            # which no `finally` of ours runs.
            on_stopped()

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        # googleapiclient (httplib2) reuses an idle connection and does not retry a POST
        # the server has closed meanwhile (BrokenPipeError); Google's front ends keep idle
        # connections about ten minutes, so clients written for them expect as much.
        timeout_keep_alive=620,
    )
    Server(config).run(sockets=[listener])
