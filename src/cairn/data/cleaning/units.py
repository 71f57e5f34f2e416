"""Quantities written in mixed units (`5 ft 3 in`, `160cm`, `1.6 m`) converted to one unit."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from cairn.data.cleaning._columns import require_columns
from cairn.data.cleaning._mapping import apply_value_map, distinct_counts
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import invalid_field

# A number followed by an optional unit word or the foot/inch marks.
_TERM = re.compile(r"(-?\d+(?:[.,]\d+)?)\s*([A-Za-zµ°]+\.?|'|\"|′|″)?")
_MARKS = {"'": "foot", "′": "foot", '"': "inch", "″": "inch"}


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint

    return pint.UnitRegistry()


def check_unit(unit: str) -> None:
    """Raise a clear error when pint does not know `unit`."""

    try:
        _registry().Unit(unit)
    except Exception as error:  # noqa: BLE001 - pint raises many types for bad unit names
        raise invalid_field(
            "units.unit", f"unknown unit {unit!r}; use e.g. m, cm, ft, kg."
        ) from error


def parse_quantity(text: Any, unit: str, default_unit: str | None = None) -> float:
    """`text` in `unit`, summing compound forms (`5 ft 3 in`); NaN when it cannot be read.

    A bare number is taken to be in `default_unit`, or NaN when none is given.
    """
    import pint

    if text is None:
        return math.nan
    if isinstance(text, int | float):
        return float(text) * _factor(default_unit, unit) if default_unit else math.nan
    value = str(text).strip()
    if not value:
        return math.nan
    terms = _TERM.findall(value)
    leftover = _TERM.sub("", value).strip(" ,;+")
    if not terms or leftover:
        return math.nan
    total = 0.0
    for number, word in terms:
        magnitude = float(number.replace(",", "."))
        name = _MARKS.get(word, word.rstrip(".")) if word else default_unit
        if not name:
            return math.nan
        try:
            total += magnitude * _factor(name, unit)
        except (pint.errors.PintError, AttributeError, ValueError, TypeError):
            return math.nan
    return total


@lru_cache(maxsize=1024)
def _factor(source: str, target: str) -> float:
    registry = _registry()
    return float(registry.Quantity(1.0, source).to(target).magnitude)


def normalize_units(
    ws: Workspace,
    relation: str,
    column: str,
    unit: str,
    default_unit: str | None = None,
    target: str | None = None,
) -> tuple[str, StepReport]:
    """Replace `column` (or add `target`) with its values converted to `unit` as numbers."""
    require_columns(ws, relation, [column], "units")
    check_unit(unit)
    if default_unit:
        check_unit(default_unit)
    table = distinct_counts(ws, relation, column)
    mapping = {v: parse_quantity(v, unit, default_unit) for v in table["value"]}
    unparsed = {
        v: int(n) for v, n in zip(table["value"], table["n"], strict=True) if math.isnan(mapping[v])
    }
    clean = {v: (None if math.isnan(x) else x) for v, x in mapping.items()}
    out = apply_value_map(ws, relation, column, clean, "DOUBLE", target)
    return out, StepReport(
        f"units ({column} -> {unit})",
        ws.count(relation),
        ws.count(out),
        {"converted_values": len(mapping) - len(unparsed), "unparsed": unparsed},
    )
