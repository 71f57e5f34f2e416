"""Models: create (synchronous), get, list, patch and delete (operations)."""

from __future__ import annotations

from typing import Any

from cairn.domain.errors import ApiError, Code, already_exists, failed_precondition, invalid_field
from cairn.domain.models import Model, check_labels, validate_new_model
from cairn.domain.names import ModelName, check_id
from cairn.domain.operations import EMPTY_TYPE, MODEL_TYPE
from cairn.services.operations import OperationService, operation_id
from cairn.services.projects import ProjectService
from cairn.services.records import list_page, new_etag, public
from cairn.store import DuplicateKeyError

DEFAULT_REGION = "us-central1"
# Key of the stored model document that names its default version (a version id).
DEFAULT_VERSION_KEY = "_defaultVersion"


class ModelService:
    def __init__(
        self,
        models: Any,
        versions: Any,
        projects: ProjectService,
        operations: OperationService,
    ) -> None:
        self._models = models
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
            self._models.insert((project, short), model.to_json())
        except DuplicateKeyError:
            raise already_exists(
                "model.name", "A model with the same name already exists."
            ) from None
        return self.get(project, short)

    def get(self, project: str, model: str) -> dict[str, Any]:
        return self.render(project, self.require(project, model))

    def require(self, project: str, model: str) -> dict[str, Any]:
        check_id(model, "name")
        doc = self._models.get((project, model))
        if doc is None:
            raise ApiError(Code.NOT_FOUND, f"Model {ModelName(project, model)} does not exist.")
        return dict(doc)

    def render(self, project: str, doc: dict[str, Any]) -> dict[str, Any]:
        rendered = public(doc)
        default = doc.get(DEFAULT_VERSION_KEY)
        if default:
            short = str(doc["name"]).rsplit("/", 1)[-1]
            version = self._versions.get((project, short, default))
            if version is not None:
                rendered["defaultVersion"] = {**public(version), "isDefault": True}
        return rendered

    def list(
        self,
        project: str,
        *,
        filter_text: str | None,
        page_size: int | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        self._projects.ensure(project)
        return list_page(
            self._models,
            (project,),
            collection="models",
            filter_text=filter_text,
            page_size=page_size,
            page_token=page_token,
            render=lambda doc: self.render(project, doc),
        )

    def patch(self, project: str, model: str, body: Any, update_mask: str | None) -> dict[str, Any]:
        """Update description, labels or the default version; an operation done at once."""
        self.require(project, model)
        patch = Model.parse(
            {k: v for k, v in (body or {}).items() if k != "defaultVersion"}, "model"
        )
        paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()]
        allowed = {"description", "labels", "defaultVersion.name", "default_version.name"}
        if not paths:
            raise invalid_field(
                "update_mask",
                "An update mask is required: description, labels or defaultVersion.name.",
            )
        for path in paths:
            if path not in allowed:
                raise invalid_field("update_mask", f"'{path}' cannot be updated on a model.")
        check_labels(patch.labels, "model.labels")
        new_default: str | None = None
        if {"defaultVersion.name", "default_version.name"} & set(paths):
            name = ((body or {}).get("defaultVersion") or {}).get("name")
            if not name:
                raise invalid_field("model.default_version.name", "Name the new default version.")
            new_default = str(name).rsplit("/", 1)[-1]
            version = self._versions.get((project, model, new_default))
            if version is None:
                raise ApiError(Code.NOT_FOUND, f"Version {name} does not exist.")
            if version.get("state") != "READY":
                raise failed_precondition(
                    f"Version {new_default} is {version.get('state')}; only a READY version "
                    "can become the default."
                )

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            updated = dict(doc)
            if "description" in paths:
                updated["description"] = patch.description or ""
                if not updated["description"]:
                    updated.pop("description")
            if "labels" in paths:
                if patch.labels:
                    updated["labels"] = dict(patch.labels)
                else:
                    updated.pop("labels", None)
            if new_default is not None:
                updated[DEFAULT_VERSION_KEY] = new_default
            updated["etag"] = new_etag()
            return updated

        self._models.update((project, model), apply)
        self._changed()
        model_name = str(ModelName(project, model))
        op = self._operations.begin(
            project, operation_id("update", model), "UPDATE_MODEL", model_name=model_name
        )
        self._operations.succeed(op["name"], {"@type": MODEL_TYPE, **self.get(project, model)})
        return self._operations.get(project, op["name"].rsplit("/", 1)[-1])

    def delete(self, project: str, model: str) -> dict[str, Any]:
        self.require(project, model)
        if self._versions.count((project, model)):
            raise failed_precondition(
                f"Model {ModelName(project, model)} still has versions; delete them first "
                "(`cairn versions list --model " + model + "`)."
            )
        model_name = str(ModelName(project, model))
        op = self._operations.begin(
            project, operation_id("delete", model), "DELETE_MODEL", model_name=model_name
        )
        self._models.delete((project, model))
        self._changed()
        self._operations.succeed(op["name"], {"@type": EMPTY_TYPE})
        return self._operations.get(project, op["name"].rsplit("/", 1)[-1])

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()
