"""Dropping columns the model should not see (raw text, identifiers) at the end of a pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from cairn.data.transformers.base import FrameTransformer


class DropColumns(FrameTransformer):
    """Remove `columns`; columns already absent are ignored so serving can pass fewer fields."""

    def __init__(self, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> DropColumns:
        return self._fit_columns_only(X)  # type: ignore[no-any-return]

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        return frame.drop(columns=[c for c in self.columns_ if c in frame.columns])
