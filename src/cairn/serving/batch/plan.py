"""A batch-prediction job's plan: the model, the input split into shares, the output.

The server writes it once when the job starts; every worker reads it, and a restarted
server reads it again to resume the shards that have not finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_PREFIX = "prediction.results"
ERRORS_PREFIX = "prediction.errors_stats"


@dataclass(frozen=True)
class BatchPlan:
    model_dir: str  # local directory of the model
    framework: str | None  # None: detected from the files
    data_format: str  # JSON, TEXT, CSV, TF_RECORD or TF_RECORD_GZIP
    output_format: str  # JSON or CSV
    output_dir: str  # local directory the shards' files go to
    batch_size: int
    # shares[i]: the input pieces of shard i, as {"path", "uri", "size", "start", "end"}
    shares: list[list[dict[str, Any]]] = field(default_factory=list)
    signature_name: str | None = None
    prediction_class: str | None = None
    python: str | None = None  # interpreter of the version's environment; None: the server's

    @property
    def shards(self) -> int:
        return len(self.shares)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchPlan:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @classmethod
    def read(cls, path: Path) -> BatchPlan:
        return cls.from_json(json.loads(path.read_text()))


def results_name(shard: int, shards: int) -> str:
    return f"{RESULTS_PREFIX}-{shard:05d}-of-{shards:05d}"


def errors_name(shard: int, shards: int) -> str:
    return f"{ERRORS_PREFIX}-{shard:05d}-of-{shards:05d}"


def done_path(work_dir: Path, shard: int) -> Path:
    return work_dir / "shards" / f"{shard}.done.json"


def progress_path(work_dir: Path, shard: int) -> Path:
    return work_dir / "shards" / f"{shard}.progress.json"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
