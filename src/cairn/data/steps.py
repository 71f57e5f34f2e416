"""The step names a recipe may use, the options each takes, and how each is built or run.

One table drives validation (unknown step, unknown option, wrong type) and execution, so
what the recipe accepts is exactly what the runner can do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.base import TransformerMixin

from cairn.data import cleaning
from cairn.data.transformers import (
    Arithmetic,
    CategoryEncoder,
    DateTimeParts,
    FeatureCross,
    FrequencyEncoder,
    HtmlStripper,
    InstanceKey,
    MissingImputer,
    OutlierClipper,
    Scaler,
    SpellingNormalizer,
    SunPosition,
    TextVectorizer,
    UnitConverter,
)
from cairn.data.transformers.columns import DropColumns
from cairn.data.workspace import POSITION, StepReport, Workspace

STR, LIST, DICT, BOOL, NUM, INT = str, list, dict, bool, (int, float), int


@dataclass(frozen=True)
class StepSpec:
    """Options a step accepts (name -> accepted Python types) and which of them are required."""

    options: dict[str, Any]
    required: tuple[str, ...] = ()


def _clean_missing(ws: Workspace, rel: str, o: dict[str, Any]) -> tuple[str, StepReport]:
    strategy = o.get("strategy", "drop")
    if strategy == "drop":
        return cleaning.drop_missing(ws, rel, o.get("columns"))
    return cleaning.impute_missing(
        ws, rel, o.get("columns") or [], strategy, o.get("fill_value"), o.get("indicator", False)
    )


def _clean_label_issues(ws: Workspace, rel: str, o: dict[str, Any]) -> tuple[str, StepReport]:
    limit = int(o.get("max_rows", 100_000))
    # The sample reads every row: store the input first if that would redo costly work.
    rel = ws.reusable(rel)
    # Number the rows first so the issues name positions in the whole table, not the sample;
    # positions follow the read order, so DuckDB keeps it for this one query.
    kept = ws.preserve_order
    ws.set_preserve_order(True)
    try:
        frame = ws.con.execute(
            f'SELECT * FROM (SELECT row_number() OVER () - 1 AS _cairn_row, * FROM "{rel}") '
            f"USING SAMPLE {limit} ROWS (reservoir, 0)"
        ).df()
    finally:
        ws.set_preserve_order(kept)
    frame = frame.set_index("_cairn_row").drop(columns=[POSITION], errors="ignore")
    issues = cleaning.find_label_issues(
        frame, o["label"], o.get("features"), folds=int(o.get("folds", 5))
    )
    count = ws.count(rel)
    listed = [
        {
            "row": int(i.index),
            "given": str(i.given),
            "suggested": str(i.suggested),
            "confidence": round(i.self_confidence, 4),
        }
        for i in issues[:200]
    ]
    return rel, StepReport(
        "label_issues",
        count,
        count,
        {"flagged": len(issues), "checked_rows": len(frame), "issues": listed},
    )


CLEAN_STEPS: dict[
    str, tuple[StepSpec, Callable[[Workspace, str, dict[str, Any]], tuple[str, StepReport]]]
] = {
    "drop_duplicates": (
        StepSpec({"columns": LIST, "keep_order": BOOL}),
        # A recipe's ordered dedupe carries positions: its writes restore first-seen order.
        lambda ws, r, o: cleaning.drop_duplicates(
            ws, r, o.get("columns"), o.get("keep_order", False), carry_position=True
        ),
    ),
    "missing": (
        StepSpec(
            {
                "columns": LIST,
                "strategy": STR,
                "fill_value": (str, int, float, bool),
                "indicator": BOOL,
            }
        ),
        _clean_missing,
    ),
    "spellings": (
        StepSpec(
            {"columns": LIST, "synonyms": DICT, "merge_suggestions": BOOL, "similarity": NUM},
            ("columns",),
        ),
        lambda ws, r, o: cleaning.normalize_spellings(
            ws,
            r,
            o["columns"],
            o.get("synonyms"),
            o.get("merge_suggestions", False),
            float(o.get("similarity", 0.85)),
        ),
    ),
    "units": (
        StepSpec(
            {"column": STR, "unit": STR, "default_unit": STR, "target": STR, "on_unparsed": STR},
            ("column",),
        ),
        lambda ws, r, o: cleaning.normalize_units(
            ws,
            r,
            o["column"],
            o.get("unit"),
            o.get("default_unit"),
            o.get("target"),
            o.get("on_unparsed", "fail"),
        ),
    ),
    "outliers": (
        StepSpec({"columns": LIST, "method": STR, "action": STR, "threshold": NUM}, ("columns",)),
        lambda ws, r, o: cleaning.handle_outliers(
            ws, r, o["columns"], o.get("method", "iqr"), o.get("action", "flag"), o.get("threshold")
        ),
    ),
    "label_issues": (
        StepSpec({"label": STR, "features": LIST, "folds": INT, "max_rows": INT}, ("label",)),
        _clean_label_issues,
    ),
}

PIPELINE_STEPS: dict[str, tuple[StepSpec, Callable[[dict[str, Any]], TransformerMixin]]] = {
    "impute": (
        StepSpec(
            {
                "columns": LIST,
                "strategy": STR,
                "fill_value": (str, int, float, bool),
                "indicator": BOOL,
            }
        ),
        lambda o: MissingImputer(
            o.get("columns"),
            o.get("strategy", "median"),
            o.get("fill_value"),
            o.get("indicator", False),
        ),
    ),
    "spellings": (
        StepSpec({"columns": LIST, "synonyms": DICT}, ("columns",)),
        lambda o: SpellingNormalizer(o["columns"], o.get("synonyms")),
    ),
    "units": (
        StepSpec(
            {"columns": LIST, "unit": STR, "default_unit": STR, "on_unparsed": STR}, ("columns",)
        ),
        lambda o: UnitConverter(
            o["columns"], o.get("unit"), o.get("default_unit"), o.get("on_unparsed", "fail")
        ),
    ),
    "clip": (
        StepSpec({"columns": LIST, "method": STR, "threshold": NUM}),
        lambda o: OutlierClipper(o.get("columns"), o.get("method", "iqr"), o.get("threshold")),
    ),
    "cross": (
        StepSpec({"columns": LIST, "name": STR}, ("columns",)),
        lambda o: FeatureCross(o["columns"], o.get("name")),
    ),
    "frequency": (
        StepSpec({"columns": LIST, "normalize": BOOL}, ("columns",)),
        lambda o: FrequencyEncoder(o["columns"], o.get("normalize", False)),
    ),
    "datetime_parts": (
        StepSpec({"columns": LIST, "parts": LIST}, ("columns",)),
        lambda o: DateTimeParts(o["columns"], o.get("parts", ["month", "dayofweek", "hour"])),
    ),
    "sun_position": (
        StepSpec(
            {"latitude": STR, "longitude": STR, "time": STR, "prefix": STR},
            ("latitude", "longitude", "time"),
        ),
        lambda o: SunPosition(o["latitude"], o["longitude"], o["time"], o.get("prefix", "sun")),
    ),
    "ratio": (
        StepSpec({"left": STR, "right": STR, "name": STR}, ("left", "right")),
        lambda o: Arithmetic(o["left"], o["right"], "ratio", o.get("name")),
    ),
    "difference": (
        StepSpec({"left": STR, "right": STR, "name": STR}, ("left", "right")),
        lambda o: Arithmetic(o["left"], o["right"], "difference", o.get("name")),
    ),
    "scale": (
        StepSpec({"columns": LIST, "method": STR}),
        lambda o: Scaler(o.get("columns"), o.get("method", "zscore")),
    ),
    "strip_html": (StepSpec({"columns": LIST}, ("columns",)), lambda o: HtmlStripper(o["columns"])),
    "text": (
        StepSpec({"column": STR, "kind": STR, "max_features": INT}, ("column",)),
        lambda o: TextVectorizer(
            o["column"], o.get("kind", "tfidf"), int(o.get("max_features", 100))
        ),
    ),
    "onehot": (
        StepSpec({"columns": LIST, "max_categories": INT}, ("columns",)),
        lambda o: CategoryEncoder(o["columns"], "onehot", o.get("max_categories", 50)),
    ),
    "ordinal": (
        StepSpec({"columns": LIST}, ("columns",)),
        lambda o: CategoryEncoder(o["columns"], "ordinal", None),
    ),
    "key": (
        StepSpec({"columns": LIST, "name": STR, "kind": STR}),
        lambda o: InstanceKey(o.get("columns"), o.get("name", "key"), o.get("kind", "hash")),
    ),
    "drop": (StepSpec({"columns": LIST}, ("columns",)), lambda o: DropColumns(o["columns"])),
}
