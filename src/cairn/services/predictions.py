"""Online prediction: resolve a model or version name to a running deployment, forward the body.

This is the hot path. Names resolve through an in-memory routing table that any model or
version change clears, so a steady stream of predictions never touches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from cairn.domain.errors import ApiError, Code
from cairn.domain.names import ModelName, VersionName, parse_model_or_version
from cairn.services.models import DEFAULT_VERSION_KEY, ModelService
from cairn.services.versions import VersionService

# How long a prediction waits for a version that is still loading (e.g. after a restart).
LOAD_WAIT_SECONDS = 120.0


class PredictingServing(Protocol):
    async def predict(self, key: str, body: bytes) -> tuple[int, bytes]: ...
    def is_deployed(self, key: str) -> bool: ...


class PredictionService:
    def __init__(
        self,
        serving: PredictingServing,
        models: ModelService,
        versions: VersionService,
    ) -> None:
        self._serving = serving
        self._models = models
        self._versions = versions
        self._routes: dict[str, str] = {}
        # Bumped by every change, so a resolve that raced a change is not cached.
        self._generation = 0
        models.on_change.append(self.invalidate)
        versions.on_change.append(self.invalidate)

    def invalidate(self) -> None:
        self._generation += 1
        self._routes = {}

    async def predict(self, name: str, body: bytes) -> tuple[int, bytes]:
        key = self._routes.get(name)
        if key is None:
            generation = self._generation
            key = await asyncio.to_thread(self._resolve, name)
            if generation == self._generation:
                self._routes[name] = key
        if not self._serving.is_deployed(key):
            await self._wait_until_loaded(key)
        return await self._serving.predict(key, body)

    def _resolve(self, name: str) -> str:
        target = parse_model_or_version(name)
        if isinstance(target, ModelName):
            model = self._models.require(target.project, target.model)
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
        return str(target)

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
