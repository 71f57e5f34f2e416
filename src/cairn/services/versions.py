"""Versions: deploy artefacts into prediction nodes, and the lifecycle rules around them.

`versions.create` records the version as CREATING and returns an operation at once; a worker
thread snapshots `deploymentUri` into platform storage, starts the version's nodes and
waits for a warm-up prediction. Only then is the version READY (or FAILED with the
loader's message). Every exit path finishes the operation, so nothing stays CREATING.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code, already_exists, failed_precondition, invalid_field
from cairn.domain.models import (
    BUSY_VERSION_STATES,
    OUTPUT_ONLY_VERSION_FIELDS,
    AutoScaling,
    ManualScaling,
    RequestLoggingConfig,
    Version,
    check_labels,
    serving_nodes,
    validate_new_version,
    validate_scaling,
)
from cairn.domain.names import ModelName, VersionName, check_id
from cairn.domain.operations import EMPTY_TYPE, VERSION_TYPE
from cairn.domain.wire import now
from cairn.services.models import DEFAULT_VERSION_KEY, ModelService
from cairn.services.operations import OperationService, operation_id
from cairn.services.records import list_page, new_etag, public
from cairn.store import DuplicateKeyError

log = logging.getLogger(__name__)

# Stored with the version: the operation that is changing it, and its local artefact copy.
OPERATION_KEY = "_operation"
LOCAL_DIR_KEY = "_localDir"

DEFAULT_MACHINE_TYPE = "mls1-c1-m2"
DEFAULT_RUNTIME_VERSION = "2.11"
DEFAULT_PYTHON_VERSION = "3.7"

PATCHABLE = {
    "description",
    "labels",
    "requestLoggingConfig",
    "autoScaling.minNodes",
    "autoScaling.maxNodes",
    "manualScaling.nodes",
}


class Serving(Protocol):
    def deploy(
        self, key: str, model_dir: Path, framework: str | None, *, nodes: int = 1
    ) -> Any: ...
    def undeploy(self, key: str) -> None: ...
    def is_deployed(self, key: str) -> bool: ...


class Storage(Protocol):
    def copy_tree_to_local(self, uri: str, dest_dir: Path) -> Path: ...


class VersionService:
    def __init__(
        self,
        versions: Any,
        models: ModelService,
        operations: OperationService,
        serving: Serving,
        storage: Storage,
        models_root: Path,
        *,
        workers: int = 4,
    ) -> None:
        self._versions = versions
        self._models = models
        self._operations = operations
        self._serving = serving
        self._storage = storage
        self._models_root = models_root
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy")
        self._loading: dict[str, Future[None]] = {}
        self.on_change: list[Any] = []

    # ----- API methods -------------------------------------------------------------------

    def create(self, project: str, model: str, body: Any) -> dict[str, Any]:
        self._models.require(project, model)
        version = Version.parse(body, "version")
        for name in OUTPUT_ONLY_VERSION_FIELDS:
            setattr(version, name, None)
        validate_new_version(version)
        short = str(version.name)
        full = VersionName(project, model, short)
        version.name = str(full)
        version.state = "CREATING"
        version.create_time = now()
        version.etag = new_etag()
        version.machine_type = version.machine_type or DEFAULT_MACHINE_TYPE
        version.runtime_version = version.runtime_version or DEFAULT_RUNTIME_VERSION
        version.python_version = version.python_version or DEFAULT_PYTHON_VERSION
        if version.framework == "FRAMEWORK_UNSPECIFIED":
            version.framework = None
        doc = version.to_json()
        model_name = str(ModelName(project, model))
        op = self._operations.begin(
            project,
            operation_id("create", model, short),
            "CREATE_VERSION",
            model_name=model_name,
            version=doc,
        )
        try:
            self._versions.insert(
                (project, model, short), {**doc, OPERATION_KEY: op["name"]}, state="CREATING"
            )
        except DuplicateKeyError:
            self._operations.fail(
                op["name"],
                already_exists("version.name", "A version with the same name already exists."),
            )
            raise already_exists(
                "version.name", "A version with the same name already exists."
            ) from None
        self._schedule(full, self._build, full, op["name"])
        return op

    def get(self, project: str, model: str, version: str) -> dict[str, Any]:
        return self._render(self._require(project, model, version))

    def list(
        self,
        project: str,
        model: str,
        *,
        filter_text: str | None,
        page_size: int | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        self._models.require(project, model)
        return list_page(
            self._versions,
            (project, model),
            collection="versions",
            filter_text=filter_text,
            page_size=page_size,
            page_token=page_token,
            render=self._render,
        )

    def set_default(self, project: str, model: str, version: str) -> dict[str, Any]:
        doc = self._require(project, model, version)
        if doc.get("state") != "READY":
            raise failed_precondition(
                f"Version {doc['name']} is {doc.get('state')}; only a READY version can be the default."
            )
        self._models_repo_update(project, model, lambda m: {**m, DEFAULT_VERSION_KEY: version})
        self._changed()
        return self.get(project, model, version)

    def delete(self, project: str, model: str, version: str) -> dict[str, Any]:
        doc = self._require(project, model, version)
        self._refuse_if_busy(doc)
        model_doc = self._models.require(project, model)
        is_default = model_doc.get(DEFAULT_VERSION_KEY) == version
        if is_default and self._versions.count((project, model)) > 1:
            raise failed_precondition(
                f"Version {version} is the default version of model {model} and other versions "
                "exist; make another version the default first (`cairn versions set-default`)."
            )
        full = VersionName(project, model, version)
        op = self._operations.begin(
            project,
            operation_id("delete", model, version),
            "DELETE_VERSION",
            model_name=str(ModelName(project, model)),
            version=public(doc),
        )
        self._versions.update(
            (project, model, version),
            lambda d: {**d, "state": "DELETING", OPERATION_KEY: op["name"]},
        )
        self._changed()
        self._schedule(full, self._remove, full, op["name"])
        return op

    def patch(
        self, project: str, model: str, version: str, body: Any, update_mask: str | None
    ) -> dict[str, Any]:
        doc = self._require(project, model, version)
        self._refuse_if_busy(doc)
        patch = Version.parse(body or {}, "version")
        paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()]
        if not paths:
            raise invalid_field(
                "update_mask", "An update mask is required, e.g. description or labels."
            )
        for path in paths:
            if path not in PATCHABLE:
                raise invalid_field(
                    "update_mask",
                    f"'{path}' cannot be updated; updatable: {', '.join(sorted(PATCHABLE))}.",
                )
        check_labels(patch.labels, "version.labels")
        updated = Version.model_validate(public(doc))
        if "description" in paths:
            updated.description = patch.description
        if "labels" in paths:
            updated.labels = patch.labels
        if "requestLoggingConfig" in paths:
            updated.request_logging_config = patch.request_logging_config or RequestLoggingConfig()
        scaling_paths = {"autoScaling.minNodes", "autoScaling.maxNodes", "manualScaling.nodes"}
        rescale = bool(scaling_paths & set(paths))
        if "manualScaling.nodes" in paths:
            if updated.auto_scaling is not None:
                raise invalid_field(
                    "version.manual_scaling",
                    "This version autoscales; manualScaling cannot be set.",
                )
            updated.manual_scaling = ManualScaling(
                nodes=(patch.manual_scaling or ManualScaling()).nodes
            )
        if {"autoScaling.minNodes", "autoScaling.maxNodes"} & set(paths):
            if updated.manual_scaling is not None:
                raise invalid_field(
                    "version.auto_scaling",
                    "This version uses manual scaling; autoScaling cannot be set.",
                )
            current = updated.auto_scaling or AutoScaling()
            new = patch.auto_scaling or AutoScaling()
            if "autoScaling.minNodes" in paths:
                current.min_nodes = new.min_nodes
            if "autoScaling.maxNodes" in paths:
                current.max_nodes = new.max_nodes
            updated.auto_scaling = current
        validate_scaling(updated)
        updated.etag = new_etag()
        full = VersionName(project, model, version)
        op = self._operations.begin(
            project,
            operation_id("update", model, version),
            "UPDATE_VERSION",
            model_name=str(ModelName(project, model)),
            version=updated.to_json(),
        )
        new_doc = {**updated.to_json(), OPERATION_KEY: op["name"]}
        if rescale and doc.get("state") == "READY":
            new_doc["state"] = "UPDATING"
            self._versions.update((project, model, version), lambda d: {**d, **new_doc})
            self._schedule(full, self._build, full, op["name"])
        else:
            self._versions.update((project, model, version), lambda d: {**d, **new_doc})
            self._operations.succeed(
                op["name"], {"@type": VERSION_TYPE, **self.get(project, model, version)}
            )
        return self._operations.get(project, op["name"].rsplit("/", 1)[-1])

    # ----- prediction support -------------------------------------------------------------

    def loading(self, name: VersionName) -> Future[None] | None:
        """The pending deployment of a version, if one is under way."""
        return self._loading.get(str(name))

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """After a restart: reload READY versions, resume unfinished creates, updates, deletes."""
        for key, doc in self._versions.in_states(["READY", "CREATING", "UPDATING", "DELETING"]):
            full = VersionName(*key)
            state = doc.get("state")
            operation = doc.get(OPERATION_KEY)
            if state == "DELETING":
                self._schedule(full, self._remove, full, operation)
            else:
                self._schedule(full, self._build, full, operation if state != "READY" else None)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ----- work done in the deploy pool ---------------------------------------------------

    def _schedule(self, full: VersionName, work: Any, *args: Any) -> None:
        future: Future[None] = self._pool.submit(work, *args)
        key = str(full)
        self._loading[key] = future

        def forget(done: Future[None]) -> None:
            self._forget(key, done)

        future.add_done_callback(forget)

    def _forget(self, key: str, future: Future[None]) -> None:
        if self._loading.get(key) is future:
            del self._loading[key]

    def _build(self, full: VersionName, operation: str | None) -> None:
        """Snapshot the artefacts (first time only), start nodes, finish the operation."""
        key = (full.project, full.model, full.version)
        doc = self._versions.get(key)
        if doc is None:
            return
        try:
            local_dir = doc.get(LOCAL_DIR_KEY)
            if not local_dir or not Path(local_dir).is_dir():
                local_dir = str(self._snapshot(full, str(doc["deploymentUri"])))
            if operation and self._operations.cancel_requested(operation):
                raise ApiError(Code.CANCELLED, "Operation cancelled by the user.")
            version = Version.model_validate(public(doc))
            framework = doc.get("framework")
            self._serving.undeploy(str(full))
            result = self._serving.deploy(
                str(full), Path(local_dir), framework, nodes=serving_nodes(version)
            )
            if operation and self._operations.cancel_requested(operation):
                self._serving.undeploy(str(full))
                raise ApiError(Code.CANCELLED, "Operation cancelled by the user.")
        except ApiError as exc:
            self._build_failed(full, operation, exc)
            return
        except Exception as exc:  # never leave a version CREATING
            log.exception("deploying %s failed", full)
            self._build_failed(full, operation, ApiError(Code.INTERNAL, str(exc)))
            return

        def ready(d: dict[str, Any]) -> dict[str, Any]:
            updated = {**d, "state": "READY", LOCAL_DIR_KEY: local_dir}
            updated.pop("errorMessage", None)
            updated.pop(OPERATION_KEY, None)
            if not d.get("framework") and getattr(result, "framework", None):
                updated["framework"] = result.framework
            return updated

        self._versions.update(key, ready)
        # The first version to become READY is the model's default.
        self._models_repo_update(
            full.project,
            full.model,
            lambda m: (
                None if m.get(DEFAULT_VERSION_KEY) else {**m, DEFAULT_VERSION_KEY: full.version}
            ),
        )
        self._changed()
        if operation:
            self._operations.succeed(
                operation,
                {"@type": VERSION_TYPE, **self.get(full.project, full.model, full.version)},
            )

    def _build_failed(self, full: VersionName, operation: str | None, error: ApiError) -> None:
        key = (full.project, full.model, full.version)
        if error.code is Code.CANCELLED:
            self._discard_files(full)
            self._versions.delete(key)
            self._changed()
        else:
            message = f"Create Version failed. Bad model detected with error: {error.message}"
            self._versions.update(
                key,
                lambda d: {**d, "state": "FAILED", "errorMessage": message} | {OPERATION_KEY: None},
            )
            error = ApiError(Code.FAILED_PRECONDITION, message)
            self._changed()
        if operation:
            self._operations.fail(operation, error)

    def _remove(self, full: VersionName, operation: str | None) -> None:
        key = (full.project, full.model, full.version)
        try:
            self._serving.undeploy(str(full))
            self._discard_files(full)
        finally:
            self._versions.delete(key)
            self._models_repo_update(
                full.project,
                full.model,
                lambda m: (
                    {k: v for k, v in m.items() if k != DEFAULT_VERSION_KEY}
                    if m.get(DEFAULT_VERSION_KEY) == full.version
                    else None
                ),
            )
            self._changed()
            if operation:
                self._operations.succeed(operation, {"@type": EMPTY_TYPE})

    def _snapshot(self, full: VersionName, uri: str) -> Path:
        """Copy the artefacts into platform storage, as AI Platform does at create time."""
        dest = self._version_dir(full)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._storage.copy_tree_to_local(uri, dest)
        except ApiError as exc:
            raise ApiError(exc.code, f"Could not copy {uri}: {exc.message}") from None

    def _discard_files(self, full: VersionName) -> None:
        shutil.rmtree(self._version_dir(full), ignore_errors=True)

    def _version_dir(self, full: VersionName) -> Path:
        return self._models_root / full.project / full.model / full.version

    # ----- helpers -----------------------------------------------------------------------

    def _require(self, project: str, model: str, version: str) -> dict[str, Any]:
        self._models.require(project, model)
        check_id(version, "name")
        doc = self._versions.get((project, model, version))
        if doc is None:
            raise ApiError(
                Code.NOT_FOUND, f"Version {VersionName(project, model, version)} does not exist."
            )
        return dict(doc)

    def _render(self, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        full = str(doc.get("name", ""))
        parts = full.split("/")
        if len(parts) == 6:
            model_doc = self._models.require(parts[1], parts[3])
            if model_doc.get(DEFAULT_VERSION_KEY) == parts[5]:
                rendered["isDefault"] = True
        return rendered

    @staticmethod
    def _refuse_if_busy(doc: dict[str, Any]) -> None:
        if doc.get("state") in BUSY_VERSION_STATES:
            raise failed_precondition(
                f"Version {doc['name']} is {doc['state']}; wait for its operation to finish "
                "(`cairn operations list`) and try again."
            )

    def _models_repo_update(self, project: str, model: str, mutate: Any) -> None:
        self._models.repo.update((project, model), mutate)

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()
