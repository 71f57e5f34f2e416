"""Recipe files: YAML that says where data comes from and what to do to it.

Parsing keeps each node's line so every mistake (unknown step, unknown option, wrong type,
unknown column) is reported as `recipe.yaml:LINE: ...` before any data is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cairn.config import Settings
from cairn.data.cleaning.units import check_on_unparsed
from cairn.data.joins import DEFAULT_MAX_UNMATCHED, check_unmatched_options, parse_match
from cairn.data.sources import SourceSpec
from cairn.data.steps import CLEAN_STEPS, PIPELINE_STEPS, StepSpec
from cairn.domain.errors import ApiError, Code, FieldViolation
from cairn.storage import BucketStorage

SECTIONS = ("sources", "dataset", "clean", "split", "features", "preprocess", "label", "output")
DATASET_KEYS = {
    "from": str,
    "join": list,
    "union": list,
    "renames": dict,
    "mapping_file": str,
    "normalize_names": bool,
    "derive": dict,
    "max_unmatched": (int, float),
    "on_unmatched": str,
}
SPLIT_KEYS = {
    "method": str,
    "fractions": dict,
    "label": str,
    "key": str,
    "seed": int,
    "enforce_order": bool,
}
OUTPUT_KEYS = {"path": str, "format": str, "report": bool}
SOURCE_KEYS = {
    "path": str,
    "format": str,
    "url": str,
    "table": str,
    "query": str,
    "delimiter": str,
    "encoding": str,
    "header": bool,
    "clean": list,
}
JOIN_KEYS = {
    "source": str,
    "on": (str, list, dict),
    "how": str,
    "many_to_one": bool,
    "suffix": str,
    "columns": list,
    "match": (str, dict),
    "max_unmatched": (int, float),
    "on_unmatched": str,
}


class RecipeError(ApiError):
    """A recipe mistake, with the file and line it is on."""


def recipe_error(where: str, line: int | None, message: str) -> RecipeError:
    prefix = f"{where}:{line}: " if line else f"{where}: "
    return RecipeError(Code.INVALID_ARGUMENT, prefix + message, [FieldViolation(where, message)])


@dataclass
class Step:
    """One clean/features/preprocess entry: its name, options and line in the recipe."""

    name: str
    options: dict[str, Any]
    line: int


@dataclass
class Recipe:
    """A parsed, type-checked recipe; paths are resolved against the recipe's folder."""

    path: Path
    sources: dict[str, SourceSpec]
    source_lines: dict[str, int]
    base: str
    joins: list[dict[str, Any]] = field(default_factory=list)
    union: list[str] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    derive: dict[str, str] = field(default_factory=dict)
    join_lines: list[int] = field(default_factory=list)
    normalize_names: bool = True
    source_clean: dict[str, list[Step]] = field(default_factory=dict)
    max_unmatched: float = DEFAULT_MAX_UNMATCHED
    on_unmatched: str = "warn"
    clean: list[Step] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)
    pipeline: list[Step] = field(default_factory=list)
    label: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def error(self, section: str, message: str, line: int | None = None) -> RecipeError:
        return recipe_error(str(self.path), line or self.lines.get(section), message)


def _to_python(node: yaml.Node, lines: dict[int, int]) -> Any:
    """Plain Python values, remembering each mapping/list's line by object id."""
    if isinstance(node, yaml.MappingNode):
        value: Any = {}
        for key_node, value_node in node.value:
            value[key_node.value] = _to_python(value_node, lines)
            lines[id(value)] = node.start_mark.line + 1
            if isinstance(value[key_node.value], dict | list):
                lines[id(value[key_node.value])] = value_node.start_mark.line + 1
        lines[id(value)] = node.start_mark.line + 1
        return value
    if isinstance(node, yaml.SequenceNode):
        items = [_to_python(item, lines) for item in node.value]
        lines[id(items)] = node.start_mark.line + 1
        return items
    return yaml.safe_load(yaml.serialize(node))


def _check_keys(
    where: str, line: int | None, values: dict[str, Any], allowed: dict[str, Any], section: str
) -> None:
    for key, value in values.items():
        if key not in allowed:
            raise recipe_error(
                where, line, f"{section}: unknown option {key!r}; allowed: {', '.join(allowed)}."
            )
        expected = allowed[key]
        if isinstance(value, bool) and expected in (int, float) or not isinstance(value, expected):
            name = (
                expected.__name__
                if isinstance(expected, type)
                else " or ".join(t.__name__ for t in expected)
            )
            raise recipe_error(
                where,
                line,
                f"{section}.{key}: expected {name}, got {type(value).__name__} {value!r}.",
            )


def _description(error: ApiError) -> str:
    """`path: text` from a field violation (the recipe error adds file and line)."""
    if error.field_violations:
        violation = error.field_violations[0]
        return f"{violation.field}: {violation.description}"
    return error.message


def _check_unmatched(where: str, line: int | None, values: dict[str, Any], section: str) -> None:
    try:
        check_unmatched_options(values.get("max_unmatched"), values.get("on_unmatched"), section)
    except ApiError as error:
        raise recipe_error(where, line, _description(error)) from error


def _steps(
    where: str,
    entries: Any,
    registry: dict[str, tuple[StepSpec, Any]],
    section: str,
    lines: dict[int, int],
) -> list[Step]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise recipe_error(where, lines.get(id(entries)), f"{section}: expected a list of steps.")
    steps = []
    for entry in entries:
        line = lines.get(id(entry))
        if not isinstance(entry, dict) or "step" not in entry:
            raise recipe_error(where, line, f"{section}: each entry needs `step: NAME`.")
        options = {k: v for k, v in entry.items() if k != "step"}
        name = entry["step"]
        if name not in registry:
            raise recipe_error(
                where,
                line,
                f"{section}: unknown step {name!r}; known steps: {', '.join(sorted(registry))}.",
            )
        spec = registry[name][0]
        if name == "units" and "on_unparsed" in options:
            # Checked here, before the type check, so a YAML `null` gets its explanation
            # and every mistake its line at load rather than when the step runs.
            try:
                check_on_unparsed(options["on_unparsed"], f"{section}.units.on_unparsed")
            except ApiError as error:
                raise recipe_error(where, line, _description(error)) from error
        _check_keys(where, line, options, spec.options, f"{section}.{name}")
        for required in spec.required:
            if required not in options:
                raise recipe_error(
                    where, line, f"{section}.{name}: missing required option {required!r}."
                )
        steps.append(Step(name, options, line or 0))
    return steps


def _resolve(
    value: str, base_dir: Path, buckets: BucketStorage | None, where: str, line: int | None
) -> str:
    """A recipe path as a local one: gs:// through the buckets (never outside them)."""
    if value.startswith("gs://"):
        try:
            storage = buckets or BucketStorage(Settings.from_env().storage_root)
            return str(storage.local_path(value))
        except ApiError as error:
            raise recipe_error(where, line, error.message) from error
    if "://" in value:
        return value
    return str((base_dir / value).resolve())


def load_recipe(path: str | Path, buckets: BucketStorage | None = None) -> Recipe:
    """Parse and type-check `path`; raise RecipeError naming the line of the first mistake.

    Relative paths are taken from the recipe's folder; `gs://` paths are files in `buckets`
    (default: those of the configured Cairn home).
    """
    path = Path(path)
    where = str(path)
    try:
        node = yaml.compose(path.read_text())
    except FileNotFoundError as error:
        raise recipe_error(where, None, "no such recipe file.") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise recipe_error(
            where, mark.line + 1 if mark else None, f"not valid YAML: {error}"
        ) from error
    lines: dict[int, int] = {}
    data = _to_python(node, lines) if node is not None else {}
    if not isinstance(data, dict):
        raise recipe_error(
            where, 1, "a recipe is a mapping with sections " + ", ".join(SECTIONS) + "."
        )
    if not isinstance(node, yaml.MappingNode):
        raise recipe_error(
            where, 1, "a recipe is a mapping with sections " + ", ".join(SECTIONS) + "."
        )
    section_lines = {key_node.value: key_node.start_mark.line + 1 for key_node, _ in node.value}
    for key in data:
        if key not in SECTIONS:
            raise recipe_error(
                where,
                section_lines.get(key),
                f"unknown section {key!r}; use {', '.join(SECTIONS)}.",
            )
    base_dir = path.parent
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise recipe_error(
            where, section_lines.get("sources"), "`sources:` must name at least one source."
        )
    sources: dict[str, SourceSpec] = {}
    source_lines: dict[str, int] = {}
    source_clean: dict[str, list[Step]] = {}
    for name, options in raw_sources.items():
        line = lines.get(id(options), section_lines.get("sources"))
        if not isinstance(options, dict):
            raise recipe_error(
                where, line, f"sources.{name}: expected a mapping with `path:` or `url:`."
            )
        _check_keys(where, line, options, SOURCE_KEYS, f"sources.{name}")
        # Each source may be cleaned on its own before any union or join sees it.
        if "clean" in options:
            source_clean[name] = _steps(
                where, options["clean"], CLEAN_STEPS, f"sources.{name}.clean", lines
            )
            options = {k: v for k, v in options.items() if k != "clean"}
        if "path" in options:
            options = {**options, "path": _resolve(options["path"], base_dir, buckets, where, line)}
        sources[name] = SourceSpec(name=name, **options)
        source_lines[name] = line or 0
    dataset = data.get("dataset") or {}
    _check_keys(where, section_lines.get("dataset"), dataset, DATASET_KEYS, "dataset")
    _check_unmatched(where, section_lines.get("dataset"), dataset, "dataset")
    base = dataset.get("from") or next(iter(sources))
    if base not in sources:
        raise recipe_error(
            where,
            section_lines.get("dataset"),
            f"dataset.from: unknown source {base!r}; sources are {', '.join(sources)}.",
        )
    joins = dataset.get("join", [])
    for join in joins:
        line = lines.get(id(join))
        if not isinstance(join, dict):
            raise recipe_error(
                where, line, "dataset.join: each entry is a mapping with source and on."
            )
        _check_keys(where, line, join, JOIN_KEYS, "dataset.join")
        if join.get("source") not in sources or "on" not in join:
            raise recipe_error(
                where,
                line,
                f"dataset.join: needs `source:` (one of {', '.join(sources)}) and `on:`.",
            )
        _check_unmatched(where, line, join, "dataset.join")
        try:
            parse_match(join.get("match"), "dataset.join.match")
        except ApiError as error:
            raise recipe_error(where, line, _description(error)) from error
    union = dataset.get("union", [])
    for name in union:
        if name not in sources:
            raise recipe_error(
                where, lines.get(id(union)), f"dataset.union: unknown source {name!r}."
            )
    renames = dict(dataset.get("renames", {}))
    if "mapping_file" in dataset:
        mapping_path = base_dir / dataset["mapping_file"]
        if not mapping_path.exists():
            raise recipe_error(
                where,
                section_lines.get("dataset"),
                f"dataset.mapping_file: {mapping_path} does not exist.",
            )
        renames.update(yaml.safe_load(mapping_path.read_text()) or {})
    split = data.get("split") or {}
    _check_keys(where, section_lines.get("split"), split, SPLIT_KEYS, "split")
    output = data.get("output") or {}
    _check_keys(where, section_lines.get("output"), output, OUTPUT_KEYS, "output")
    if output.get("format", "parquet") not in ("parquet", "csv", "jsonl"):
        raise recipe_error(
            where, section_lines.get("output"), "output.format: use parquet, csv or jsonl."
        )
    if "path" in output:
        output["path"] = _resolve(
            output["path"], base_dir, buckets, where, section_lines.get("output")
        )
    label = data.get("label")
    if label is not None and not isinstance(label, str):
        raise recipe_error(where, section_lines.get("label"), "label: expected a column name.")
    return Recipe(
        path=path,
        sources=sources,
        source_lines=source_lines,
        base=base,
        joins=joins,
        join_lines=[lines.get(id(j), 0) for j in joins],
        union=list(union),
        renames=renames,
        normalize_names=dataset.get("normalize_names", True),
        source_clean=source_clean,
        max_unmatched=float(dataset.get("max_unmatched", DEFAULT_MAX_UNMATCHED)),
        on_unmatched=dataset.get("on_unmatched", "warn"),
        derive={str(k): str(v) for k, v in dataset.get("derive", {}).items()},
        clean=_steps(where, data.get("clean"), CLEAN_STEPS, "clean", lines),
        split=split,
        pipeline=_steps(where, data.get("features"), PIPELINE_STEPS, "features", lines)
        + _steps(where, data.get("preprocess"), PIPELINE_STEPS, "preprocess", lines),
        label=label or split.get("label"),
        output=output,
        lines=section_lines,
    )
