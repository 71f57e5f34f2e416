"""Preprocessing fitted on train: scaling, HTML stripping, text vectors, encodings, keys."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from cairn.data.transformers.base import FrameTransformer, as_text
from cairn.domain.errors import invalid_field

SCALERS = ("zscore", "minmax", "robust")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def strip_html(text: Any) -> Any:
    """Visible text of an HTML fragment: tags, scripts and styles removed, entities decoded."""
    if not isinstance(text, str):
        return text
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


class Scaler(FrameTransformer):
    """Normalise numeric columns: z-score, min-max to [0, 1], or robust (median / IQR)."""

    def __init__(self, columns: Sequence[str] | None = None, method: str = "zscore") -> None:
        self.columns = columns
        self.method = method

    def fit(self, X: Any, y: Any = None) -> Scaler:
        if self.method not in SCALERS:
            raise invalid_field(
                "scale.method", f"unknown method {self.method!r}; use {', '.join(SCALERS)}."
            )
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns, numeric=True)
        self.center_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        for column in self.columns_:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            if values.size == 0:
                center, scale = 0.0, 1.0
            elif self.method == "zscore":
                center, scale = float(values.mean()), float(values.std())
            elif self.method == "minmax":
                center, scale = float(values.min()), float(values.max() - values.min())
            else:
                q1, median, q3 = np.percentile(values, [25, 50, 75])
                center, scale = float(median), float(q3 - q1)
            self.center_[column] = center
            self.scale_[column] = scale if scale > 0 else 1.0
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            values = pd.to_numeric(frame[column], errors="coerce").astype(float)
            frame[column] = (values - self.center_[column]) / self.scale_[column]
        return frame


class HtmlStripper(FrameTransformer):
    """Replace HTML in text columns by its visible text."""

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> HtmlStripper:
        return self._fit_columns_only(X)  # type: ignore[no-any-return]

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            frame[column] = frame[column].map(strip_html)
        return frame


class TextVectorizer(FrameTransformer):
    """Bag of words or TF-IDF of one text column, vocabulary fitted on train; replaces the column."""

    def __init__(
        self,
        column: str = "text",
        kind: str = "tfidf",
        max_features: int = 100,
        prefix: str | None = None,
    ) -> None:
        self.column = column
        self.kind = kind
        self.max_features = max_features
        self.prefix = prefix

    def fit(self, X: Any, y: Any = None) -> TextVectorizer:
        if self.kind not in ("bow", "tfidf"):
            raise invalid_field("text.kind", f"unknown kind {self.kind!r}; use bow or tfidf.")
        frame = self._start_fit(X)
        self._columns(frame, [self.column])
        factory = TfidfVectorizer if self.kind == "tfidf" else CountVectorizer
        self.vectorizer_ = factory(max_features=self.max_features)
        self.vectorizer_.fit(frame[self.column].fillna("").astype(str))
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        matrix = self.vectorizer_.transform(frame[self.column].fillna("").astype(str)).toarray()
        prefix = self.prefix or f"{self.column}_"
        names = [f"{prefix}{word}" for word in self.vectorizer_.get_feature_names_out()]
        vectors = pd.DataFrame(matrix, columns=names, index=frame.index)
        return pd.concat([frame.drop(columns=[self.column]), vectors], axis=1)


class CategoryEncoder(FrameTransformer):
    """One-hot or ordinal codes learnt on train; unknown categories get all zeros or -1."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        kind: str = "onehot",
        max_categories: int | None = 50,
    ) -> None:
        self.columns = columns
        self.kind = kind
        self.max_categories = max_categories

    def fit(self, X: Any, y: Any = None) -> CategoryEncoder:
        if self.kind not in ("onehot", "ordinal"):
            raise invalid_field(
                "encode.kind", f"unknown kind {self.kind!r}; use onehot or ordinal."
            )
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self.categories_: dict[str, list[str]] = {}
        for column in self.columns_:
            counts = as_text(frame[column].dropna()).value_counts()
            kept = counts.index[: self.max_categories] if self.max_categories else counts.index
            self.categories_[column] = sorted(kept)
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        for column in self.columns_:
            categories = self.categories_[column]
            values = as_text(frame[column]).where(frame[column].notna(), None)
            if self.kind == "ordinal":
                codes = {c: i for i, c in enumerate(categories)}
                frame[column] = values.map(codes).fillna(-1).astype(np.int64)
            else:
                encoded = {f"{column}={c}": (values == c).astype(np.int8) for c in categories}
                frame = pd.concat(
                    [frame.drop(columns=[column]), pd.DataFrame(encoded, index=frame.index)], axis=1
                )
        return frame


class InstanceKey(FrameTransformer):
    """A stable key per instance: SHA-1 of the columns that identify it."""

    def __init__(
        self, columns: Sequence[str] | None = None, name: str = "key", kind: str = "hash"
    ) -> None:
        self.columns = columns
        self.name = name
        self.kind = kind

    def fit(self, X: Any, y: Any = None) -> InstanceKey:
        if self.kind == "sequence":
            # A fitted step sees one batch (or one request) at a time, so numbers would
            # restart in every batch and every prediction: never a stable key.
            raise invalid_field(
                "key.kind",
                "kind 'sequence' cannot give stable keys in a fitted pipeline; use kind: hash "
                "over the columns that identify an instance.",
            )
        if self.kind != "hash":
            raise invalid_field("key.kind", f"unknown kind {self.kind!r}; use hash.")
        frame = self._start_fit(X)
        self.columns_ = self._columns(frame, self.columns)
        self._finish(self.transform(frame))
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._start_transform(X)
        joined = (
            frame[self.columns_].apply(as_text).agg("\x1f".join, axis=1)
            if len(frame)
            else pd.Series([], dtype=str)
        )
        frame[self.name] = [hashlib.sha1(v.encode()).hexdigest()[:16] for v in joined]  # noqa: S324
        return frame
