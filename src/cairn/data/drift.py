"""Drift between two slices of a column: population stability index and Kolmogorov-Smirnov."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

PSI_FLAG = 0.2  # the customary "significant shift" threshold
KS_FLAG = 0.1


@dataclass(frozen=True)
class DriftResult:
    column: str
    reference: str
    current: str
    psi: float
    ks: float | None
    flagged: bool


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI = sum((c - r) * ln(c / r)) over reference-quantile bins (or categories)."""
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty:
        return float("nan")
    if pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(current):
        edges = np.unique(np.quantile(reference.astype(float), np.linspace(0, 1, bins + 1)))
        if edges.size < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        edges[0], edges[-1] = -np.inf, np.inf
        r = np.histogram(reference.astype(float), edges)[0]
        c = np.histogram(current.astype(float), edges)[0]
    else:
        categories = sorted(set(reference.astype(str)) | set(current.astype(str)))
        r = reference.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
        c = current.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    r_share = np.clip(r / r.sum(), 1e-6, None)
    c_share = np.clip(c / c.sum(), 1e-6, None)
    return float(np.sum((c_share - r_share) * np.log(c_share / r_share)))


def ks_statistic(reference: pd.Series, current: pd.Series) -> float | None:
    """The two-sample KS statistic for numeric columns, None for others."""
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty or not pd.api.types.is_numeric_dtype(reference):
        return None
    return float(stats.ks_2samp(reference.astype(float), current.astype(float)).statistic)


def compare(
    column: str, reference_name: str, reference: pd.Series, current_name: str, current: pd.Series
) -> DriftResult:
    """PSI and KS of one column between two slices, flagged when either passes its threshold."""
    p = psi(reference, current)
    k = ks_statistic(reference, current)
    flagged = (not np.isnan(p) and p > PSI_FLAG) or (
        k is not None and k > KS_FLAG and p > PSI_FLAG / 2
    )
    return DriftResult(
        column,
        reference_name,
        current_name,
        round(p, 4),
        None if k is None else round(k, 4),
        bool(flagged),
    )
