"""Models: create (synchronous), get, list, patch and delete (operations)."""

from __future__ import annotations

from typing import Any

from cairn.domain.errors import ApiError, Code, already_exists, failed_precondition, invalid_field
from cairn.domain.locations import DEFAULT_REGION
from cairn.domain.models import Model, check_description, check_labels, validate_new_model
from cairn.domain.names import ModelName, check_id, check_project
from cairn.domain.operations import EMPTY_TYPE, MODEL_TYPE
from cairn.services.operations import OperationService, operation_id
from cairn.services.projects import ProjectService
from cairn.services.records import ListRequest, list_page, new_etag, public
from cairn.store import DuplicateKeyError

# Keys of the stored model document: the id of its default version, and a flag set while
# a delete checks that no version remains (a version create seeing it backs out).
DEFAULT_VERSION_KEY = "_defaultVersion"
DELETING_KEY = "_deleting"
PATCHABLE = {"description", "labels", "defaultVersion.name", "default_version.name"}


class ModelService:
    def __init__(
        self,
        models: Any,
        versions: Any,
        projects: ProjectService,
        operations: OperationService,
    ) -> None:
        self.repo = models
        self._versions = versions
        self._projects = projects
        self._operations = operations
        self.on_change: list[Any] = []  # callbacks run after a change (routing tables)

    def create(self, project: str, body: Any) -> dict[str, Any]:
        self._projects.ensure(project)
        model = Model.parse(body, "model")
        model.default_version = None
        validate_new_model(model)
        model.regions = model.regions or [DEFAULT_REGION]
        model.etag = new_etag()
        short = str(model.name)
        model.name = str(ModelName(project, short))
        try:
            self.repo.insert((project, short), model.to_json())
        except DuplicateKeyError:
            raise already_exists(
                "model.name", "A model with the same name already exists."
            ) from None
        return self.get(project, short)

    def get(self, project: str, model: str) -> dict[str, Any]:
        return self.render(project, self.require(project, model))

    def require(self, project: str, model: str) -> dict[str, Any]:
        check_project(project)
        check_id(model, "name")
        doc = self.repo.get((project, model))
        if doc is None or doc.get(DELETING_KEY):
            raise ApiError(Code.NOT_FOUND, f"Model {ModelName(project, model)} does not exist.")
        return dict(doc)

    def still_accepts_versions(self, project: str, model: str) -> bool:
        doc = self.repo.get((project, model))
        return doc is not None and not doc.get(DELETING_KEY)

    def render(self, project: str, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        default = doc.get(DEFAULT_VERSION_KEY)
        if default:
            short = str(doc["name"]).rsplit("/", 1)[-1]
            version = self._versions.get((project, short, default))
            if version is not None:
                rendered["defaultVersion"] = {**public(version), "isDefault": True}
        return rendered

    def list(self, project: str, request: ListRequest) -> dict[str, Any]:
        self._projects.ensure(project)
        return list_page(
            self.repo,
            (project,),
            request,
            collection="models",
            render=lambda doc: self.render(project, doc),
        )

    def patch(self, project: str, model: str, body: Any, update_mask: str | None) -> dict[str, Any]:
        """Update description, labels or the default version; an operation done at once."""
        self.require(project, model)
        patch = Model.parse(body, "model")
        paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()]
        if not paths:
            raise invalid_field(
                "update_mask",
                "An update mask is required: description, labels or defaultVersion.name.",
            )
        for path in paths:
            if path not in PATCHABLE:
                raise invalid_field("update_mask", f"'{path}' cannot be updated on a model.")
        check_labels(patch.labels, "model.labels")
        check_description(patch.description, "model.description")
        new_default = self._new_default(project, model, patch) if _names_default(paths) else None
        op_id = operation_id("update", model)
        op = self._operations.begin(
            project, op_id, "UPDATE_MODEL", model_name=str(ModelName(project, model))
        )

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            updated = dict(doc)
            if "description" in paths:
                updated.pop("description", None)
                if patch.description:
                    updated["description"] = patch.description
            if "labels" in paths:
                updated.pop("labels", None)
                if patch.labels:
                    updated["labels"] = dict(patch.labels)
            if new_default is not None:
                updated[DEFAULT_VERSION_KEY] = new_default
            updated["etag"] = new_etag()
            return updated

        self.repo.update((project, model), apply)
        self._changed()
        self._operations.succeed(op["name"], {"@type": MODEL_TYPE, **self.get(project, model)})
        return self._operations.get(project, op_id)

    def _new_default(self, project: str, model: str, patch: Model) -> str:
        name = patch.default_version.name if patch.default_version else None
        if not name:
            raise invalid_field("model.default_version.name", "Name the new default version.")
        short = name.rsplit("/", 1)[-1]
        version = self._versions.get((project, model, short))
        if version is None:
            raise ApiError(Code.NOT_FOUND, f"Version {name} does not exist.")
        if version.get("state") != "READY":
            raise failed_precondition(
                f"Version {short} is {version.get('state')}; only a READY version "
                "can become the default."
            )
        return short

    def delete(self, project: str, model: str) -> dict[str, Any]:
        self.require(project, model)
        key = (project, model)
        # Mark first, then count: a version create racing this delete either is counted
        # here or sees the mark and backs out, so no version outlives its model.
        self.repo.update(key, lambda doc: {**doc, DELETING_KEY: True})
        if self._versions.count(key):
            self.repo.update(key, lambda doc: {k: v for k, v in doc.items() if k != DELETING_KEY})
            raise failed_precondition(
                f"Model {ModelName(project, model)} still has versions; delete them first "
                f"(`cairn versions list --model {model}`)."
            )
        op_id = operation_id("delete", model)
        op = self._operations.begin(
            project, op_id, "DELETE_MODEL", model_name=str(ModelName(project, model))
        )
        self.repo.delete(key)
        self._changed()
        self._operations.succeed(op["name"], {"@type": EMPTY_TYPE})
        return self._operations.get(project, op_id)

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()


def _names_default(paths: list[str]) -> bool:
    return bool({"defaultVersion.name", "default_version.name"} & set(paths))
