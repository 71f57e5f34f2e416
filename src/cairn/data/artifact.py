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

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / ARTIFACT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path


def load_preparation(path: str | Path) -> PreparationArtifact:
    """Load `preparation.joblib` (or the folder holding it)."""
    target = Path(path)
    if target.is_dir():
        target = target / ARTIFACT_NAME
    artifact = joblib.load(target)
    if not isinstance(artifact, PreparationArtifact):
        raise ValueError(f"{target} does not hold a Cairn preparation artefact.")
    return artifact
