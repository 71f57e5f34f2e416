"""Statistics on binned counts: PSI, KS and chi-squared p-values, Benjamini-Hochberg."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

PSI_EPSILON = 1e-4


def psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bins, shares below PSI_EPSILON raised to it."""
    r = np.clip(reference / max(reference.sum(), 1), PSI_EPSILON, None)
    c = np.clip(current / max(current.sum(), 1), PSI_EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def decile_groups(reference: np.ndarray) -> np.ndarray:
    """Merge ordered fine bins into the reference's deciles: bin j joins decile
    floor(10 * share of the reference below bin j)."""
    total = max(reference.sum(), 1)
    below = np.concatenate([[0.0], np.cumsum(reference)[:-1]]) / total
    return np.minimum(9, np.floor(below * 10 + 1e-9)).astype(int)


def numeric_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, float]:
    """(PSI over reference deciles, KS statistic, KS p-value) from ordered bin counts."""
    groups = decile_groups(reference)
    psi = psi_from_counts(
        np.bincount(groups, reference, minlength=10), np.bincount(groups, current, minlength=10)
    )
    n_ref, n_cur = float(reference.sum()), float(current.sum())
    gap = np.abs(np.cumsum(reference) / n_ref - np.cumsum(current) / n_cur)
    ks = float(gap.max())
    m, n = sorted([n_ref, n_cur], reverse=True)
    effective = m * n / (m + n)
    # scipy's ks_2samp asymptotics; the limiting distribution once kstwo gets slow (~13 ms).
    if effective <= 10_000:
        p = float(stats.kstwo.sf(ks, round(effective)))
    else:
        p = float(stats.kstwobign.sf(ks * math.sqrt(effective)))
    return psi, ks, min(1.0, max(p, 0.0))


def category_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(PSI over categories, chi-squared p-value); sparse categories pooled for the test."""
    psi = psi_from_counts(reference, current)
    both = reference + current
    keep = both >= 10
    table = np.array([reference[keep], current[keep]])
    if (~keep).any():
        table = np.column_stack([table, [reference[~keep].sum(), current[~keep].sum()]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return psi, 1.0
    return psi, float(stats.chi2_contingency(table, correction=False)[1])


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Adjusted p-values (q-values) controlling the false discovery rate over all tests."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def place_among(values: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Counts of `values` by the decile of `others` they fall in (both over the same bins)."""
    below = (np.cumsum(others) - others / 2) / max(others.sum(), 1)
    return np.bincount(np.minimum(9, (below * 10).astype(int)), values, minlength=10)
