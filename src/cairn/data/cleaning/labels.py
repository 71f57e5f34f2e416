"""Labels that look wrong, found the way confident learning does.

Out-of-fold probabilities of a simple model give, for each class, the average confidence
the model has in examples labelled with it (the class threshold). An example whose given
label is improbable and that another class claims above that class's threshold is listed
for review, ranked by how little the model believes its given label. Nothing is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cairn.domain.errors import invalid_field


@dataclass(frozen=True)
class LabelIssue:
    """One instance whose label the model doubts."""

    index: Any
    given: Any
    suggested: Any
    self_confidence: float


def default_label_model(frame: pd.DataFrame) -> Pipeline:
    """Logistic regression over scaled numbers and one-hot categories: simple and fast."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", max_categories=50),
                ),
                other,
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1000))


def find_label_issues(
    frame: pd.DataFrame,
    label: str,
    features: Sequence[str] | None = None,
    model: ClassifierMixin | None = None,
    folds: int = 5,
    seed: int = 0,
) -> list[LabelIssue]:
    """Instances of `frame` whose `label` is improbable under out-of-fold predictions."""
    if label not in frame.columns:
        raise invalid_field("label_issues.label", f"no column {label!r} in the data.")
    features = list(features or [c for c in frame.columns if c != label])
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        raise invalid_field("label_issues.features", f"no columns {unknown} in the data.")
    data = frame.loc[frame[label].notna()]
    y = data[label].to_numpy()
    classes, counts = np.unique(y.astype(str), return_counts=True)
    if len(classes) < 2:
        raise invalid_field("label_issues.label", f"{label!r} has fewer than two classes.")
    folds = max(2, min(folds, int(counts.min())))
    estimator = clone(model) if model is not None else default_label_model(data[features])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y_text = y.astype(str)
    probabilities = cross_val_predict(
        estimator, data[features], y_text, cv=splitter, method="predict_proba"
    )
    given = np.searchsorted(classes, y_text)
    self_confidence = probabilities[np.arange(len(y)), given]
    thresholds = np.array([probabilities[given == k, k].mean() for k in range(len(classes))])
    above = probabilities >= thresholds
    above[np.arange(len(y)), given] = False
    masked = np.where(above, probabilities, -1.0)
    suggested = masked.argmax(axis=1)
    flagged = above.any(axis=1) & (self_confidence < thresholds[given])
    original = dict(zip(y_text, y, strict=True))
    issues = [
        LabelIssue(
            index=data.index[i],
            given=y[i],
            suggested=original.get(classes[suggested[i]], classes[suggested[i]]),
            self_confidence=float(self_confidence[i]),
        )
        for i in np.flatnonzero(flagged)
    ]
    return sorted(issues, key=lambda issue: issue.self_confidence)
