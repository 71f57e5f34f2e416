"""The fitted preparation saved beside a dataset, which serving loads to repeat it on raw rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.pipeline import Pipeline

ARTIFACT_NAME = "preparation.joblib"


@dataclass
class PreparationArtifact:
    """A fitted pipeline plus the columns it expects and produces, and the label it leaves out."""

    pipeline: Pipeline
    input_columns: list[str]
    output_columns: list[str]
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Prepared features of raw rows; columns the pipeline did not see in training are ignored."""
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"instances lack the columns {missing} that preparation needs.")
        return self.pipeline.transform(frame[self.input_columns])

    def transform_instances(self, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """AI Platform-style instances (one dict per row) in, prepared dicts out."""
        prepared = self.transform(pd.DataFrame(instances))
        return prepared.to_dict(orient="records")

    def optional_columns(self) -> list[str]:
        """Input columns the pipeline only drops, unread by any step before: serving lets
        instances leave them out (a client cannot know a flight's arrival time beforehand).

        A step's parameters name every column it reads, so a column named by none is unread;
        a step with empty `columns` reads them all, and then every column is needed.
        """
        read: set[str] = set()
        unused: list[str] = []
        for _, step in self.pipeline.steps:
            if not hasattr(step, "get_params"):
                continue  # "passthrough"
            params = step.get_params(deep=False)
            if type(step).__name__ == "DropColumns":
                dropped = getattr(step, "columns_", params.get("columns") or [])
                unused += [c for c in dropped if c in self.input_columns and c not in read]
                continue
            if "columns" in params and not params["columns"]:
                return []
            read.update(_names_in(params.values()))
        return [c for c in self.input_columns if c in set(unused)]

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / ARTIFACT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path


def _names_in(values: Any) -> set[str]:
    """Every string inside parameter values (lists, tuples and mappings searched too)."""
    names: set[str] = set()
    for value in values:
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, dict):
            names |= _names_in(value.keys()) | _names_in(value.values())
        elif isinstance(value, list | tuple | set):
            names |= _names_in(value)
    return names


def load_preparation(path: str | Path) -> PreparationArtifact:
    """Load `preparation.joblib` (or the folder holding it)."""
    target = Path(path)
    if target.is_dir():
        target = target / ARTIFACT_NAME
    artifact = joblib.load(target)
    if not isinstance(artifact, PreparationArtifact):
        raise ValueError(f"{target} does not hold a Cairn preparation artefact.")
    return artifact
