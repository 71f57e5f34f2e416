"""What every Cairn transformer shares: DataFrames in and out, and the estimator contract.

`fit` learns only attributes ending in `_` and returns self; `transform` refuses to run
unfitted and never modifies its input. Arrays are accepted too (columns become x0, x1, ...),
so they clone, pickle and take part in Pipelines like any scikit-learn transformer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cairn.domain.errors import invalid_field


def as_text(values: pd.Series) -> pd.Series:
    """Category text that does not depend on how the column happened to be typed.

    The same integer column reads as int64, nullable Int64 or float64 (when it has gaps)
    depending on where it came from; 1545, 1545.0 and "1545" must all be "1545", or a
    pipeline fitted on one typing would not recognise values seen through another.
    """
    text = values.astype(str)
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.notna() & np.isfinite(values) & (values % 1 == 0)
        text[whole] = values[whole].astype("int64").astype(str)
    return text.where(values.notna(), "nan")


def as_frame(X: Any) -> pd.DataFrame:
    """A copy of `X` as a DataFrame; arrays and lists of dicts are accepted."""
    if isinstance(X, pd.DataFrame):
        return X.copy()
    if isinstance(X, list) and X and isinstance(X[0], dict):
        return pd.DataFrame(X)
    array = np.asarray(X)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"Expected 2D data, got an array with {array.ndim} dimensions.")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


class FrameTransformer(TransformerMixin, BaseEstimator):
    """Base for transformers that read named columns of a DataFrame and return a DataFrame."""

    def _columns(
        self, frame: pd.DataFrame, columns: Sequence[str] | None, numeric: bool = False
    ) -> list[str]:
        chosen = (
            list(columns)
            if columns
            else [
                c for c in frame.columns if not numeric or pd.api.types.is_numeric_dtype(frame[c])
            ]
        )
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            raise invalid_field(
                f"{type(self).__name__}.columns",
                f"no column(s) {missing}; the data has {list(frame.columns)}.",
            )
        text = [c for c in chosen if numeric and not pd.api.types.is_numeric_dtype(frame[c])]
        if text:
            raise invalid_field(
                f"{type(self).__name__}.columns",
                f"column(s) {text} hold text, and this step works on numbers only; "
                "convert them first (e.g. with units) or leave them out.",
            )
        return chosen

    def _start_fit(self, X: Any) -> pd.DataFrame:
        frame = as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        return frame

    def _fit_columns_only(self, X: Any) -> Any:
        """`fit` of a transformer that learns nothing but which of its `columns` exist."""
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, getattr(self, "columns", None))
        self._finish(self.transform(frame))
        return self

    def _start_transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "n_features_in_")
        frame = as_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: input lacks columns {missing} seen in fit.")
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def _finish(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.feature_names_out_ = list(frame.columns)
        return frame

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
