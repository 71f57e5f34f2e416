"""Online prediction: resolve a model or version name to a running deployment, forward the body.

This is the hot path. Names resolve through an in-memory routing table that any model or
version change clears, so a steady stream of predictions never touches the database. A
route carries the version's logging policy (services/request_logs.py): a version that logs
nothing costs two checks, an unsampled request one random draw, and a logged one an append
to the log writer's queue; nothing on this path waits for the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Protocol

from cairn.domain.errors import ApiError, Code
from cairn.domain.names import ModelName, VersionName, parse_model_or_version
from cairn.services.models import DEFAULT_VERSION_KEY, ModelService
from cairn.services.request_logs import LoggingPolicy, PredictionLogWriter, logging_policy
from cairn.services.versions import VersionService

# How long a prediction waits for a version that is still loading (e.g. after a restart).
LOAD_WAIT_SECONDS = 120.0


class PredictingServing(Protocol):
    async def predict(self, key: str, body: bytes) -> tuple[int, bytes]: ...
    def is_deployed(self, key: str) -> bool: ...


class _Route:
    """Where a name's predictions go, and what is logged of them (None: nothing)."""

    __slots__ = ("key", "logging")

    def __init__(self, key: str, logging: LoggingPolicy | None) -> None:
        self.key = key
        self.logging = logging


class PredictionService:
    def __init__(
        self,
        serving: PredictingServing,
        models: ModelService,
        versions: VersionService,
        log_writer: PredictionLogWriter | None = None,
    ) -> None:
        self._serving = serving
        self._models = models
        self._versions = versions
        self._log_writer = log_writer
        self._routes: dict[str, _Route] = {}
        # Bumped by every change, so a resolve that raced a change is not cached.
        self._generation = 0
        models.on_change.append(self.invalidate)
        versions.on_change.append(self.invalidate)

    def invalidate(self) -> None:
        self._generation += 1
        self._routes = {}

    async def predict(self, name: str, body: bytes) -> tuple[int, bytes]:
        route = self._routes.get(name)
        if route is None:
            generation = self._generation
            route = await asyncio.to_thread(self._resolve, name)
            if generation == self._generation:
                self._routes[name] = route
        policy = route.logging
        # One body for every version, no helper coroutine: a version that logs nothing pays
        # two `is None` checks, an unsampled request one random draw more.
        started = 0.0
        if policy is not None and policy.access_log:
            started = time.perf_counter()
        try:
            if not self._serving.is_deployed(route.key):
                await self._wait_until_loaded(route.key)
            answer = await self._serving.predict(route.key, body)
        except ApiError as error:
            if started and policy is not None:
                self._log_access(policy, started, error.code.http_status, len(body), 0)
            raise
        if policy is not None:
            if started:
                self._log_access(policy, started, answer[0], len(body), len(answer[1]))
            if random.random() < policy.sampling:
                writer = self._log_writer
                assert writer is not None  # routes carry a policy only when there is a writer
                writer.offer_request(policy, time.time_ns() // 1000, body, answer[1])
        return answer

    def _log_access(
        self,
        policy: LoggingPolicy,
        started: float,
        status: int,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """An access-log row for a request that began at `started` (perf_counter)."""
        writer = self._log_writer
        assert writer is not None
        latency = time.perf_counter() - started
        at = time.time_ns() // 1000 - int(latency * 1_000_000)
        writer.offer_access(policy, at, latency, status, request_bytes, response_bytes)

    def _resolve(self, name: str) -> _Route:
        target = parse_model_or_version(name)
        model = self._models.require(target.project, target.model)
        if isinstance(target, ModelName):
            default = model.get(DEFAULT_VERSION_KEY)
            if not default:
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    f"Model {target} has no default version yet; create a version first "
                    "(`cairn versions create`) or name one in the request.",
                )
            target = VersionName(target.project, target.model, str(default))
        doc = self._versions.get(target.project, target.model, target.version)
        state = doc.get("state")
        if state not in ("READY", "UPDATING"):
            detail = f": {doc['errorMessage']}" if doc.get("errorMessage") else ""
            raise ApiError(
                Code.FAILED_PRECONDITION,
                f"Version {target} is {state} and cannot serve predictions{detail}.",
            )
        policy = logging_policy(target.project, target.model, target.version, model, doc)
        return _Route(str(target), policy if self._log_writer is not None else None)

    async def _wait_until_loaded(self, key: str) -> None:
        parts = key.split("/")
        pending = self._versions.loading(VersionName(parts[1], parts[3], parts[5]))
        if pending is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(pending), LOAD_WAIT_SECONDS)
        if not self._serving.is_deployed(key):
            self.invalidate()
            raise ApiError(
                Code.UNAVAILABLE,
                f"Version {key} is not loaded yet; retry in a few seconds.",
            )
