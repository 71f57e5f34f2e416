"""Run a recipe: load, join, clean, split in DuckDB; fit the pipeline on train; write it all.

Before any real work the whole recipe is rehearsed on a small sample of every source, so a
bad column name or option fails in seconds with the recipe line that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from cairn.data.artifact import PreparationArtifact
from cairn.data.joins import join, union
from cairn.data.recipe import Recipe, Step, load_recipe
from cairn.data.sources import SourceSpec, load_source, quote_identifier
from cairn.data.split import SPLIT_COLUMN, SPLITS, SplitFractions, split
from cairn.data.steps import CLEAN_STEPS, PIPELINE_STEPS
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import ApiError
from cairn.storage import BucketStorage

Progress = Callable[[str], None]
_BATCH_ROWS = 200_000
_REHEARSAL_ROWS = 500


@dataclass
class PrepareResult:
    """Where the outputs went and what each step did."""

    output: Path
    files: dict[str, Path]
    reports: list[StepReport] = field(default_factory=list)
    artifact: Path | None = None
    report_html: Path | None = None


def build_pipeline(steps: list[Step]) -> Pipeline:
    """A scikit-learn Pipeline of the recipe's features and preprocess steps."""
    return Pipeline(
        [(f"{i}_{s.name}", PIPELINE_STEPS[s.name][1](s.options)) for i, s in enumerate(steps)]
        or [("identity", "passthrough")]
    )


def _assemble(ws: Workspace, recipe: Recipe, sample: int | None, reports: list[StepReport]) -> str:
    """Load sources and join/union them into one table; `sample` limits each source."""
    names: dict[str, str] = {}
    for name, spec in recipe.sources.items():
        try:
            loaded = load_source(ws.con, spec)
        except ApiError as error:
            raise recipe.error("sources", error.message, recipe.source_lines.get(name)) from error
        if sample:
            limited = f"_sample_{name}"
            ws.con.execute(
                f"CREATE OR REPLACE TABLE {quote_identifier(limited)} AS SELECT * FROM {quote_identifier(loaded)} LIMIT {sample}"
            )
            loaded = limited
        names[name] = loaded
    current = names[recipe.base]
    if recipe.union:
        current, step, _ = union(
            ws,
            [names[recipe.base], *[names[u] for u in recipe.union]],
            recipe.renames,
            recipe.normalize_names,
        )
        reports.append(step)
    for index, entry in enumerate(recipe.joins):
        try:
            previous = current
            current, step = join(
                ws,
                current,
                names[entry["source"]],
                entry["on"],
                entry.get("how", "left"),
                entry.get("many_to_one", True),
                entry.get("suffix"),
                entry.get("columns"),
                lazy=True,
            )
        except ApiError as error:
            line = recipe.join_lines[index] if index < len(recipe.join_lines) else None
            raise recipe.error("dataset", error.message, line) from error
        reports.append(step)
        ws.release(previous, current)
    if recipe.derive:
        current = _derive(ws, recipe, current, reports)
    elif recipe.joins:
        current = ws.materialize(current)
    return current


def _derive(ws: Workspace, recipe: Recipe, relation: str, reports: list[StepReport]) -> str:
    """Add the recipe's computed columns (DuckDB SQL expressions over the joined row)."""
    out = ws.new_name("derived")
    expressions = ", ".join(
        f"({expression}) AS {quote_identifier(name)}" for name, expression in recipe.derive.items()
    )
    try:
        ws.con.execute(
            f"CREATE TABLE {quote_identifier(out)} AS SELECT *, {expressions} "
            f"FROM {quote_identifier(relation)}"
        )
    except duckdb.Error as error:
        raise recipe.error("dataset", f"dataset.derive: {error}") from error
    reports.append(
        StepReport("derive", ws.count(relation), ws.count(out), {"columns": recipe.derive})
    )
    ws.release(relation, out)
    return out


def run_clean_steps(
    ws: Workspace,
    recipe: Recipe,
    steps: list[Step],
    relation: str,
    reports: list[StepReport],
    progress: Progress,
    section: str = "clean",
) -> str:
    """Run clean `steps` over `relation` in order; errors name `section` and the step's line.

    The recipe's own `clean:` and any per-source cleaning before joins both come through here.
    """
    for step in steps:
        progress(f"{section}: {step.name}")
        try:
            previous = relation
            relation, report = CLEAN_STEPS[step.name][1](ws, relation, step.options)
        except ApiError as error:
            raise recipe.error(section, f"step {step.name}: {error.message}", step.line) from error
        reports.append(report)
        ws.release(previous, relation)
    return relation


def _split(ws: Workspace, recipe: Recipe, relation: str) -> tuple[str, StepReport]:
    options = recipe.split
    try:
        fractions = SplitFractions.from_mapping(
            options.get("fractions", {}), options.get("enforce_order", True)
        )
        label = options.get("label") or recipe.label
        method = options.get("method", "random")
        return split(
            ws, relation, fractions, method, label, options.get("key"), options.get("seed", 0)
        )
    except ApiError as error:
        raise recipe.error("split", error.message) from error


def _feature_columns(frame: pd.DataFrame, label: str | None) -> list[str]:
    return [c for c in frame.columns if c not in (label, SPLIT_COLUMN)]


def _fit_pipeline(recipe: Recipe, train: pd.DataFrame) -> PreparationArtifact:
    """Fit every features/preprocess step in order on the training rows."""
    pipeline = build_pipeline(recipe.pipeline)
    columns = _feature_columns(train, recipe.label)
    frame = train[columns]
    for (_name, transformer), step in zip(pipeline.steps, recipe.pipeline, strict=False):
        try:
            frame = transformer.fit(frame).transform(frame)
        except ApiError as error:
            raise recipe.error(
                "features", f"step {step.name}: {error.message}", step.line
            ) from error
    return PreparationArtifact(
        pipeline, columns, list(frame.columns), recipe.label, {"recipe": str(recipe.path)}
    )


def rehearse(recipe: Recipe) -> None:
    """Run the whole recipe on the first rows of each source; raise at the first mistake."""
    reports: list[StepReport] = []
    with Workspace() as ws:
        relation = _assemble(ws, recipe, _REHEARSAL_ROWS, reports)
        relation = run_clean_steps(ws, recipe, recipe.clean, relation, reports, lambda _: None)
        if recipe.label and recipe.label not in ws.frame(relation).columns:
            raise recipe.error("label", f"no column {recipe.label!r} in the prepared data.")
        relation, _ = _split(ws, recipe, relation)
        frame = ws.frame(relation)
        if len(frame):
            _fit_pipeline(recipe, frame)


def _write_split(
    ws: Workspace,
    relation: str,
    name: str,
    target: Path,
    fmt: str,
    artifact: PreparationArtifact | None,
) -> Path:
    """Write one split, transforming it in batches so memory stays flat."""
    path = target / f"{name}.{fmt}"
    query = f"SELECT * EXCLUDE ({SPLIT_COLUMN}) FROM {quote_identifier(relation)} WHERE {SPLIT_COLUMN} = '{name}'"
    if (
        artifact is None
        or not artifact.pipeline.steps
        or artifact.pipeline.steps[0][1] == "passthrough"
    ):
        options = {
            "parquet": "FORMAT parquet",
            "csv": "FORMAT csv, HEADER",
            "jsonl": "FORMAT json",
        }[fmt]
        ws.con.execute(f"COPY ({query}) TO '{path.as_posix()}' ({options})")
        return path
    reader: Any = ws.con.sql(query).to_arrow_reader(_BATCH_ROWS)
    writer: pq.ParquetWriter | None = None
    first = True
    with path.open("w") if fmt != "parquet" else _null() as handle:
        for batch in reader:
            raw = batch.to_pandas()
            prepared = artifact.transform(raw)
            if artifact.label and artifact.label in raw.columns:
                prepared[artifact.label] = raw[artifact.label].to_numpy()
            if fmt == "parquet":
                table = pa.Table.from_pandas(prepared, preserve_index=False)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table.cast(writer.schema))
            elif fmt == "csv":
                prepared.to_csv(handle, header=first, index=False)
            else:
                prepared.to_json(handle, orient="records", lines=True, date_format="iso")
            first = False
    if fmt == "parquet" and writer is None:
        pq.write_table(
            pa.table({c: pa.array([], pa.null()) for c in artifact.output_columns}), path
        )
    if writer is not None:
        writer.close()
    return path


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def stage_count(recipe: Recipe, report: bool | None = None) -> int:
    """How many progress messages `prepare` sends for `recipe`, for a progress bar's total."""
    writes_report = report if report is not None else recipe.output.get("report", True)
    return (
        3
        + len(recipe.clean)
        + (1 if recipe.pipeline else 0)
        + len(SPLITS)
        + (1 if writes_report else 0)
    )


def prepare(
    recipe_or_path: Recipe | str | Path,
    output: str | Path | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = None,
    report: bool | None = None,
    buckets: BucketStorage | None = None,
) -> PrepareResult:
    """Run a recipe end to end; outputs go to `output` (else the recipe's `output.path`).

    `gs://` paths in the recipe are files in `buckets` (default: the configured home's).
    """
    progress = progress or (lambda _: None)
    recipe = (
        recipe_or_path
        if isinstance(recipe_or_path, Recipe)
        else load_recipe(recipe_or_path, buckets)
    )
    progress("checking the recipe on a sample")
    rehearse(recipe)
    target = Path(output or recipe.output.get("path") or recipe.path.parent / "prepared")
    target.mkdir(parents=True, exist_ok=True)
    fmt = recipe.output.get("format", "parquet")
    reports: list[StepReport] = []
    with Workspace(memory_limit=memory_limit) as ws:
        progress("loading and joining sources")
        relation = _assemble(ws, recipe, None, reports)
        relation = run_clean_steps(ws, recipe, recipe.clean, relation, reports, progress)
        progress("splitting")
        previous = relation
        relation, split_report = _split(ws, recipe, relation)
        ws.release(previous, relation)
        reports.append(split_report)
        artifact = None
        artifact_path = None
        if recipe.pipeline:
            progress("fitting the preparation pipeline on train")
            train = ws.con.execute(
                f"SELECT * FROM {quote_identifier(relation)} WHERE {SPLIT_COLUMN} = 'train'"
            ).df()
            artifact = _fit_pipeline(recipe, train)
            del train
            artifact_path = artifact.save(target)
        files = {}
        for name in SPLITS:
            progress(f"writing {name}")
            files[name] = _write_split(ws, relation, name, target, fmt, artifact)
        result = PrepareResult(target, files, reports, artifact_path)
        (target / "report.json").write_text(
            json.dumps([_report_json(r) for r in reports], indent=2, default=str)
        )
        if report if report is not None else recipe.output.get("report", True):
            progress("writing the HTML report")
            from cairn.data.report_html import write_prepare_report

            result.report_html = write_prepare_report(
                ws, relation, reports, target / "report.html", recipe
            )
    return result


def _report_json(report: StepReport) -> dict[str, Any]:
    return {
        "step": report.step,
        "rows_before": report.rows_before,
        "rows_after": report.rows_after,
        "details": report.details,
    }


def read_table(spec: SourceSpec | str | Path) -> pd.DataFrame:
    """Any supported source as a DataFrame (small data; use a Workspace for big data)."""
    if not isinstance(spec, SourceSpec):
        spec = SourceSpec(name="source", path=str(spec))
    with Workspace() as ws:
        return ws.frame(load_source(ws.con, spec))
