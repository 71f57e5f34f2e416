"""Versions: deploy artefacts into prediction nodes, and the lifecycle rules around them.

`versions.create` records the version as CREATING and returns an operation at once; a worker
thread snapshots `deploymentUri` into platform storage, starts the version's nodes and
waits for a warm-up prediction. Only then is the version READY (or FAILED with the
loader's message). Every exit path finishes the operation, so nothing stays CREATING.

Every check of a version's state and the change it guards happen in one atomic update of
the version's document, so two requests can never both act on one version.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
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
    check_description,
    check_labels,
    serving_nodes,
    validate_new_version,
    validate_scaling,
)
from cairn.domain.names import ModelName, VersionName, check_id
from cairn.domain.operations import EMPTY_TYPE, VERSION_TYPE
from cairn.domain.runtimes import check_runtime
from cairn.domain.wire import now
from cairn.services.models import DEFAULT_VERSION_KEY, ModelService
from cairn.services.operations import OperationService, operation_id
from cairn.services.records import ListRequest, list_page, new_etag, public
from cairn.services.request_logs import check_request_logging_config
from cairn.services.request_paths import RequestPaths
from cairn.serving.legacy import prepare_legacy_model
from cairn.serving.manager import NodeRange
from cairn.store import DuplicateKeyError
from cairn.training.environments import EnvironmentBuildError

log = logging.getLogger(__name__)

# Stored with the version: the operation that is changing it, and its local artefact copy.
OPERATION_KEY = "_operation"
LOCAL_DIR_KEY = "_localDir"
# The interpreter of the environment its packageUris were installed into (absent: the server's).
PYTHON_KEY = "_python"

DEFAULT_MACHINE_TYPE = "mls1-c1-m2"

PATCHABLE = {
    "description",
    "labels",
    "requestLoggingConfig",
    "autoScaling.minNodes",
    "autoScaling.maxNodes",
    "manualScaling.nodes",
}
SCALING_PATHS = {"autoScaling.minNodes", "autoScaling.maxNodes", "manualScaling.nodes"}


class Deployment(Enum):
    """Why nodes are being started: the outcome and the wording of failures differ."""

    CREATE = "create"  # a new version: failure leaves it FAILED, cancel removes it
    RESCALE = "rescale"  # a READY version gets a new node count: old nodes serve until then
    RELOAD = "reload"  # a READY version after a server restart


@dataclass(frozen=True)
class LaunchSpec:
    """What it takes to load a READY version's model in another process (batch prediction)."""

    model_dir: Path  # the deployed local copy of deploymentUri
    framework: str | None  # "SCIKIT_LEARN" | "XGBOOST" | "TENSORFLOW"; None: detect from files
    python: str | None  # the interpreter of the version's packageUris environment; None: ours
    prediction_class: str | None  # "module.Class" of a custom prediction routine


class Serving(Protocol):
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
    ) -> Any: ...
    def scale(self, key: str, *, nodes: int = 1, autoscaling: NodeRange | None = None) -> Any: ...
    def undeploy(self, key: str) -> None: ...
    def is_deployed(self, key: str) -> bool: ...
    def status(self, key: str) -> dict[str, Any] | None: ...


class Storage(Protocol):
    def isdir(self, uri: str) -> bool: ...
    def local_path(self, uri: str) -> Path: ...
    def copy_tree_to_local(self, uri: str, dest_dir: Path) -> Path: ...


class Environments(Protocol):
    """training.environments.EnvironmentCache: packageUris installed once, shared with jobs."""

    def ensure(self, package_files: Sequence[Path], *, log_path: Path) -> Any: ...

    def protect(self, source: Callable[[], Iterable[Path]]) -> None: ...


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
        max_nodes: int = 8,
        workers: int = 4,
        paths: RequestPaths | None = None,
        environments: Environments | None = None,
    ) -> None:
        """`environments`: where packageUris are installed (None: versions with packageUris
        are refused)."""
        self.repo = versions
        self._models = models
        self._operations = operations
        self._serving = serving
        self._storage = storage
        self._models_root = models_root
        self._max_nodes = max_nodes
        self._paths = paths or RequestPaths()
        self._environments = environments
        if environments is not None:  # deployed versions' envs are never collected
            environments.protect(self._deployed_pythons)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy")
        self._loading: dict[str, Future[None]] = {}
        self.on_change: list[Any] = []

    # ----- API methods -------------------------------------------------------------------

    def create(self, project: str, model: str, body: Any) -> dict[str, Any]:
        self._models.require(project, model)
        version = Version.parse(body, "version")
        for name in OUTPUT_ONLY_VERSION_FIELDS:
            setattr(version, name, None)
        # The server copies what deploymentUri names: only Cairn's storage (or an allowed root).
        if version.deployment_uri:
            self._paths.check_location(version.deployment_uri, "version.deployment_uri")
        for index, uri in enumerate(version.package_uris or []):
            self._paths.check_location(uri, f"version.package_uris[{index}]")
        validate_new_version(version)
        # Only runtime and Python versions AI Platform had (domain/runtimes.py).
        check_runtime(version.runtime_version, version.python_version, field_prefix="version")
        check_request_logging_config(version.request_logging_config)
        self._check_node_count(version)
        self._check_packages(version)
        uri = str(version.deployment_uri)
        if not self._storage.isdir(uri):
            raise invalid_field(
                "version.deployment_uri",
                f"{uri} is not a directory; point it at the folder holding the model file "
                "(upload one with `cairn storage cp -r DIR gs://BUCKET/PATH`).",
            )
        short = str(version.name)
        full = VersionName(project, model, short)
        version.name = str(full)
        version.state = "CREATING"
        version.create_time = now()
        version.etag = new_etag()
        version.machine_type = version.machine_type or DEFAULT_MACHINE_TYPE
        # No default runtimeVersion: a version is served with Cairn's own frameworks whatever
        # it says (docs/runtimes.md), so none is shown unless the caller named one.
        if version.framework == "FRAMEWORK_UNSPECIFIED":
            version.framework = None
        doc = version.to_json()
        op_id = operation_id("create", model, short)
        op_name = f"projects/{project}/operations/{op_id}"
        try:
            self.repo.insert((project, model, short), {**doc, OPERATION_KEY: op_name})
        except DuplicateKeyError:
            raise already_exists(
                "version.name", "A version with the same name already exists."
            ) from None
        if not self._models.still_accepts_versions(project, model):
            # The model was deleted while this version was being recorded.
            self.repo.delete((project, model, short))
            raise ApiError(Code.NOT_FOUND, f"Model {ModelName(project, model)} does not exist.")
        op = self._operations.begin(
            project, op_id, "CREATE_VERSION", model_name=str(ModelName(project, model)), version=doc
        )
        self._schedule(full, Deployment.CREATE, op["name"])
        return op

    def get(self, project: str, model: str, version: str) -> dict[str, Any]:
        return self._render(self._require(project, model, version))

    def list(self, project: str, model: str, request: ListRequest) -> dict[str, Any]:
        self._models.require(project, model)
        return list_page(
            self.repo,
            (project, model),
            request,
            collection="versions",
            render=self._render,
        )

    def set_default(self, project: str, model: str, version: str) -> dict[str, Any]:
        self._require(project, model, version)

        def require_ready(doc: dict[str, Any]) -> None:
            if doc.get("state") != "READY":
                raise failed_precondition(
                    f"Version {doc['name']} is {doc.get('state')}; only a READY version can be "
                    "the default."
                )

        # Checked under the version's lock, then the model records the choice.
        self.repo.update((project, model, version), require_ready)
        self._models.repo.update((project, model), lambda m: {**m, DEFAULT_VERSION_KEY: version})
        self._changed()
        return self.get(project, model, version)

    def delete(self, project: str, model: str, version: str) -> dict[str, Any]:
        doc = self._require(project, model, version)
        model_doc = self._models.require(project, model)
        if model_doc.get(DEFAULT_VERSION_KEY) == version and self.repo.count((project, model)) > 1:
            raise failed_precondition(
                f"Version {version} is the default version of model {model} and other versions "
                "exist; make another version the default first (`cairn versions set-default`)."
            )
        op_id = operation_id("delete", model, version)
        op_name = f"projects/{project}/operations/{op_id}"

        def mark_deleting(d: dict[str, Any]) -> dict[str, Any]:
            _refuse_if_busy(d)
            return {**d, "state": "DELETING", OPERATION_KEY: op_name}

        self.repo.update((project, model, version), mark_deleting)
        op = self._operations.begin(
            project,
            op_id,
            "DELETE_VERSION",
            model_name=str(ModelName(project, model)),
            version=public(doc),
        )
        self._changed()
        self._schedule(VersionName(project, model, version), self._remove, op["name"])
        return op

    def patch(
        self, project: str, model: str, version: str, body: Any, update_mask: str | None
    ) -> dict[str, Any]:
        self._require(project, model, version)
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
        check_description(patch.description, "version.description")
        rescale = bool(SCALING_PATHS & set(paths))
        op_id = operation_id("update", model, version)
        op_name = f"projects/{project}/operations/{op_id}"

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            _refuse_if_busy(doc)
            updated = _patched(Version.model_validate(public(doc)), patch, paths)
            check_request_logging_config(updated.request_logging_config)
            self._check_node_count(updated)
            new_doc = {**doc, **updated.to_json(), "etag": new_etag()}
            for field in ("description", "labels", "requestLoggingConfig"):
                if field in paths and field not in updated.to_json():
                    new_doc.pop(field, None)
            if rescale and doc.get("state") == "READY":
                new_doc["state"] = "UPDATING"
                new_doc[OPERATION_KEY] = op_name
            return new_doc

        stored = self.repo.update((project, model, version), apply)
        self._changed()  # the predict path's routes carry requestLoggingConfig
        op = self._operations.begin(
            project,
            op_id,
            "UPDATE_VERSION",
            model_name=str(ModelName(project, model)),
            version=public(stored or {}),
        )
        if stored is not None and stored.get("state") == "UPDATING":
            self._schedule(VersionName(project, model, version), Deployment.RESCALE, op["name"])
        else:
            self._operations.succeed(
                op["name"], {"@type": VERSION_TYPE, **self.get(project, model, version)}
            )
        return self._operations.get(project, op_id)

    # ----- prediction support -------------------------------------------------------------

    def launch_spec(self, project: str, model: str, version: str) -> LaunchSpec:
        """How to load a READY version's model elsewhere; FAILED_PRECONDITION otherwise."""
        doc = self._require(project, model, version)
        local_dir = doc.get(LOCAL_DIR_KEY)
        if doc.get("state") != "READY" or not local_dir:
            raise failed_precondition(
                f"Version {doc['name']} is {doc.get('state')}; only a READY version can be "
                "used here."
            )
        return LaunchSpec(
            model_dir=Path(local_dir),
            framework=doc.get("framework") or None,
            python=doc.get(PYTHON_KEY) or None,
            prediction_class=doc.get("predictionClass") or None,
        )

    def loading(self, name: VersionName) -> Future[None] | None:
        """The pending deployment of a version, if one is under way."""
        return self._loading.get(str(name))

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """After a restart: reload READY versions, resume unfinished creates, updates, deletes."""
        for key, doc in self.repo.in_states(["READY", "CREATING", "UPDATING", "DELETING"]):
            full = VersionName(*key)
            operation = doc.get(OPERATION_KEY)
            kind = {
                "READY": Deployment.RELOAD,
                "CREATING": Deployment.CREATE,
                "UPDATING": Deployment.RESCALE,
            }.get(str(doc.get("state")))
            if kind is None:
                self._schedule(full, self._remove, operation)
            else:
                self._schedule(full, kind, operation)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ----- work done in the deploy pool ---------------------------------------------------

    def _schedule(self, full: VersionName, work: Any, operation: str | None) -> None:
        if isinstance(work, Deployment):
            future: Future[None] = self._pool.submit(self._deploy, full, work, operation)
        else:
            future = self._pool.submit(work, full, operation)
        key = str(full)
        self._loading[key] = future

        def forget(done: Future[None]) -> None:
            if self._loading.get(key) is done:
                del self._loading[key]

        future.add_done_callback(forget)

    def _deploy(self, full: VersionName, kind: Deployment, operation: str | None) -> None:
        """Start the version's nodes; every path finishes the operation."""
        key = (full.project, full.model, full.version)
        doc = self.repo.get(key)
        if doc is None:
            if operation:
                self._operations.fail(
                    operation, ApiError(Code.ABORTED, f"Version {full} was deleted meanwhile.")
                )
            return
        try:
            local_dir = doc.get(LOCAL_DIR_KEY)
            if not local_dir or not Path(local_dir).is_dir():
                local_dir = str(self._snapshot(full, str(doc["deploymentUri"])))
            if not doc.get("predictionClass"):  # a custom routine loads its own files
                # Models saved by AI Platform's runtimes (XGBoost 1.x binary) are converted
                # once in the copy, checked against the original by the node.
                note = prepare_legacy_model(Path(local_dir), doc.get("runtimeVersion"))
                if note:
                    log.info("%s: %s", full, note)
            if kind is Deployment.CREATE:
                self._stop_if_cancelled(operation)
            version = Version.model_validate(public(doc))
            python = self._environment(full, doc)
            if kind is Deployment.CREATE:
                self._stop_if_cancelled(operation)
            if kind is Deployment.RESCALE and self._serving.is_deployed(str(full)):
                # Live: serving nodes stay, missing ones start, surplus ones stop.
                result = self._serving.scale(str(full), **self._scaling(version))
            else:
                # The manager swaps nodes only once the new ones answer: a redeploy never
                # interrupts predictions.
                result = self._serving.deploy(
                    str(full),
                    Path(local_dir),
                    doc.get("framework"),
                    python=python,
                    prediction_class=version.prediction_class,
                    **self._scaling(version),
                )
            if kind is Deployment.CREATE:
                self._stop_if_cancelled(operation, undeploy=str(full))
        except Exception as exc:
            error = exc if isinstance(exc, ApiError) else ApiError(Code.INTERNAL, str(exc))
            if not isinstance(exc, ApiError):
                log.exception("deploying %s failed", full)
            self._deploy_failed(full, kind, operation, error)
            return

        def ready(d: dict[str, Any]) -> dict[str, Any]:
            updated = {**d, "state": "READY", LOCAL_DIR_KEY: local_dir}
            for internal in ("errorMessage", OPERATION_KEY, PYTHON_KEY):
                updated.pop(internal, None)
            if python:
                updated[PYTHON_KEY] = python
            if not d.get("framework") and getattr(result, "framework", None):
                updated["framework"] = result.framework
            return updated

        self.repo.update(key, ready)
        # The first version to become READY is the model's default.
        self._models.repo.update(
            (full.project, full.model),
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

    def _deploy_failed(
        self, full: VersionName, kind: Deployment, operation: str | None, error: ApiError
    ) -> None:
        key = (full.project, full.model, full.version)
        if kind is Deployment.CREATE and error.code is Code.CANCELLED:
            self._discard_files(full)
            self.repo.delete(key)
        elif kind is Deployment.RESCALE:
            # The old nodes still serve: the version stays READY, the operation says why.
            error = ApiError(error.code, f"Update Version failed: {error.message}")
            self.repo.update(key, lambda d: _settled(d, "READY"))
        else:
            prefix = (
                "Create Version failed. Bad model detected with error"
                if kind is Deployment.CREATE
                else "The version could not be loaded again after a server restart"
            )
            error = ApiError(Code.FAILED_PRECONDITION, f"{prefix}: {error.message}")
            self.repo.update(
                key, lambda d: {**_settled(d, "FAILED"), "errorMessage": error.message}
            )
        self._changed()
        if operation:
            self._operations.fail(operation, error)

    def _stop_if_cancelled(self, operation: str | None, undeploy: str | None = None) -> None:
        if operation and self._operations.cancel_requested(operation):
            if undeploy:
                self._serving.undeploy(undeploy)
            raise ApiError(Code.CANCELLED, "Operation cancelled by the user.")

    def _remove(self, full: VersionName, operation: str | None) -> None:
        key = (full.project, full.model, full.version)
        try:
            self._serving.undeploy(str(full))
            self._discard_files(full)
        finally:
            self.repo.delete(key)
            self._models.repo.update(
                (full.project, full.model),
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
        shutil.rmtree(self._packages_dir(full), ignore_errors=True)

    def _version_dir(self, full: VersionName) -> Path:
        return self._models_root / full.project / full.model / full.version

    def _packages_dir(self, full: VersionName) -> Path:
        """The version's copy of its packageUris (and the install log): rebuilding its
        environment later never depends on the user keeping the originals."""
        return self._models_root / full.project / full.model / ".packages" / full.version

    def _environment(self, full: VersionName, doc: dict[str, Any]) -> str | None:
        """The interpreter of the environment holding the version's packageUris (built and
        cached like a training job's), or None when it has none: nodes use the server's."""
        uris = [str(uri) for uri in doc.get("packageUris") or []]
        if not uris:
            return None
        known = doc.get(PYTHON_KEY)
        if known and Path(known).exists():
            return str(known)
        if self._environments is None:
            raise ApiError(Code.UNIMPLEMENTED, "This server cannot install packageUris.")
        directory = self._packages_dir(full)
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for index, uri in enumerate(uris):
            # Numbered: two URIs may end in the same file name.
            copy = directory / str(index) / Path(uri.rstrip("/")).name
            if not copy.is_file():
                copy.parent.mkdir(exist_ok=True)
                try:
                    shutil.copyfile(self._storage.local_path(uri), copy)
                except OSError as exc:
                    raise ApiError(
                        Code.FAILED_PRECONDITION, f"Could not copy the package {uri}: {exc}"
                    ) from None
            files.append(copy)
        try:
            environment = self._environments.ensure(files, log_path=directory / "install.log")
        except EnvironmentBuildError as exc:
            raise ApiError(
                Code.FAILED_PRECONDITION, f"Installing packageUris failed: {exc}"
            ) from None
        return str(environment.python)

    # ----- helpers -----------------------------------------------------------------------

    def _deployed_pythons(self) -> Sequence[Path]:
        """The packageUris interpreters of versions that may start nodes (EnvironmentCache)."""
        states = ["READY", "CREATING", "UPDATING", "DELETING"]
        versions = self.repo.in_states(states)
        return [Path(doc[PYTHON_KEY]) for _, doc in versions if doc.get(PYTHON_KEY)]

    def _require(self, project: str, model: str, version: str) -> dict[str, Any]:
        self._models.require(project, model)
        check_id(version, "name")
        doc = self.repo.get((project, model, version))
        if doc is None:
            raise ApiError(
                Code.NOT_FOUND, f"Version {VersionName(project, model, version)} does not exist."
            )
        return dict(doc)

    def _render(self, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        serving = self._serving.status(str(doc.get("name")))
        if serving is not None:
            rendered["cairnServing"] = serving
        parts = str(doc.get("name", "")).split("/")
        if len(parts) == 6:
            model_doc = self._models.repo.get((parts[1], parts[3]))
            if model_doc is not None and model_doc.get(DEFAULT_VERSION_KEY) == parts[5]:
                rendered["isDefault"] = True
        return rendered

    def _check_node_count(self, version: Version) -> None:
        auto = version.auto_scaling
        too_many = f"At most {self._max_nodes} nodes per version run on this server "
        too_many += "(CAIRN_MAX_NODES_PER_VERSION)."
        if serving_nodes(version) > self._max_nodes:
            raise invalid_field(
                "version.manual_scaling.nodes"
                if version.manual_scaling
                else "version.auto_scaling.min_nodes",
                too_many,
            )
        if auto is not None and (auto.max_nodes or 0) > self._max_nodes:
            raise invalid_field("version.auto_scaling.max_nodes", too_many)

    def _scaling(self, version: Version) -> dict[str, Any]:
        """The manager's arguments: fixed nodes, or autoscaling's bounds (maxNodes unset:
        the server's per-version limit)."""
        auto = version.auto_scaling
        if auto is None:
            return {"nodes": serving_nodes(version)}
        return {"autoscaling": NodeRange(auto.min_nodes or 0, auto.max_nodes or self._max_nodes)}

    def _check_packages(self, version: Version) -> None:
        """Each package exists now, as for a training job; what it installs is checked when
        the version deploys (a failed install fails the version with pip's words)."""
        for index, uri in enumerate(version.package_uris or []):
            if self._environments is None:
                raise ApiError(Code.UNIMPLEMENTED, "This server cannot install packageUris.")
            if not self._storage.local_path(uri).is_file():
                raise invalid_field(
                    f"version.package_uris[{index}]",
                    f"The package {uri} does not exist; upload it first "
                    "(cairn storage cp PACKAGE gs://BUCKET/PATH).",
                )

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()


def _refuse_if_busy(doc: dict[str, Any]) -> None:
    if doc.get("state") in BUSY_VERSION_STATES:
        raise failed_precondition(
            f"Version {doc['name']} is {doc['state']}; wait for its operation to finish "
            "(`cairn operations list`) and try again."
        )


def _settled(doc: dict[str, Any], state: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != OPERATION_KEY} | {"state": state}


def _patched(current: Version, patch: Version, paths: list[str]) -> Version:
    """`current` with the fields named by the update mask taken from `patch`."""
    if "description" in paths:
        current.description = patch.description
    if "labels" in paths:
        current.labels = patch.labels
    if "requestLoggingConfig" in paths:
        current.request_logging_config = patch.request_logging_config or RequestLoggingConfig()
    if "manualScaling.nodes" in paths:
        if current.auto_scaling is not None:
            raise invalid_field(
                "version.manual_scaling", "This version autoscales; manualScaling cannot be set."
            )
        current.manual_scaling = ManualScaling(
            nodes=(patch.manual_scaling or ManualScaling()).nodes
        )
    if {"autoScaling.minNodes", "autoScaling.maxNodes"} & set(paths):
        if current.manual_scaling is not None:
            raise invalid_field(
                "version.auto_scaling",
                "This version uses manual scaling; autoScaling cannot be set.",
            )
        scaling = current.auto_scaling or AutoScaling()
        new = patch.auto_scaling or AutoScaling()
        if "autoScaling.minNodes" in paths:
            scaling.min_nodes = new.min_nodes
        if "autoScaling.maxNodes" in paths:
            scaling.max_nodes = new.max_nodes
        current.auto_scaling = scaling
    validate_scaling(current)
    return current
