"""Quantities written in mixed units (`5 ft 3 in`, `1,291 sqft`, `95 m²`, `68 °F`) as numbers.

One parser reads every value: the clean step runs it once per distinct value of a column, and
the fitted UnitConverter runs it on raw instances at serving, so both read a value alike.
pint is the unit engine; the small alias table below only adds spellings pint lacks
(`sqft`, `sf`, `'`, `"`, `°c`, `kph`, `sq m`) and exponents written as `m2`.

A column is read as a whole: its values decide whether an ambiguous `1,234` is a thousand
separator or a decimal comma (neither, so unparsed, when the column shows both marks), which
unit bare numbers are in (the written unit whose values are closest in size to them) and,
when no unit is given, the target unit (the most frequent one).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from cairn.data.cleaning._mapping import distinct_counts
from cairn.data.sources import columns_of, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import invalid_field

# `missing` rather than `null`: YAML reads an unquoted `null` as "no value".
ON_UNPARSED = ("fail", "flag", "missing")

# Texts that mean "no value" rather than a value nobody could read.
MISSING_TEXTS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "--", "—", "?"})

# Unparsed values listed in reports and error messages.
EXAMPLES = 10
# Longer values and unit texts are not quantities anyone writes, and pint's parser takes
# time quadratic in their length, so they are unparsed without asking it.
MAX_VALUE_CHARS = 64
MAX_UNIT_CHARS = 32
# Unparsed values longer than this are shortened in reports and messages.
SHOWN_CHARS = 40

# A number: digit groups joined by one repeated separator (1,291 / 1.234.567 / 1 291 / 1'291)
# with an optional decimal tail marked by the other of `.` and `,`, or a plain number whose
# decimal mark may be either.
_NUMBER = (
    r"(?:(?P<whole>\d{1,3}(?P<sep>[,.'’\u00a0\u202f\u2009 ])\d{3}(?:(?P=sep)\d{3})*)(?!\d)"
    r"(?:(?!(?P=sep))(?P<mark>[.,])(?P<fraction>\d+))?"
    r"|(?=\.?\d)(?P<plain>\d*)(?:(?P<plain_mark>[.,])(?P<plain_fraction>\d+))?)"
)
_LETTER = r"[^\W\d_]"
_UNIT_CHAR = rf"(?:{_LETTER}|[°º˚℃℉µ²³'\"′″’”./])"
# A unit: letters and marks, `^2`, a 2 or 3 glued to a letter when no number follows it
# (`m2`, `ft3`, but `5ft3in` is five feet three inches), and spaces inside (`sq ft`).
_UNIT = (
    rf"(?P<unit>(?:{_UNIT_CHAR}|\^\s*-?\d+"
    rf"|(?<={_LETTER})[23](?![\d.,]|\s*{_LETTER})"
    rf"|\s+(?={_UNIT_CHAR}))*)"
)
# One term of a value; compound values (`5 ft 3 in`, `5 ft, 3 in`) are several in a row.
_TERM = re.compile(rf"\s*(?P<sign>[-+−]\s*)?{_NUMBER}\s*{_UNIT}\s*(?:[,;+](?=\s*\d)\s*)?")

_MARKS = str.maketrans({"º": "°", "˚": "°", "’": "'", "′": "'", "”": '"', "″": '"'})
_SUPERSCRIPTS = {"²": "**2", "³": "**3"}
_EXPONENT = re.compile(r"(?<=[^\W\d_])\s*(?:\*\*|\^)?\s*(-?\d)(?!\d)")
_POWER_PREFIX = re.compile(r"(square|sq|cubic|cu(?=\s))\s*(.+)")
_POWER_SUFFIX = re.compile(r"(.+?)\s*(squared|cubed)")


def _aliases() -> dict[str, str]:
    table = {
        "'": "foot",
        '"': "inch",
        "''": "inch",
        "sf": "foot**2",
        "lbs": "pound",
        "ac": "acre",  # pint reads `ac` as attospeed of light
        "kph": "km/hour",
        "kmh": "km/hour",
        "kmph": "km/hour",
        "km/hr": "km/hour",
        "mph": "mile/hour",
        "celsius": "degC",
        "centigrade": "degC",
        "fahrenheit": "degF",
    }
    # `C` and `F` alone are coulomb and farad to pint; in data they are degrees.
    for letter, unit in (("c", "degC"), ("f", "degF")):
        for prefix in ("", "°", "° ", "deg", "deg ", "degree ", "degrees "):
            table[prefix + letter] = unit
    for word, unit in (("celsius", "degC"), ("fahrenheit", "degF")):
        table[f"degree {word}"] = table[f"degrees {word}"] = table[f"° {word}"] = unit
    return table


_ALIASES = _aliases()


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint

    return pint.UnitRegistry()


@lru_cache(maxsize=65536)
def unit_name(text: str) -> str | None:
    """pint's name for a unit as people write it (`sq ft` -> `foot ** 2`); None if unknown."""
    if len(text) > MAX_UNIT_CHARS:
        return None
    spelled = text.translate(_MARKS).replace("℃", "°C").replace("℉", "°F")
    spelled = re.sub(r"\s+", " ", spelled.replace(".", "")).strip()
    spelled = re.sub(r"\s*/\s*", "/", spelled)
    for mark, power in _SUPERSCRIPTS.items():
        spelled = spelled.replace(mark, power)
    spelled = _EXPONENT.sub(r"**\1", spelled)
    lower = spelled.lower()
    candidates = [_ALIASES[lower]] if lower in _ALIASES else [spelled]
    prefixed = _POWER_PREFIX.fullmatch(lower)
    suffix = _POWER_SUFFIX.fullmatch(lower)
    if prefixed:
        base = prefixed.group(2)
        exponent = 3 if prefixed.group(1).startswith("cu") else 2
        candidates.append(f"({_ALIASES.get(base, base)})**{exponent}")
    elif suffix:
        base = suffix.group(1)
        candidates.append(
            f"({_ALIASES.get(base, base)})**{2 if suffix.group(2) == 'squared' else 3}"
        )
    candidates.append(lower)
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return str(_registry().Unit(candidate))
        except Exception:  # noqa: BLE001, S112 - pint raises many types for bad unit names
            continue
    return None


def unit_label(name: str) -> str:
    """The short printed form of a unit (`foot ** 2` -> `ft²`)."""
    return f"{_registry().Unit(name):~P}"


def check_unit(unit: str, field_path: str = "units.unit") -> str:
    """pint's name for `unit`; a clear error when it is not a unit."""
    name = unit_name(unit)
    if name is None:
        raise invalid_field(
            field_path, f"unknown unit {unit!r}; use e.g. m, cm, ft, m², sqft, kg, degC."
        )
    return name


@lru_cache(maxsize=4096)
def _affine(source: str, target: str) -> tuple[float, float] | None:
    """(a, b) with target = a * source + b (b is non-zero only for °C/°F); None if incompatible."""
    quantity = _registry().Quantity
    try:
        zero = float(quantity(0.0, source).to(target).magnitude)
        one = float(quantity(1.0, source).to(target).magnitude)
    except Exception:  # noqa: BLE001 - dimensionality and offset errors alike mean "no"
        return None
    return one - zero, zero


def _same_dimension(a: str, b: str) -> bool:
    return _affine(a, b) is not None


# ---------------------------------------------------------------------------- reading text

# (sign, whole part as written, its group separator, decimal mark, fraction, unit text).
Term = tuple[str, str, str | None, str | None, str | None, str]


def split_terms(text: str) -> tuple[Term, ...] | None:
    """The number/unit terms of `text`, or None when it is not only such terms."""
    if len(text) > MAX_VALUE_CHARS:
        return None
    terms: list[Term] = []
    position, end = 0, len(text)
    while position < end:
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            return None
        sign, whole, sep, mark, fraction, plain, plain_mark, plain_fraction, unit = match.groups()
        if whole is None:
            whole, mark, fraction = plain, plain_mark, plain_fraction
        term = (sign.strip() if sign else "", whole, sep, mark, fraction, unit)
        position = match.end()
        if position == end and not terms:
            return (term,)  # the common case: one number, one unit
        if sign and terms:
            return None
        terms.append(term)
    return tuple(terms) or None


def decimal_vote(term: Term) -> str | None:
    """The decimal mark (`,` or `.`) a number's shape shows, or None when it shows none.

    `12,5` and `1.234,5` show a comma, `12.5` and `1,234.5` a point; `1,234` and `1.234`
    (one group of three, no tail) could be either.
    """
    _, whole, sep, mark, _, _ = term
    if mark or sep is None:
        return mark
    if sep in ",." and whole.count(sep) > 1:
        return "." if sep == "," else ","
    return None


def is_ambiguous(term: Term) -> bool:
    """True for `1,234` and `1.234`: one group of three after a `,` or `.`, no other mark."""
    _, whole, sep, mark, _, _ = term
    return mark is None and sep is not None and sep in ",." and whole.count(sep) == 1


def magnitude(term: Term, decimal_comma: bool | None) -> float:
    """The value of a term's number; `decimal_comma` settles `1,234` and `1.234`.

    Without it (None) a lone comma before three digits groups thousands and a lone point is
    a decimal point, as in English.
    """
    sign, whole, sep, mark, fraction, _ = term
    if sep is not None:
        ambiguous = mark is None and sep in ",." and whole.count(sep) == 1
        if ambiguous and (sep == ",") == bool(decimal_comma):
            whole, sep, fraction = whole.replace(sep, "."), None, None
        if sep is not None:
            whole = whole.replace(sep, "")
    value = float(f"{whole}.{fraction}" if fraction else whole or "0")
    return -value if sign in ("-", "−") else value


def unit_names(unit_texts: tuple[str, ...]) -> tuple[str | None, ...] | None:
    """pint's unit name per term (None for a bare number); None if a unit is unknown, or
    several terms are not a compound quantity: every term needs a unit, each smaller than
    the one before (`5 ft 3 in`, `1 m 50 cm`), so lists (`3 m, 5 m`, `6 ft 6 ft`) and
    ranges (`3-5 m`, `5 3 m`) are not summed."""
    names = tuple(unit_name(text) if text else None for text in unit_texts)
    if any(name is None and text for name, text in zip(names, unit_texts, strict=True)):
        return None
    if len(names) > 1:
        if None in names:
            return None
        for larger, smaller in zip(names, names[1:], strict=False):
            ratio = _affine(smaller, larger)  # type: ignore[arg-type]
            if ratio is None or ratio[1] != 0.0 or not 0 < ratio[0] < 1:
                return None
    return names


def affines(
    names: tuple[str | None, ...], target: str, default_unit: str | None
) -> list[tuple[float, float]] | None:
    """Per term, (a, b) with value in target = a * magnitude + b; None when a unit is
    missing or of another kind, or an offset unit (°C, °F) is part of a sum."""
    result = []
    for name in names:
        source = name or default_unit
        affine = _affine(source, target) if source else None
        if affine is None or (len(names) > 1 and affine[1] != 0.0):
            return None
        result.append(affine)
    return result


def tidy(values: np.ndarray, size: np.ndarray | None = None) -> np.ndarray:
    """Round away pint's float noise (20 °C -> 67.99999999999993 °F) at 12 significant digits
    of `size`, the largest term that went into each value (32 °F is 32 * 5/9 - 17.78 °C, so
    its noise is tiny next to 17.78, not next to the result, 0)."""
    reference = np.abs(values) if size is None else np.maximum(np.abs(values), np.abs(size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.floor(np.log10(reference))
        scale = np.where(np.isfinite(exponent), 10.0 ** (11 - exponent), 1.0)
        rounded = np.where(reference == 0, values, np.round(values * scale) / scale)
    return rounded + 0.0  # -0.0 -> 0.0


def is_missing_text(text: str) -> bool:
    return text.strip().lower() in MISSING_TEXTS


def parse_quantity(
    text: Any,
    unit: str,
    default_unit: str | None = None,
    decimal_comma: bool | None = None,
    mixed_marks: bool = False,
) -> float:
    """`text` in `unit`, summing compound forms (`5 ft 3 in`); NaN when it cannot be read.

    A bare number is taken to be in `default_unit`, or NaN when none is given.
    `decimal_comma` settles numbers like `1,234` (see `magnitude`); with `mixed_marks` (a
    column that uses both decimal marks) such numbers are NaN instead. Booleans are not
    quantities.
    """
    target = unit_name(unit)
    default = unit_name(default_unit) if default_unit else None
    if text is None or target is None or isinstance(text, bool | np.bool_):
        return math.nan
    if isinstance(text, int | float | np.integer | np.floating):
        bare = affines((None,), target, default)
        number = float(text)
        if bare is None or not math.isfinite(number):
            return math.nan
        a, b = bare[0]
        return float(tidy(np.array([a * number + b]), np.array([max(abs(a * number), abs(b))]))[0])
    terms = split_terms(str(text))
    if terms is None or (mixed_marks and any(map(is_ambiguous, terms))):
        return math.nan
    names = unit_names(tuple(term[5] for term in terms))
    coefficients = affines(names, target, default) if names is not None else None
    if coefficients is None:
        return math.nan
    parts = [
        (a * magnitude(term, decimal_comma), b)
        for term, (a, b) in zip(terms, coefficients, strict=True)
    ]
    total = sum(scaled + offset for scaled, offset in parts)
    size = max(max(abs(scaled), abs(offset)) for scaled, offset in parts)
    return float(tidy(np.array([total]), np.array([size]))[0])


# --------------------------------------------------------------------------- whole columns


@dataclass
class ColumnUnits:
    """How one column is read: what it learnt from its values and what came out."""

    target: str
    target_inferred: bool
    default: str | None
    default_reason: str
    decimal_comma: bool
    values: dict[str, float | None] = field(default_factory=dict)  # None: missing or unparsed
    unparsed: dict[str, int] = field(default_factory=dict)
    missing_rows: int = 0
    bare_rows: int = 0
    units_seen: dict[str, int] = field(default_factory=dict)
    # Both decimal marks seen: `1,234` and `1.234` could be either, so they are unparsed.
    mixed_marks: bool = False
    ambiguous_rows: int = 0
    warnings: list[str] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """The part of a StepReport that says what was assumed and what could not be read."""
        unparsed_rows = sum(self.unparsed.values())
        converted = sum(1 for v in self.values.values() if v is not None)
        return {
            "unit": unit_label(self.target),
            "unit_inferred": self.target_inferred,
            "unparsed_rows": unparsed_rows,
            "unparsed_distinct": len(self.unparsed),
            "unparsed": examples(self.unparsed),
            "bare_numbers": {
                "rows": self.bare_rows,
                "read_as": unit_label(self.default) if self.default else None,
                "because": self.default_reason,
            },
            "decimal_mark": "both" if self.mixed_marks else "," if self.decimal_comma else ".",
            "ambiguous_rows": self.ambiguous_rows,
            "missing_rows": self.missing_rows,
            "units_seen": self.units_seen,
            "converted_values": converted,
        }


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters for a message, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def examples(unparsed: Mapping[str, int], limit: int = EXAMPLES) -> dict[str, int]:
    """The most frequent unparsed values (long ones shortened) with their row counts."""
    top = sorted(unparsed.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return {shorten(text): rows for text, rows in top}


def read_column(
    counts: Mapping[str, int],
    unit: str | None = None,
    default_unit: str | None = None,
    field_path: str = "units",
) -> ColumnUnits:
    """Read a column given as {distinct text: rows}, learning what its values leave open.

    Each text is split once; everything else happens once per distinct unit spelling, and
    the numbers of all values written with that spelling convert together.
    """
    target = check_unit(unit, f"{field_path}.unit") if unit else None
    default = check_unit(default_unit, f"{field_path}.default_unit") if default_unit else None
    if target and default and not _same_dimension(default, target):
        raise invalid_field(
            f"{field_path}.default_unit",
            f"default_unit {default_unit!r} is not a kind of {unit!r} and cannot convert to it.",
        )
    return _read_column(counts, target, default, field_path)


Spellings = dict[tuple[str, ...], tuple[list[str], list[tuple["Term", ...]]]]


def _read_column(
    counts: Mapping[str, int], target: str | None, default: str | None, field_path: str
) -> ColumnUnits:
    # Values grouped by how their units are spelled: (texts, their terms) per spelling.
    spellings: Spellings = {}
    unparsed: dict[str, int] = {}
    votes = {",": 0, ".": 0}
    missing_rows = 0
    ambiguous: list[tuple[str, int]] = []
    for text, rows in counts.items():
        terms = split_terms(text)
        if terms is None:
            if is_missing_text(text):
                missing_rows += rows
            else:
                unparsed[text] = rows
            continue
        for term in terms:
            vote = decimal_vote(term)
            if vote:
                votes[vote] += rows
        if any(map(is_ambiguous, terms)):
            ambiguous.append((text, rows))
        spelling = tuple(term[5] for term in terms)
        group = spellings.get(spelling)
        if group is None:
            group = spellings[spelling] = ([], [])
        group[0].append(text)
        group[1].append(terms)
    decimal_comma = votes[","] > votes["."]
    mixed_marks = bool(votes[","] and votes["."])
    ambiguous_rows = 0
    if mixed_marks and ambiguous:
        # `1,234` is 1234 to one writer and 1.234 to the other: guessing is off by 1000x.
        doubtful = dict(ambiguous)
        ambiguous_rows = sum(doubtful.values())
        unparsed.update(doubtful)
        for spelling, (texts, all_terms) in list(spellings.items()):
            kept = [
                (t, terms) for t, terms in zip(texts, all_terms, strict=True) if t not in doubtful
            ]
            if kept:
                spellings[spelling] = ([t for t, _ in kept], [terms for _, terms in kept])
            else:
                del spellings[spelling]
    names = {spelling: unit_names(spelling) for spelling in spellings}
    seen: Counter[str] = Counter()
    bare_rows = 0
    for spelling, (texts, _) in spellings.items():
        named = names[spelling]
        rows = sum(map(counts.__getitem__, texts))
        if named is None:
            unparsed.update(zip(texts, map(counts.__getitem__, texts), strict=True))
        elif named[0] is None:
            bare_rows += rows
        else:
            seen[named[0]] += rows
    inferred = target is None
    if target is None:
        if not seen:
            raise invalid_field(
                f"{field_path}.unit",
                "no value of the column names a unit, so none can be inferred; give `unit:`.",
            )
        target = seen.most_common(1)[0][0]
        if default and not _same_dimension(default, target):
            raise invalid_field(
                f"{field_path}.default_unit",
                f"default_unit is not a kind of {unit_label(target)}, the column's most "
                "frequent unit; give `unit:` too.",
            )
    warnings: list[str] = []
    reason = "default_unit"
    if default is None and bare_rows:
        compatible = [name for name, _ in seen.most_common() if _same_dimension(name, target)]
        if compatible:
            default = _closest_unit(compatible, spellings, names, counts, decimal_comma)
            reason = "the written unit whose values are closest in size"
            if len(compatible) > 1:
                warnings.append(
                    f"{bare_rows} rows are bare numbers in a column written in "
                    f"{len(compatible)} units; they were read as {unit_label(default)}, the unit "
                    "whose values are closest in size. Give default_unit if that is wrong."
                )
        else:
            default, reason = target, "the target unit; no value names a unit"
    elif default is None:
        reason = "no bare numbers"
    if ambiguous_rows:
        warnings.append(
            f"{ambiguous_rows} rows such as "
            + ", ".join(repr(shorten(t)) for t, _ in ambiguous[:3])
            + " are unparsed: the column writes decimals with both `,` and `.`, so a "
            "thousands separator cannot be told from a decimal mark."
        )
    values: dict[str, float | None] = dict.fromkeys(counts)
    for spelling, (texts, all_terms) in spellings.items():
        named = names[spelling]
        if named is None:
            continue
        coefficients = affines(named, target, default)
        if coefficients is None:
            unparsed.update(zip(texts, map(counts.__getitem__, texts), strict=True))
            continue
        numbers = np.zeros(len(texts))
        size = np.zeros(len(texts))
        for position, (a, b) in enumerate(coefficients):
            magnitudes = [magnitude(terms[position], decimal_comma) for terms in all_terms]
            scaled = a * np.array(magnitudes)
            numbers += scaled + b
            size = np.maximum(size, np.maximum(np.abs(scaled), abs(b)))
        values.update(zip(texts, tidy(numbers, size).tolist(), strict=True))
    return ColumnUnits(
        target,
        inferred,
        default,
        reason,
        decimal_comma,
        values,
        unparsed,
        missing_rows,
        bare_rows,
        _labelled(seen),
        mixed_marks,
        ambiguous_rows,
        warnings,
    )


def _closest_unit(
    candidates: list[str],
    spellings: Spellings,
    names: Mapping[tuple[str, ...], tuple[str | None, ...] | None],
    counts: Mapping[str, int],
    decimal_comma: bool,
) -> str:
    """The unit among `candidates` whose written values have the median size (log scale)
    nearest the bare numbers' median: `170` beside `6 ft` and `180 cm` is centimetres,
    `1419` beside `1,291 sqft` and `95 m²` is square feet. The first candidate (the most
    frequent) when sizes cannot be compared."""
    sizes: dict[str | None, list[tuple[float, int]]] = {}
    for spelling, (texts, all_terms) in spellings.items():
        named = names[spelling]
        if named is None or (named[0] is not None and named[0] not in candidates):
            continue
        first = named[0]
        # A compound value's size in its first unit: `5 ft 6 in` is 5.5 ft.
        ratios = (
            [1.0] + [(_affine(n, first) or (0.0, 0.0))[0] for n in named[1:]] if first else [1.0]
        )
        bucket = sizes.setdefault(first, [])
        for text, terms in zip(texts, all_terms, strict=True):
            size = abs(
                sum(r * magnitude(t, decimal_comma) for r, t in zip(ratios, terms, strict=True))
            )
            if size > 0:
                bucket.append((size, counts[text]))
    bare = _weighted_median(sizes.get(None, []))
    if bare is None:
        return candidates[0]
    best, best_distance = candidates[0], math.inf
    for name in candidates:
        median = _weighted_median(sizes.get(name, []))
        if median is None:
            continue
        distance = abs(math.log10(median) - math.log10(bare))
        if distance < best_distance:
            best, best_distance = name, distance
    return best


def _weighted_median(sizes: list[tuple[float, int]]) -> float | None:
    if not sizes:
        return None
    ordered = sorted(sizes)
    half = sum(rows for _, rows in ordered) / 2
    running = 0
    for size, rows in ordered:
        running += rows
        if running >= half:
            return size
    return ordered[-1][0]


def _labelled(seen: Counter[str]) -> dict[str, int]:
    labelled: Counter[str] = Counter()
    for name, rows in seen.most_common():
        labelled[unit_label(name)] += rows
    return dict(labelled.most_common())


def unparsed_message(column: str, column_units: ColumnUnits, rows: int) -> str:
    """Why a column's units step stopped, with examples and the ways to go on."""
    unparsed = column_units.unparsed
    shown = ", ".join(f"{v!r} ({n} rows)" for v, n in examples(unparsed).items())
    return (
        f"{sum(unparsed.values())} of {rows} rows of column {column!r} could not be read as "
        f"{unit_label(column_units.target)} ({len(unparsed)} distinct values), e.g. {shown}. "
        "Write them in a unit of that kind (numbers with m, cm, ft, in, ', \", m², sqft, kg, "
        "lb, °C, °F, km/h, mph, ...), give default_unit for bare numbers, or choose what "
        f"happens to them: on_unparsed: flag (NULL plus a boolean {column}_unparsed column) "
        "or on_unparsed: missing (NULL, which later steps may impute); on the command line "
        "--on-unparsed flag|missing." + "".join(f" {w}" for w in column_units.warnings)
    )


def check_on_unparsed(mode: object, field_path: str = "units.on_unparsed") -> None:
    if mode not in ON_UNPARSED:
        given = "null, which YAML reads as no value" if mode is None else repr(mode)
        hint = "; `missing` keeps unreadable values as NULL" if mode in (None, "null") else ""
        raise invalid_field(
            field_path, f"unknown on_unparsed {given}; use {', '.join(ON_UNPARSED)}{hint}."
        )


def normalize_units(
    ws: Workspace,
    relation: str,
    column: str,
    unit: str | None = None,
    default_unit: str | None = None,
    target: str | None = None,
    on_unparsed: str = "fail",
) -> tuple[str, StepReport]:
    """Replace `column` (or add `target`) with its values converted to `unit` as numbers.

    Without `unit` the column's most frequent unit is the target. Values that cannot be read
    stop the step (`on_unparsed="fail"`), become NULL with a `<column>_unparsed` flag
    (`"flag"`), or become NULL (`"missing"`); the report counts and lists them either way.
    """
    check_on_unparsed(on_unparsed)
    types = columns_of(ws.con, relation)
    if column not in types:
        raise invalid_field(
            "units.column", f"no column {column!r}; the data has {', '.join(types)}."
        )
    table = distinct_counts(ws, relation, column)
    counts = dict(zip(table["value"].tolist(), table["n"].tolist(), strict=True))
    column_units = read_column(counts, unit, default_unit)
    rows = ws.count(relation)
    unparsed_rows = sum(column_units.unparsed.values())
    if unparsed_rows and on_unparsed == "fail":
        raise invalid_field("units.on_unparsed", unparsed_message(column, column_units, rows))
    flag = f"{column}_unparsed" if on_unparsed == "flag" else None
    out = _apply(ws, relation, list(types), column, column_units, target or column, flag)
    details: dict[str, Any] = {"column": column, "on_unparsed": on_unparsed}
    details.update(column_units.details())
    details["missing_rows"] += rows - sum(counts.values())
    warnings = [f"units ({column!r}): {w}" for w in column_units.warnings]
    if unparsed_rows:
        kept = f"NULL, flagged in {flag}" if flag else "NULL"
        warnings.insert(
            0,
            f"units: {unparsed_rows} rows of {column!r} could not be read as "
            f"{unit_label(column_units.target)} and are {kept}; e.g. "
            + ", ".join(repr(v) for v in examples(column_units.unparsed, 3)),
        )
    if warnings:
        details["warning"] = " ".join(warnings)
    return out, StepReport(
        f"units ({column} -> {unit_label(column_units.target)})", rows, ws.count(out), details
    )


# Up to this many distinct values, an order-keeping lookup goes through an ENUM type (a
# hash lookup inside a projection); beyond, building the type costs more than a sort.
_ENUM_LIMIT = 100_000


def _apply(
    ws: Workspace,
    relation: str,
    columns: list[str],
    column: str,
    column_units: ColumnUnits,
    target: str,
    flag: str | None,
) -> str:
    """A view of `relation` with `target` holding the numbers (and `flag` marking unreadable
    values), looked up in a table of the distinct values."""
    texts = list(column_units.values)
    frame = pd.DataFrame(
        {
            "_old": pd.Series(texts, dtype="object"),
            "_new": pd.array([column_units.values[t] for t in texts], dtype="Float64"),
            "_bad": pd.Series([t in column_units.unparsed for t in texts], dtype=bool),
        }
    )
    ws.con.register("_cairn_unit_map", frame)
    try:
        lookup = quote_identifier(
            ws.table(
                "unit_map",
                "SELECT CAST(_old AS VARCHAR) AS _old, CAST(_new AS DOUBLE) AS _new, _bad "
                "FROM _cairn_unit_map",
            )
        )
    finally:
        ws.con.unregister("_cairn_unit_map")
    base = quote_identifier(ws.reusable(relation))
    key = f"CAST(t.{quote_identifier(column)} AS VARCHAR)"
    order = ""
    if not ws.preserve_order:
        # Every distinct value has one entry, so the left join keeps each row exactly once.
        number, bad = "lk._new", "coalesce(lk._bad, false)"
        source = f"{base} t LEFT JOIN {lookup} lk ON {key} = lk._old"
    elif len(texts) <= _ENUM_LIMIT:
        # A hash join may reorder rows; a lookup inside the projection cannot.
        values = quote_identifier(ws.new_name("unit_values", table=False))
        ws.con.execute(f"CREATE TYPE {values} AS ENUM (SELECT _old FROM {lookup})")
        lists = ws.table(
            "unit_lists",
            f"SELECT list(_new ORDER BY enum_code(CAST(_old AS {values}))) AS numbers, "
            f"list(_bad ORDER BY enum_code(CAST(_old AS {values}))) AS bad FROM {lookup}",
        )
        code = f"enum_code(TRY_CAST({key} AS {values})) + 1"
        number, bad = f"lk.numbers[{code}]", f"coalesce(lk.bad[{code}], false)"
        source = f"{base} t, {quote_identifier(lists)} lk"
    else:
        number, bad = "lk._new", "coalesce(lk._bad, false)"
        source = (
            f"(SELECT row_number() OVER () AS _cairn_row, * FROM {base}) t "
            f"LEFT JOIN {lookup} lk ON {key} = lk._old"
        )
        order = " ORDER BY t._cairn_row"
    made = {target: number}
    if flag:
        made[flag] = bad
    projection = [
        f"{made[c]} AS {quote_identifier(c)}" if c in made else f"t.{quote_identifier(c)}"
        for c in columns
    ] + [f"{made[c]} AS {quote_identifier(c)}" for c in made if c not in columns]
    return ws.view(
        "units", f"SELECT {', '.join(projection)} FROM {source}{order}", rows_like=relation
    )
