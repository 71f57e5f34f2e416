"""Cleaning rules fitted on training rows, so serving repairs raw instances the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cairn.data.cleaning.spellings import canonical_key, spelling_map
from cairn.data.cleaning.units import parse_quantity
from cairn.data.transformers.base import FrameTransformer, as_text
from cairn.domain.errors import invalid_field

IMPUTE_STRATEGIES = ("mean", "median", "mode", "constant")


class MissingImputer(FrameTransformer):
    """Fill missing values with the training mean/median/mode or a constant; optionally flag them."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        strategy: str = "median",
        fill_value: Any = None,
        add_indicator: bool = False,
    ) -> None:
        self.columns = columns
        self.strategy = strategy
        self.fill_value = fill_value
        self.add_indicator = add_indicator

    def fit(self, X: Any, y: Any = None) -> MissingImputer:
        if self.strategy not in IMPUTE_STRATEGIES:
            raise invalid_field(
                "impute.strategy",
                f"unknown strategy {self.strategy!r}; use {', '.join(IMPUTE_STRATEGIES)}.",
            )
        frame = self._start_fit(X)
        numeric = self.strategy in ("mean", "median")
        self.columns_ = self._columns(frame, self.columns, numeric=numeric and not self.columns)
        self.fill_values_: dict[str, Any] = {}
        for column in self.columns_:
            values = frame[column]
            if self.strategy == "constant":
                fill = self.fill_value if self.fill_value is not None else 0
            elif self.strategy == "mode":
                modes = values.mode(dropna=True)
                fill = modes.iloc[0] if len(modes) else self.fill_value
            else:
                numbers = pd.to_numeric(values, errors="coerce")
                fill = numbers.mean() if self.strategy == "mean" else numbers.median()
            self.fill_values_[column] = fill
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            missing = frame[column].isna()
            if self.add_indicator:
                frame[f"{column}_missing"] = missing.astype(np.int8)
            if missing.any():
                frame[column] = frame[column].where(~missing, self.fill_values_[column])
                if self.strategy in ("mean", "median"):
                    frame[column] = pd.to_numeric(frame[column], errors="coerce")
        return frame


class SpellingNormalizer(FrameTransformer):
    """Rewrite spellings of one category to the most frequent training spelling."""

    def __init__(
        self, columns: Sequence[str] | None = None, synonyms: Mapping[str, str] | None = None
    ) -> None:
        self.columns = columns
        self.synonyms = synonyms

    def fit(self, X: Any, y: Any = None) -> SpellingNormalizer:
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self.targets_: dict[str, dict[str, str]] = {}
        for column in self.columns_:
            counts = as_text(frame[column].dropna()).value_counts()
            mapping = spelling_map(dict(counts.items()), self.synonyms)
            synonym_keys = {canonical_key(k): v for k, v in (self.synonyms or {}).items()}
            by_key = {canonical_key(value): target for value, target in mapping.items()}
            by_key.update({k: v for k, v in synonym_keys.items() if k not in by_key})
            self.targets_[column] = by_key
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            targets = self.targets_[column]
            frame[column] = frame[column].map(
                lambda v, t=targets: v if pd.isna(v) else t.get(canonical_key(str(v)), str(v))
            )
        return frame


class UnitConverter(FrameTransformer):
    """Parse quantities written in mixed units into numbers in one `unit` (NaN when unreadable)."""

    def __init__(
        self, columns: Sequence[str] | None = None, unit: str = "m", default_unit: str | None = None
    ) -> None:
        self.columns = columns
        self.unit = unit
        self.default_unit = default_unit

    def fit(self, X: Any, y: Any = None) -> UnitConverter:
        return self._fit_columns_only(X)  # type: ignore[no-any-return]

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            frame[column] = [
                parse_quantity(v, self.unit, self.default_unit) if not _is_missing(v) else np.nan
                for v in frame[column]
            ]
        return frame


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


class OutlierClipper(FrameTransformer):
    """Clip numeric columns to fences learnt on training rows (IQR or z-score)."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        method: str = "iqr",
        threshold: float | None = None,
    ) -> None:
        self.columns = columns
        self.method = method
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        if self.method not in ("iqr", "zscore"):
            raise invalid_field(
                "clip.method", f"unknown method {self.method!r}; use iqr or zscore."
            )
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns, numeric=True)
        self.bounds_: dict[str, tuple[float, float]] = {}
        for column in self.columns_:
            values = pd.to_numeric(frame[column], errors="coerce").dropna().to_numpy(dtype=float)
            if values.size == 0:
                self.bounds_[column] = (-np.inf, np.inf)
            elif self.method == "iqr":
                k = 1.5 if self.threshold is None else self.threshold
                q1, q3 = np.percentile(values, [25, 75])
                self.bounds_[column] = (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
            else:
                z = 3.0 if self.threshold is None else self.threshold
                mean, sd = values.mean(), values.std()
                self.bounds_[column] = (mean - z * sd, mean + z * sd)
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column, (low, high) in self.bounds_.items():
            frame[column] = pd.to_numeric(frame[column], errors="coerce").clip(low, high)
        return frame
