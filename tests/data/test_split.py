"""Splits: sizes, stratification, key-hash stability, seeds, and the size-order rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cairn.data import SplitFractions, Workspace, hash_fraction, split, split_frame
from cairn.domain.errors import ApiError


def labelled(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"id": np.arange(n), "x": rng.normal(size=n), "y": (rng.random(n) < 0.1).astype(int)}
    )


def test_stratified_split_keeps_class_balance_and_sizes() -> None:
    frame = labelled()
    parts = split_frame(
        frame, {"train": 0.7, "validation": 0.2, "test": 0.1}, "stratified", label="y", seed=3
    )
    assert [len(p) for p in parts.values()] == pytest.approx([1400, 400, 200], abs=2)
    rate = frame["y"].mean()
    for part in parts.values():
        assert part["y"].mean() == pytest.approx(rate, abs=0.005)
    assert sorted(pd.concat(parts.values())["id"]) == list(range(2000))


def test_random_split_is_reproducible_with_a_seed_and_changes_with_another() -> None:
    frame = labelled()
    first = split_frame(frame, seed=7)
    again = split_frame(frame, seed=7)
    other = split_frame(frame, seed=8)
    assert first["test"]["id"].tolist() == again["test"]["id"].tolist()
    assert first["test"]["id"].tolist() != other["test"]["id"].tolist()
    assert len(first["train"]) > len(first["validation"]) > 0


def test_hash_split_puts_a_key_in_the_same_split_whatever_else_is_there() -> None:
    frame = labelled()
    whole = split_frame(frame, method="hash", key="id")
    half = split_frame(frame.iloc[::2], method="hash", key="id")
    for name in whole:
        assert set(half[name]["id"]) <= set(whole[name]["id"])
    for key in whole["test"]["id"].head(20):
        assert hash_fraction(key) >= 0.9
    for key in whole["train"]["id"].head(20):
        assert hash_fraction(key) < 0.8


def test_split_reports_class_balance() -> None:
    with Workspace() as ws:
        table = ws.register_frame(labelled())
        _, report = split(ws, table, SplitFractions(0.8, 0.1, 0.1), "stratified", label="y")
    assert set(report.details["class_balance"]) == {"train", "validation", "test"}
    assert report.details["class_balance"]["test"]["1"] == pytest.approx(0.1, abs=0.01)


def test_sizes_must_run_train_validation_test_unless_overridden() -> None:
    with pytest.raises(ApiError, match="train > validation >= test"):
        SplitFractions.from_mapping({"train": 0.3, "validation": 0.5, "test": 0.2})
    SplitFractions.from_mapping({"train": 0.3, "validation": 0.5, "test": 0.2}, enforce_order=False)
    with pytest.raises(ApiError, match="add up to 1"):
        SplitFractions.from_mapping({"train": 0.8, "validation": 0.3, "test": 0.1})
    with pytest.raises(ApiError, match="needs `key:`"):
        split_frame(labelled(), method="hash")
