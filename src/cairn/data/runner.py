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
from cairn.data.joins import join, left_key_columns, parse_match, union
from cairn.data.recipe import Recipe, Step, load_recipe
from cairn.data.sources import SourceSpec, columns_of, load_source, quote_identifier
from cairn.data.split import (
    SPLIT_COLUMN,
    SPLITS,
    SplitFractions,
    class_balance,
    ordered_rows,
    split,
    write_splits,
)
from cairn.data.steps import CLEAN_STEPS, PIPELINE_STEPS
from cairn.data.workspace import POSITION, StepReport, Workspace
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
    warnings: list[str] = field(default_factory=list)


def build_pipeline(steps: list[Step]) -> Pipeline:
    """A scikit-learn Pipeline of the recipe's features and preprocess steps."""
    return Pipeline(
        [(f"{i}_{s.name}", PIPELINE_STEPS[s.name][1](s.options)) for i, s in enumerate(steps)]
        or [("identity", "passthrough")]
    )


def _assemble(
    ws: Workspace,
    recipe: Recipe,
    sample: int | None,
    reports: list[StepReport],
    progress: Progress | None = None,
) -> str:
    """Load sources, clean each one its recipe entry cleans, then union and join them.

    `sample` limits each source (the rehearsal); joins are then not judged on their match
    rate, since a sample of a lookup lacks keys the whole lookup has.
    """
    progress = progress or (lambda _: None)
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
        if recipe.source_clean.get(name):
            first = len(reports)
            loaded = run_clean_steps(
                ws,
                recipe,
                recipe.source_clean[name],
                loaded,
                reports,
                progress,
                section=f"sources.{name}.clean",
            )
            for report in reports[first:]:
                report.step = f"{report.step} ({name})"
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
    read = {current, *names.values()}
    # Many-to-one left joins keep the rows of the table they start from, so each join's
    # match rate comes from key counts over that table's key columns rather than from a
    # run of the lazy joins before it; a match that rewrites a key column ends that.
    counts_from: str | None = current
    unchanged = set(columns_of(ws.con, current))
    for index, entry in enumerate(recipe.joins):
        how, many_to_one = entry.get("how", "left"), entry.get("many_to_one", True)
        try:
            current, step = join(
                ws,
                current,
                names[entry["source"]],
                entry["on"],
                how,
                many_to_one,
                entry.get("suffix"),
                entry.get("columns"),
                lazy=True,
                match=parse_match(entry.get("match")),
                max_unmatched=None if sample else entry.get("max_unmatched", recipe.max_unmatched),
                on_unmatched=entry.get("on_unmatched", recipe.on_unmatched),
                counts_from=counts_from
                if counts_from and set(left_key_columns(entry["on"])) <= unchanged
                else None,
                name=entry["source"],
            )
        except ApiError as error:
            line = recipe.join_lines[index] if index < len(recipe.join_lines) else None
            raise recipe.error("dataset", error.message, line) from error
        reports.append(step)
        ws.note_count(current, step.rows_after)  # known from key counts: no count pass later
        if how != "left" or not many_to_one:
            counts_from = None
        unchanged -= set(step.details.get("match", {}).get("columns", []))
    if recipe.derive:
        current = _derive(ws, recipe, current, reports)
    # The joins stay a view: the clean steps store rows only where one must see them all.
    # Drop the tables the result no longer reads (the workspace keeps any a view still reads).
    for relation in read - {current}:
        ws.release(relation, current)
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
    # Derived columns never add or drop rows: count the stored table, not the lazy joins.
    rows = ws.count(out)
    reports.append(StepReport("derive", rows, rows, {"columns": recipe.derive}))
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
            relation, report = _run_step(ws, step, relation)
            if ws.checking:
                # Steps compose views that run only when the splits are written; the
                # rehearsal runs each at once, so a mistake the data reveals names its step.
                ws.con.execute(f"SELECT * FROM {quote_identifier(relation)}").fetchall()
        except ApiError as error:
            raise recipe.error(section, f"step {step.name}: {error.message}", step.line) from error
        except duckdb.Error as error:
            raise recipe.error(section, f"step {step.name}: {error}", step.line) from error
        reports.append(report)
        ws.release(previous, relation)
    return relation


def _run_step(ws: Workspace, step: Step, relation: str) -> tuple[str, StepReport]:
    """One clean step; if it runs out of memory, once more over its input stored as a table.

    A lazy input (several joins) and the step's own aggregate then share DuckDB's memory;
    stored first, each has it to itself and spills on its own.
    """
    run = CLEAN_STEPS[step.name][1]
    try:
        return run(ws, relation, step.options)
    except duckdb.OutOfMemoryException:
        if not ws.costly(relation) and ws.tables_read(relation) == {relation}:
            raise  # its input is a stored table already: storing it again would not help
    stored = ws.materialize(relation)
    out, report = run(ws, stored, step.options)
    ws.release(stored, out)  # a step that stores its own result no longer needs the copy
    report.details["stored_input"] = (
        "ran out of memory over its lazy input; ran again over the input stored as a table"
    )
    return out, report


def _split(
    ws: Workspace, recipe: Recipe, relation: str, measure: bool = True
) -> tuple[str, StepReport]:
    options = recipe.split
    try:
        fractions = SplitFractions.from_mapping(
            options.get("fractions", {}), options.get("enforce_order", True)
        )
        label = options.get("label") or recipe.label
        method = options.get("method", "random")
        return split(
            ws,
            relation,
            fractions,
            method,
            label,
            options.get("key"),
            options.get("seed", 0),
            measure=measure,
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
        ws.checking = True
        relation = _assemble(ws, recipe, _REHEARSAL_ROWS, reports)
        relation = run_clean_steps(ws, recipe, recipe.clean, relation, reports, lambda _: None)
        if recipe.label and recipe.label not in ws.frame(relation).columns:
            raise recipe.error("label", f"no column {recipe.label!r} in the prepared data.")
        relation, _ = _split(ws, recipe, relation)
        frame = ws.frame(relation)
        if len(frame):
            _fit_pipeline(recipe, frame)


def _write_splits(
    ws: Workspace,
    relation: str,
    target: Path,
    fmt: str,
    artifact: PreparationArtifact | None,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write train/validation/test from `relation`; return paths and row counts.

    Without a fitted pipeline DuckDB writes each file itself (see `write_splits`); with one,
    a single read streams batches through the pipeline into three writers, so memory stays
    flat and the rows are read once.
    """
    if (
        artifact is None
        or not artifact.pipeline.steps
        or artifact.pipeline.steps[0][1] == "passthrough"
    ):
        return write_splits(ws, relation, target, fmt)
    writers = {name: _SplitWriter(target / f"{name}.{fmt}", fmt) for name in SPLITS}
    sizes = dict.fromkeys(SPLITS, 0)
    try:
        # One read in first-seen order where the rows carry their positions.
        rows = ordered_rows(ws, relation, keep_split=True)
        reader: Any = ws.con.sql(rows).to_arrow_reader(_BATCH_ROWS)
        for batch in reader:
            raw = batch.to_pandas()
            names = raw.pop(SPLIT_COLUMN).to_numpy()
            prepared = artifact.transform(raw)
            if artifact.label and artifact.label in raw.columns:
                prepared[artifact.label] = raw[artifact.label].to_numpy()
            for name, writer in writers.items():
                chosen = names == name
                if chosen.any():
                    writer.write(prepared[chosen])
                    sizes[name] += int(chosen.sum())
    finally:
        for writer in writers.values():
            writer.close(artifact.output_columns)
    return {name: writer.path for name, writer in writers.items()}, sizes


class _SplitWriter:
    """One split's file, written batch by batch."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._parquet: pq.ParquetWriter | None = None
        self._text = path.open("w") if fmt != "parquet" else None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self._text is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._parquet = self._parquet or pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        elif self.fmt == "csv":
            frame.to_csv(self._text, header=self._first, index=False)
        else:
            frame.to_json(self._text, orient="records", lines=True, date_format="iso")
        self._first = False

    def close(self, columns: list[str]) -> None:
        if self._text is not None:
            self._text.close()
        elif self._parquet is not None:
            self._parquet.close()
        else:  # an empty split still gets a file naming its columns
            pq.write_table(pa.table({c: pa.array([], pa.null()) for c in columns}), self.path)


def _keeps_order(recipe: Recipe) -> bool:
    """Whether a dedupe in the recipe asks for first-seen order, which the outputs then keep."""
    steps = [*recipe.clean, *(s for group in recipe.source_clean.values() for s in group)]
    return any(s.name == "drop_duplicates" and s.options.get("keep_order") for s in steps)


def stage_count(recipe: Recipe, report: bool | None = None) -> int:
    """How many progress messages `prepare` sends for `recipe`, for a progress bar's total."""
    writes_report = report if report is not None else recipe.output.get("report", True)
    return (
        3
        + len(recipe.clean)
        + sum(len(steps) for steps in recipe.source_clean.values())
        + (1 if recipe.pipeline else 0)
        + 1
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
    writes_report = report if report is not None else recipe.output.get("report", True)
    in_order = _keeps_order(recipe)
    # Row order costs DuckDB memory and time; it is kept only when the recipe asks for it.
    with Workspace(memory_limit=memory_limit, preserve_order=in_order) as ws:
        progress("loading and joining sources")
        relation = _assemble(ws, recipe, None, reports, progress)
        relation = run_clean_steps(ws, recipe, recipe.clean, relation, reports, progress)
        progress("splitting")
        previous = relation
        relation, split_report = _split(ws, recipe, relation, measure=False)
        if recipe.pipeline or writes_report:
            # Fitting on train and profiling for the report read the rows again.
            relation = ws.reusable(relation)
        ws.release(previous, relation)
        reports.append(split_report)
        artifact = None
        artifact_path = None
        if recipe.pipeline:
            progress("fitting the preparation pipeline on train")
            train = ws.con.execute(ordered_rows(ws, relation, f"{SPLIT_COLUMN} = 'train'")).df()
            artifact = _fit_pipeline(recipe, train)
            del train
            artifact_path = artifact.save(target)
        progress("writing " + ", ".join(SPLITS))
        files, sizes = _write_splits(ws, relation, target, fmt, artifact)
        split_report.details["sizes"] = sizes
        label = recipe.split.get("label") or recipe.label
        if label:
            split_report.details["class_balance"] = class_balance(ws, relation, label)
        result = PrepareResult(target, files, reports, artifact_path)
        result.warnings = [r.details["warning"] for r in reports if "warning" in r.details]
        (target / "report.json").write_text(
            json.dumps([_report_json(r) for r in reports], indent=2, default=str)
        )
        if writes_report:
            progress("writing the HTML report")
            from cairn.data.report_html import write_prepare_report

            # The report profiles the data columns, not the hidden positions.
            visible = relation
            if POSITION in columns_of(ws.con, relation):
                visible = ws.view(
                    "visible",
                    f"SELECT * EXCLUDE ({POSITION}) FROM {quote_identifier(relation)}",
                    rows_like=relation,
                )
            result.report_html = write_prepare_report(
                ws, visible, reports, target / "report.html", recipe
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
