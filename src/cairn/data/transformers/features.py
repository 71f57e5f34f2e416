"""Feature engineering as fitted steps: crosses, frequencies, date parts, sun, ratios."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cairn.data.sun import sun_position
from cairn.data.transformers.base import FrameTransformer, as_text
from cairn.domain.errors import invalid_field

DATE_PARTS = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "dayofweek",
    "dayofyear",
    "quarter",
    "is_weekend",
)
ARITHMETIC = ("ratio", "difference", "product", "sum")


class FeatureCross(FrameTransformer):
    """One categorical column holding the combination of several (`JFK x LAX`)."""

    def __init__(
        self, columns: Sequence[str] = (), name: str | None = None, separator: str = "_x_"
    ) -> None:
        self.columns = columns
        self.name = name
        self.separator = separator

    def fit(self, X: Any, y: Any = None) -> FeatureCross:
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        if len(self.columns_) < 2:
            raise invalid_field("cross.columns", "a cross needs at least two columns.")
        self.name_ = self.name or "_x_".join(self.columns_)
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        parts = [as_text(frame[c]) for c in self.columns_]
        crossed = parts[0]
        for part in parts[1:]:
            crossed = crossed + self.separator + part
        frame[self.name_] = crossed
        return frame


class FrequencyEncoder(FrameTransformer):
    """How often each value occurred in training (count or share); unseen values get 0."""

    def __init__(
        self, columns: Sequence[str] | None = None, normalize: bool = False, suffix: str = "_freq"
    ) -> None:
        self.columns = columns
        self.normalize = normalize
        self.suffix = suffix

    def fit(self, X: Any, y: Any = None) -> FrequencyEncoder:
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self.frequencies_ = {
            c: as_text(frame[c]).value_counts(normalize=self.normalize).to_dict()
            for c in self.columns_
        }
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            table = self.frequencies_[column]
            frame[column + self.suffix] = as_text(frame[column]).map(table).fillna(0).astype(float)
        return frame


class DateTimeParts(FrameTransformer):
    """Calendar parts of a timestamp column as numbers (`time_hour` -> `time_hour_month`, ...)."""

    def __init__(
        self, columns: Sequence[str] = (), parts: Sequence[str] = ("month", "dayofweek", "hour")
    ) -> None:
        self.columns = columns
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DateTimeParts:
        unknown = [p for p in self.parts if p not in DATE_PARTS]
        if unknown:
            raise invalid_field(
                "datetime_parts.parts", f"unknown parts {unknown}; use {', '.join(DATE_PARTS)}."
            )
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            stamps = pd.to_datetime(frame[column], errors="coerce", utc=True)
            for part in self.parts:
                if part == "is_weekend":
                    values = (stamps.dt.day_of_week >= 5).astype(float)
                else:
                    attribute = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(
                        part, part
                    )
                    values = getattr(stamps.dt, attribute).astype(float)
                frame[f"{column}_{part}"] = values.where(stamps.notna(), np.nan)
        return frame


class SunPosition(FrameTransformer):
    """The sun's elevation and azimuth (degrees) at each row's place and time."""

    def __init__(
        self, latitude: str = "lat", longitude: str = "lon", time: str = "time", prefix: str = "sun"
    ) -> None:
        self.latitude = latitude
        self.longitude = longitude
        self.time = time
        self.prefix = prefix

    def fit(self, X: Any, y: Any = None) -> SunPosition:
        frame = self._start_fit(X)
        self._columns(frame, [self.latitude, self.longitude, self.time])
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        elevation, azimuth = sun_position(
            pd.to_numeric(frame[self.latitude], errors="coerce"),
            pd.to_numeric(frame[self.longitude], errors="coerce"),
            frame[self.time],
        )
        frame[f"{self.prefix}_elevation"] = elevation
        frame[f"{self.prefix}_azimuth"] = azimuth
        return frame


class Arithmetic(FrameTransformer):
    """`left / right` (ratio), `left - right`, `left * right` or `left + right` as a new column."""

    def __init__(
        self, left: str = "", right: str = "", kind: str = "ratio", name: str | None = None
    ) -> None:
        self.left = left
        self.right = right
        self.kind = kind
        self.name = name

    def fit(self, X: Any, y: Any = None) -> Arithmetic:
        if self.kind not in ARITHMETIC:
            raise invalid_field(
                f"{self.kind}.kind", f"unknown kind {self.kind!r}; use {', '.join(ARITHMETIC)}."
            )
        frame = self._start_fit(X)
        self._columns(frame, [self.left, self.right], numeric=True)
        self.name_ = self.name or f"{self.left}_{self.kind}_{self.right}"
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        left = pd.to_numeric(frame[self.left], errors="coerce").astype(float)
        right = pd.to_numeric(frame[self.right], errors="coerce").astype(float)
        if self.kind == "ratio":
            result = left / right.where(right != 0, np.nan)
        elif self.kind == "difference":
            result = left - right
        elif self.kind == "product":
            result = left * right
        else:
            result = left + right
        frame[self.name_] = result
        return frame
