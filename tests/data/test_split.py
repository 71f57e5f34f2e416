"""Splits: sizes, stratification, key-hash stability, seeds, and the size-order rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cairn.data import SplitFractions, Workspace, hash_fraction, split, split_frame
from cairn.data.split import split_sizes, write_splits
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


def test_hash_split_of_repeated_keys_uses_a_key_table_and_matches_hash_fraction() -> None:
    keys = [f"k{i % 50}" for i in range(1000)] + [None] * 10
    frame = pd.DataFrame({"key": keys, "x": range(1010)})
    with Workspace() as ws:
        table = ws.register_frame(frame)
        before = {r[0] for r in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        out, report = split(ws, table, method="hash", key="key")
        made = {r[0] for r in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert [t for t in made - before if t.startswith("_split_keys")], "keys repeat: one table"
        rows = ws.frame(out)
        # Unique keys: MD5 per row instead, the same rule.
        unique, _ = split(
            ws,
            ws.register_frame(frame.assign(key=frame.index.astype(str))),
            method="hash",
            key="key",
        )
        per_row = ws.frame(unique)
    for frame_out in (rows, per_row):
        for key, name in frame_out[["key", "_split"]].itertuples(index=False):
            if pd.isna(key):
                assert name == "test"  # like MD5 of NULL: past every cut
            else:
                share = hash_fraction(key)
                assert name == ("train" if share < 0.8 else "validation" if share < 0.9 else "test")
    assert sum(report.details["sizes"].values()) == report.rows_after == 1010


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_write_splits_names_files_and_counts_rows(tmp_path: Path, fmt: str) -> None:
    frame = labelled(500)
    tmp_path = tmp_path / "o'brien"  # a quote in the folder must reach SQL escaped
    tmp_path.mkdir()
    with Workspace() as ws:
        table = ws.register_frame(frame)
        out, report = split(
            ws, table, SplitFractions(0.7, 0.3, 0.0), "hash", key="id", measure=False
        )
        assert "sizes" not in report.details
        paths, sizes = write_splits(ws, out, tmp_path, fmt)
        expected = split_sizes(ws, out, None)["sizes"]
    assert paths == {n: tmp_path / f"{n}.{fmt}" for n in ("train", "validation", "test")}
    assert sizes == expected and sizes["test"] == 0 and sum(sizes.values()) == 500
    read = {"parquet": pd.read_parquet, "csv": pd.read_csv, "jsonl": _read_jsonl}[fmt]
    parts = {n: read(p) for n, p in paths.items() if sizes[n]}
    assert sorted(pd.concat(parts.values())["id"]) == list(range(500))
    assert list(parts["train"].columns) == ["id", "x", "y"]  # no _split column
    assert paths["test"].exists(), "an empty split still gets its file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_pipeline_output_streams_one_read_into_three_files(tmp_path: Path, fmt: str) -> None:
    from cairn.data import prepare

    labelled(300).to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "recipe.yaml").write_text(
        "sources:\n  rows: {path: rows.parquet}\nlabel: y\n"
        "split: {method: hash, key: id, fractions: {train: 0.6, validation: 0.4, test: 0.0},"
        " enforce_order: false}\n"
        "preprocess:\n  - {step: scale, columns: [x]}\n"
        f"output: {{path: out, format: {fmt}, report: false}}\n"
    )
    result = prepare(tmp_path / "recipe.yaml")
    sizes = next(r for r in result.reports if r.step.startswith("split")).details["sizes"]
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    train = read(result.files["train"])
    assert len(train) == sizes["train"] and sizes["train"] + sizes["validation"] == 300
    assert train["x"].mean() == pytest.approx(0, abs=1e-9)  # scaled on train
    assert sizes["test"] == 0 and result.files["test"].exists()
    ids = [*train["id"], *read(result.files["validation"])["id"]]
    assert sorted(ids) == list(range(300))
    for row_id in train["id"].head(20):
        assert hash_fraction(row_id) < 0.6


@pytest.mark.parametrize("pipeline", [False, True])
def test_keep_order_survives_a_key_hash_split_and_a_value_map_over_many_row_groups(
    tmp_path: Path, pipeline: bool
) -> None:
    """Hash joins reorder rows over several threads; the written files must not."""
    from cairn.data import prepare

    n = 320_000
    rng = np.random.default_rng(3)
    spellings = np.array(["Bern", "bern ", "BERN", "Basel", "basel", "Zug"])
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "flight": np.arange(n) % 997,
            "city": spellings[rng.integers(0, len(spellings), n)],
            "x": rng.normal(size=n),
        }
    )
    frame = pd.concat([frame, frame.iloc[: n // 10]], ignore_index=True)  # later copies
    frame.to_parquet(tmp_path / "rows.parquet", row_group_size=20_000)
    features = "features:\n  - {step: scale, columns: [x]}\n" if pipeline else ""
    (tmp_path / "recipe.yaml").write_text(
        "sources:\n  rows: {path: rows.parquet}\n"
        "clean:\n  - {step: drop_duplicates, keep_order: true}\n"
        "  - {step: spellings, columns: [city]}\n"
        f"{features}"
        "split: {method: hash, key: flight, seed: 2}\n"
        "output: {path: out, report: false}\n"
    )
    result = prepare(tmp_path / "recipe.yaml")
    total = 0
    for path in result.files.values():
        written = pd.read_parquet(path)
        assert "_cairn_pos" not in written.columns
        ids = written["id"].to_numpy()
        assert (np.diff(ids) > 0).all(), f"{path.name} is out of first-seen order"
        total += len(ids)
    assert total == n
