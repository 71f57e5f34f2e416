"""Cleaning rules fitted on training rows, so serving repairs raw instances the same way."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cairn.data.cleaning.spellings import canonical_key, spelling_map
from cairn.data.cleaning.units import (
    check_on_unparsed,
    is_missing_text,
    parse_quantity,
    read_column,
    unparsed_message,
)
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
    """Parse quantities written in mixed units into numbers in one unit (NaN when unreadable).

    `fit` reads each column as the clean step does (cleaning.units.read_column): the target
    unit (`unit`, else the column's most frequent one), the unit of bare numbers
    (`default_unit`, else the most frequent one of the target's kind) and the decimal mark.
    Unreadable training values fail the fit (`on_unparsed="fail"`), become NaN with a
    `<column>_unparsed` indicator (`"flag"`) or become NaN (`"missing"`). At serving a value
    it cannot read is NaN, never an error, so one odd request does not fail a batch; numbers
    sent as numbers are in the unit bare numbers were learnt in (the target unit when the
    training rows had none).
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        unit: str | None = None,
        default_unit: str | None = None,
        on_unparsed: str = "fail",
    ) -> None:
        self.columns = columns
        self.unit = unit
        self.default_unit = default_unit
        self.on_unparsed = on_unparsed

    def fit(self, X: Any, y: Any = None) -> UnitConverter:
        check_on_unparsed(self.on_unparsed, "UnitConverter.on_unparsed")
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self.units_: dict[str, str] = {}
        self.default_units_: dict[str, str | None] = {}
        self.decimal_commas_: dict[str, bool | None] = {}
        self.mixed_marks_: dict[str, bool] = {}
        for column in self.columns_:
            counts = frame[column].dropna().astype(str).value_counts()
            read = read_column(dict(counts.items()), self.unit, self.default_unit, "units")
            if read.unparsed and self.on_unparsed == "fail":
                raise invalid_field("units.on_unparsed", unparsed_message(column, read, len(frame)))
            self.units_[column] = read.target
            # Instances may send numbers the training rows never had.
            self.default_units_[column] = read.default or read.target
            self.decimal_commas_[column] = read.decimal_comma
            self.mixed_marks_[column] = read.mixed_marks
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            unit, default = self.units_[column], self.default_units_[column]
            decimal_comma = self.decimal_commas_[column]
            mixed = self.mixed_marks_.get(column, False)
            read: dict[Any, float] = {}
            numbers = np.full(len(frame), np.nan)
            unparsed = np.zeros(len(frame), dtype=bool)
            for row, value in enumerate(frame[column]):
                if _is_missing(value):
                    continue
                # By type too: True == 1 == 1.0 as dict keys, but only 1 and 1.0 are numbers.
                key = (type(value), value if isinstance(value, Hashable) else str(value))
                if key not in read:
                    read[key] = parse_quantity(value, unit, default, decimal_comma, mixed)
                numbers[row] = read[key]
                unparsed[row] = math.isnan(read[key]) and not is_missing_text(str(value))
            frame[column] = numbers
            if self.on_unparsed == "flag":
                frame[f"{column}_unparsed"] = unparsed
        return frame

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Converters pickled before units were learnt per column read every column in
        # `unit`, bare numbers in `default_unit`, and NaN for what they could not read.
        if "columns_" in state and "units_" not in state:
            columns = state["columns_"]
            state["units_"] = dict.fromkeys(columns, state.get("unit") or "m")
            state["default_units_"] = dict.fromkeys(columns, state.get("default_unit"))
            state["decimal_commas_"] = dict.fromkeys(columns)
        state.setdefault("mixed_marks_", dict.fromkeys(state.get("columns_", ()), False))
        if state.get("on_unparsed", "null") == "null":  # the mode's earlier name
            state["on_unparsed"] = "missing"
        super().__setstate__(state)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)


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
