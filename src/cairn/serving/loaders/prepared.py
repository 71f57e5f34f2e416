"""Raw instances through the preparation `cairn data prepare` fitted, then the model.

A model directory holding `preparation.joblib` beside its model file is served on raw
instances: the node applies the preparation and the model in one process, with the very
pipeline that produced the training data, so training and serving cannot drift apart.

Which instances are raw: an object (`{"carrier": "UA", "dep_delay": 4, ...}`, keyed by the
columns of the recipe's dataset) goes through the preparation; a list of numbers is taken
as an already prepared row and goes straight to the model. A request mixing both is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cairn.serving.errors import InvalidInputs, ModelLoadError, PredictionError
from cairn.serving.loaders.base import RowPredictor


class PreparedPredictor(RowPredictor):
    """A row model behind the fitted preparation.

    `to_matrix` only checks raw instances and returns them as a one-column object array;
    `predict_matrix` prepares the rows and calls the model. So the node, which stacks the
    matrices of concurrent requests, runs the preparation once for all of them: its cost
    (pandas work per column and step) hardly depends on the number of rows. `prepare` is
    the float matrix the model is fed.
    """

    def __init__(self, model: RowPredictor, preparation: Any, path: Path) -> None:
        self.model = model
        self.framework = model.framework
        self.preparation = preparation
        self.input_columns = [str(c) for c in preparation.input_columns]
        optional = getattr(preparation, "optional_columns", None)
        self.optional_columns = [str(c) for c in optional()] if callable(optional) else []
        self.required_columns = [c for c in self.input_columns if c not in self.optional_columns]
        self.model_columns = _model_columns(model, list(preparation.output_columns), path)
        self.n_features = len(self.model_columns)

    def to_matrix(self, instances: list[Any]) -> np.ndarray | None:
        raw = [isinstance(instance, dict) for instance in instances]
        if all(raw):
            self.check_columns(instances)
            rows = np.empty((len(instances), 1), dtype=object)
            rows[:, 0] = instances
            return rows
        if any(raw):
            index = raw.index(not raw[0])
            raise InvalidInputs(
                f"instance 0 is {'an object' if raw[0] else 'a list'} but instance {index} is "
                f"{'an object' if raw[index] else 'a list'}; send raw instances (objects keyed "
                "by column) or prepared rows (lists of features), not both in one request."
            )
        return self.model.to_matrix(instances)

    def check_columns(self, instances: list[dict[str, Any]]) -> None:
        """InvalidInputs naming the first instance that lacks a column the preparation reads."""
        required = self.required_columns
        for index, instance in enumerate(instances):
            missing = [c for c in required if c not in instance]
            if missing:
                raise InvalidInputs(
                    f"instance {index} lacks {_columns_text(missing)} that the model's "
                    f"preparation needs. Raw instances are objects with the columns "
                    f"{required} (null for unknown values); extra keys are ignored."
                )

    def prepare(self, instances: list[dict[str, Any]]) -> np.ndarray:
        """The float matrix the model is fed for raw instances (one row per instance)."""
        import pandas as pd

        self.check_columns(instances)
        frame = pd.DataFrame.from_records(instances)
        for column in self.optional_columns:
            if column not in frame.columns:
                frame[column] = None  # only dropped by the preparation, never read
        try:
            prepared = self.preparation.transform(frame)
            return np.asarray(prepared[self.model_columns], dtype=np.float64)
        except Exception as error:  # noqa: BLE001 - a transformer raises anything on odd values
            raise PredictionError(
                f"Exception during preparation of the instances: {type(error).__name__}: {error}"
            ) from None

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        if matrix.dtype == object:
            matrix = self._prepared(matrix)
        return self.model.predict_matrix(matrix)

    def predict_objects(self, instances: list[Any]) -> Any:
        return self.model.predict_objects(instances)

    def _prepared(self, matrix: np.ndarray) -> np.ndarray:
        """Raw rows prepared; with a one-feature model, prepared rows of other requests may
        have been stacked in with them, and pass as they are."""
        column = matrix[:, 0]
        raw = np.fromiter((isinstance(v, dict) for v in column), dtype=bool, count=len(column))
        if raw.all():
            return self.prepare(list(column))
        out = np.empty((len(column), len(self.model_columns)), dtype=np.float64)
        out[~raw] = matrix[~raw].astype(np.float64)
        if raw.any():
            out[raw] = self.prepare(list(column[raw]))
        return out


def load_preparation_file(path: Path) -> Any:
    """The fitted preparation object in `path` (a Cairn PreparationArtifact, duck-typed)."""
    try:
        import joblib

        preparation = joblib.load(path)
    except Exception as error:  # noqa: BLE001 - unpickling raises anything
        raise ModelLoadError(
            f"Could not load the preparation in {path}: {type(error).__name__}: {error}. "
            "Copy the preparation.joblib that `cairn data prepare` wrote for the model's "
            "training data, or remove it to serve prepared rows only."
        ) from None
    lacking = [
        name
        for name in ("transform", "input_columns", "output_columns")
        if not hasattr(preparation, name)
    ]
    if lacking:
        raise ModelLoadError(
            f"{path} holds a {type(preparation).__name__}, not the preparation that "
            f"`cairn data prepare` writes (it lacks {', '.join(lacking)})."
        )
    return preparation


def _model_columns(model: RowPredictor, output_columns: list[str], path: Path) -> list[str]:
    """The prepared columns in the order the model was trained on them."""
    estimator = getattr(model, "model", None) or getattr(model, "estimator", None)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:  # an XGBoost Booster keeps the names of the DataFrame it was fed
        names = getattr(getattr(model, "booster", None), "feature_names", None)
    if names is None:
        if model.n_features is not None and model.n_features != len(output_columns):
            raise ModelLoadError(
                f"The preparation in {path} produces {len(output_columns)} features but the "
                f"model expects {model.n_features}; copy the preparation that made this "
                "model's training data."
            )
        return output_columns
    names = [str(name) for name in names]
    unknown = [name for name in names if name not in output_columns]
    if unknown:
        raise ModelLoadError(
            f"The model was trained on columns the preparation in {path} does not produce: "
            f"{unknown[:10]}; copy the preparation that made this model's training data."
        )
    return names


def _columns_text(columns: list[str]) -> str:
    if len(columns) == 1:
        return f"the column {columns[0]!r}"
    return f"the columns {columns}"
