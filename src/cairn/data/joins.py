"""Joins on keys (with a many-to-one check, key matching and a match rate) and unions with
schema rationalisation."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cairn.data.cleaning.spellings import canonical_key
from cairn.data.sources import columns_of, fetch_one, quote_identifier
from cairn.data.workspace import StepReport, Workspace
from cairn.domain.errors import failed_precondition, invalid_field

JOIN_KINDS = ("inner", "left")
UNMATCHED_ACTIONS = ("warn", "fail")
DEFAULT_MAX_UNMATCHED = 0.05
# 0.9 keeps real neighbours apart (Austria/Australia and Columbia/Colombia score 0.875)
# while one dropped or doubled letter in a word of six or more letters still matches.
DEFAULT_SIMILARITY = 0.9
# A near match counts only when it beats the next-best key by this much; closer is ambiguous.
MATCH_MARGIN = 0.05
_TOP_UNMATCHED = 10
_LISTED_MAPPINGS = 200
_FUZZY_PAIRS = 2_000_000  # similarity comparisons per key column, so matching stays seconds


def normalize_column_name(name: str) -> str:
    """`Dep. Delay (min)` -> `dep_delay_min`: lower snake case, ASCII, no leading digit."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name)
    snake = re.sub(r"[^0-9a-zA-Z]+", "_", ascii_name).strip("_").lower()
    if not snake:
        snake = "column"
    return f"c_{snake}" if snake[0].isdigit() else snake


def _key_pairs(on: str | Sequence[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(on, str):
        return [(on, on)]
    if isinstance(on, Mapping):
        return [(str(left), str(right)) for left, right in on.items()]
    return [(str(key), str(key)) for key in on]


def left_key_columns(on: str | Sequence[str] | Mapping[str, str]) -> list[str]:
    """The left-hand columns a join's `on:` names."""
    return [left for left, _ in _key_pairs(on)]


@dataclass(frozen=True)
class KeyMatch:
    """`match: spellings`: map left keys onto the right side's spellings before joining.

    A left key that is not one of the right side's keys is matched when its spelling step
    form (case, spaces, punctuation), a synonym, or its form without accents equals exactly
    one right key, or when exactly one right key is at least `similarity` alike and beats
    every other by MATCH_MARGIN. Anything else stays unmatched and is reported.
    """

    similarity: float = DEFAULT_SIMILARITY
    synonyms: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None


def parse_match(value: object, field_path: str = "join.match") -> KeyMatch | None:
    """`exact` / `spellings` / `{spellings: {similarity, synonyms, columns}}` as a KeyMatch."""
    if value is None or value == "exact":
        return None
    if value == "spellings":
        return KeyMatch()
    if not isinstance(value, Mapping) or list(value) != ["spellings"]:
        raise invalid_field(
            field_path,
            f"expected `exact`, `spellings` or {{spellings: {{similarity, synonyms, columns}}}}, "
            f"got {value!r}.",
        )
    options = value["spellings"] or {}
    if not isinstance(options, Mapping):
        raise invalid_field(f"{field_path}.spellings", f"expected a mapping, got {options!r}.")
    allowed = {"similarity", "synonyms", "columns"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise invalid_field(
            f"{field_path}.spellings",
            f"unknown option {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}.",
        )
    similarity = options.get("similarity", DEFAULT_SIMILARITY)
    if isinstance(similarity, bool) or not isinstance(similarity, int | float):
        raise invalid_field(
            f"{field_path}.spellings.similarity", f"expected a number, got {similarity!r}."
        )
    if not 0.5 <= similarity <= 1:
        raise invalid_field(
            f"{field_path}.spellings.similarity",
            f"{similarity} is outside 0.5-1 (1 turns near matches off).",
        )
    synonyms = options.get("synonyms", {})
    if not isinstance(synonyms, Mapping):
        raise invalid_field(
            f"{field_path}.spellings.synonyms", f"expected a mapping, got {synonyms!r}."
        )
    empty = next((k for k, v in synonyms.items() if v is None or v == ""), None)
    if empty is not None:
        # YAML `NYC:` or `NYC: null` would otherwise map onto the text "None".
        raise invalid_field(
            f"{field_path}.spellings.synonyms",
            f"synonym {empty!r} has no target; write `{empty}: <the key it means>`.",
        )
    columns = options.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns)
    ):
        raise invalid_field(
            f"{field_path}.spellings.columns", f"expected a list of key columns, got {columns!r}."
        )
    return KeyMatch(
        float(similarity),
        {str(k): str(v) for k, v in synonyms.items()},
        tuple(columns) if columns is not None else None,
    )


def check_unmatched_options(max_unmatched: object, on_unmatched: object, field_path: str) -> None:
    """Raise when `max_unmatched` is not a share in 0-1 or `on_unmatched` not warn/fail."""
    if max_unmatched is not None and (
        isinstance(max_unmatched, bool)
        or not isinstance(max_unmatched, int | float)
        or not 0 <= max_unmatched <= 1
    ):
        raise invalid_field(
            f"{field_path}.max_unmatched",
            f"expected a share of rows between 0 and 1, got {max_unmatched!r}.",
        )
    if on_unmatched is not None and on_unmatched not in UNMATCHED_ACTIONS:
        raise invalid_field(
            f"{field_path}.on_unmatched", f"use warn or fail, got {on_unmatched!r}."
        )


def _fold_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# Marks that change what a key means, unlike the separators (`.`, `-` between words, `'`)
# the spelling form drops: `C++` is not `C`, `-1` is not `1`, `#5` is not `5`.
_MEANINGFUL_MARKS = frozenset("+#%$€£¥@*=<>~^&")
_SIGN = re.compile(r"(?<![^\W_])[-−](?=\d)")


def key_signature(key: str) -> tuple[tuple[str, ...], str]:
    """What matching may never change in a key: its numbers (`Route 66` is not `Route 6`,
    `1601` is not `1600`) and its meaningful marks (a leading sign, `+`, `#`, `%`, ...)."""
    text = unicodedata.normalize("NFKC", key)
    marks = "".join(
        c
        for c in text
        if c in _MEANINGFUL_MARKS or (c != "−" and unicodedata.category(c) in ("Sm", "Sc"))
    )
    signs = "-" * len(_SIGN.findall(text))
    return tuple(re.findall(r"\d+", text)), signs + marks


@dataclass
class KeyMapping:
    """What `match_keys` decided: value -> (key, how, score), and values it would not guess."""

    mapped: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    not_compared: int = 0
    not_compared_rows: int = 0


def match_keys(counts: Mapping[str, int], vocabulary: Sequence[str], match: KeyMatch) -> KeyMapping:
    """Map each value in `counts` (left keys absent from `vocabulary`) onto one vocabulary key.

    Tries, in order: a synonym, the spelling step's canonical form, that form without
    accents, then similarity of canonical forms. Apart from synonyms (which say exactly
    what to map), a key is a candidate only when it has the value's signature: the same
    numbers and meaningful marks (key_signature). A value that fits several keys
    equally well is ambiguous and stays unmatched. The most frequent values are compared
    first; past _FUZZY_PAIRS comparisons the rest get exact forms only (`not_compared`).
    """
    result = KeyMapping()
    keys = sorted(set(vocabulary))
    by_form: dict[str, list[str]] = {}
    by_folded: dict[str, list[str]] = {}
    signatures = {key: key_signature(key) for key in keys}
    # Per signature, the canonical forms of the keys that have it: near matches are
    # looked for only among keys with the value's numbers and marks.
    forms_by_signature: dict[tuple[tuple[str, ...], str], dict[str, None]] = {}
    for key in keys:
        form = canonical_key(key)
        by_form.setdefault(form, []).append(key)
        by_folded.setdefault(_fold_accents(form), []).append(key)
        forms_by_signature.setdefault(signatures[key], {})[form] = None
    synonyms = {canonical_key(k): v for k, v in match.synonyms.items()}
    budget = _FUZZY_PAIRS
    for value in sorted(counts, key=lambda v: (-counts[v], v)):
        form = canonical_key(value)
        signature = key_signature(value)
        if form in synonyms:
            target = synonyms[form]
            spelt_alike = by_form.get(canonical_key(target), [])
            candidates = [target] if target in spelt_alike else spelt_alike
            how = "synonym"
        else:
            how = "spelling" if form in by_form else "accents"
            candidates = [
                key
                for key in by_form.get(form) or by_folded.get(_fold_accents(form), [])
                if signatures[key] == signature
            ]
        if len(candidates) == 1:
            result.mapped[value] = (candidates[0], how, 1.0)
            continue
        if len(candidates) > 1:
            result.ambiguous[value] = candidates
            continue
        forms = list(forms_by_signature.get(signature, ()))
        if match.similarity >= 1 or not forms:
            continue
        if budget < len(forms):
            result.not_compared += 1
            result.not_compared_rows += counts[value]
            continue
        budget -= len(forms)
        scored = _similar(form, forms, match.similarity - MATCH_MARGIN)
        if not scored or scored[0][0] < match.similarity:
            continue
        best_score = scored[0][0]
        close = [f for s, f in scored if s > best_score - MATCH_MARGIN]
        candidates = [k for f in close for k in by_form[f] if signatures[k] == signature]
        if len(candidates) == 1:
            result.mapped[value] = (candidates[0], "similar", round(best_score, 3))
        else:
            result.ambiguous[value] = candidates
    return result


def _similar(form: str, forms: Sequence[str], floor: float) -> list[tuple[float, str]]:
    """(ratio, form) for every form at least `floor` alike, best first."""
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(form)
    scored = []
    for other in forms:
        matcher.set_seq1(other)
        if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor:
            score = matcher.ratio()
            if score >= floor:
                scored.append((score, other))
    return sorted(scored, key=lambda item: (-item[0], item[1]))


def join(
    ws: Workspace,
    left: str,
    right: str,
    on: str | Sequence[str] | Mapping[str, str],
    how: str = "left",
    many_to_one: bool = True,
    suffix: str | None = None,
    columns: Sequence[str] | None = None,
    lazy: bool = False,
    *,
    match: KeyMatch | None = None,
    max_unmatched: float | None = None,
    on_unmatched: str = "warn",
    counts_from: str | None = None,
    name: str | None = None,
) -> tuple[str, StepReport]:
    """Join `right` (called `name` in messages) onto `left`; with `many_to_one`, refuse when
    a right key repeats.

    Right-hand columns that clash with left ones get `suffix` (default `_<name>`); the
    right-hand key columns are dropped because they equal the left ones. With `match`, text
    keys of `left` are first mapped onto `right`'s spellings (see KeyMatch) and the left key
    column takes the matched spelling.

    The report gives the match rate (left rows with a match / left rows) and the most
    frequent unmatched keys, worked out from key counts rather than the joined rows: one
    GROUP BY over the key columns of `counts_from` (default `left`), which may be any
    relation whose key columns hold the same values as `left`'s, such as the base table
    under a chain of lazy many-to-one left joins. With `max_unmatched`, a larger unmatched
    share puts a `warning` in the report, or raises when `on_unmatched` is "fail".
    """
    if how not in JOIN_KINDS:
        raise invalid_field("join.how", f"unknown join {how!r}; use inner or left.")
    check_unmatched_options(max_unmatched, on_unmatched, "join")
    name = name or right
    pairs = _key_pairs(on)
    left_columns, right_columns = columns_of(ws.con, left), columns_of(ws.con, right)
    for left_key, right_key in pairs:
        if left_key not in left_columns:
            raise invalid_field("join.on", f"{left!r} has no column {left_key!r}.")
        if right_key not in right_columns:
            raise invalid_field("join.on", f"{name!r} has no column {right_key!r}.")
    unknown = [c for c in columns or [] if c not in right_columns]
    if unknown:
        raise invalid_field("join.columns", f"{name!r} has no columns {unknown}.")
    text_keys = _text_keys(pairs, left_columns, right_columns, match)

    right_keys = _count_keys(ws, right, [r for _, r in pairs], "m", skip_nulls=True)
    left_keys = ""
    maps: dict[int, str] = {}
    matching: dict[str, Any] = {}
    try:
        if many_to_one:
            _refuse_repeated_keys(ws, right_keys, name)
        left_keys = _count_keys(ws, counts_from or left, [lk for lk, _ in pairs], "n")
        if match is not None:
            maps, matching = _map_keys(ws, left_keys, right_keys, pairs, text_keys, match)
        out = _create_join(
            ws,
            left,
            right,
            pairs,
            how,
            (left_columns, right_columns),
            columns,
            suffix,
            name,
            maps,
            lazy,
        )
        totals, top = _match_counts(ws, left_keys, right_keys, len(pairs), maps)
    finally:
        for table in (left_keys, right_keys):
            if table:
                ws.con.execute(f"DROP TABLE IF EXISTS {quote_identifier(table)}")
    total, matched, inner_rows, left_rows, distinct_unmatched, null_rows = (
        int(v or 0) for v in totals
    )
    after = {("left", True): total, ("inner", True): matched}.get(
        (how, many_to_one), left_rows if how == "left" else inner_rows
    )
    share = (total - matched) / total if total else 0.0
    details: dict[str, Any] = {
        "how": how,
        "on": pairs,
        "left_rows": total,
        "matched_rows": matched,
        "match_rate": round(matched / total, 4) if total else 1.0,
        "unmatched_left_rows": total - matched,
        "distinct_unmatched_keys": distinct_unmatched,
        "null_key_rows": null_rows,
        "unmatched_keys": [{"key": key, "rows": rows} for key, rows in top],
        "renamed": _renamed(left_columns, right_columns, pairs, columns, suffix, name),
    }
    if matching:
        details["match"] = matching
    if max_unmatched is not None:
        details["max_unmatched"] = max_unmatched
        details["on_unmatched"] = on_unmatched
        if share > max_unmatched:
            message = _unmatched_message(
                name,
                pairs,
                (total - matched, total, null_rows),
                max_unmatched,
                top,
                match,
                matching,
            )
            if on_unmatched == "fail":
                raise failed_precondition(message)
            details = {"warning": message, **details}
    return out, StepReport(f"join {name}", total, after, details)


def _text_keys(
    pairs: list[tuple[str, str]],
    left_columns: Mapping[str, str],
    right_columns: Mapping[str, str],
    match: KeyMatch | None,
) -> list[int]:
    """Indexes of the key pairs `match` applies to: the named ones, else every text pair."""
    if match is None:
        return []
    is_text = [left_columns[lk] == "VARCHAR" and right_columns[rk] == "VARCHAR" for lk, rk in pairs]
    if match.columns is None:
        if not any(is_text):
            raise invalid_field(
                "join.match",
                "spellings matching needs a text key; "
                + ", ".join(f"{lk} is {left_columns[lk]}" for lk, _ in pairs)
                + ". Convert the key with a per-source `clean:` step instead.",
            )
        return [i for i, text in enumerate(is_text) if text]
    indexes = []
    for column in match.columns:
        index = next((i for i, (lk, _) in enumerate(pairs) if lk == column), None)
        if index is None:
            raise invalid_field(
                "join.match.spellings.columns",
                f"{column!r} is not a key of this join; keys: {', '.join(lk for lk, _ in pairs)}.",
            )
        if not is_text[index]:
            lk, rk = pairs[index]
            raise invalid_field(
                "join.match.spellings.columns",
                f"{column!r} is {left_columns[lk]} here and {right_columns[rk]} on the right; "
                "spellings matching needs text on both sides.",
            )
        indexes.append(index)
    return indexes


def _count_keys(
    ws: Workspace, relation: str, keys: Sequence[str], count: str, skip_nulls: bool = False
) -> str:
    """A small table of the distinct key tuples of `relation` (_k0, _k1, ...) and their rows."""
    table = ws.new_name("keys", table=False)
    selected = ", ".join(f"{quote_identifier(k)} AS _k{i}" for i, k in enumerate(keys))
    where = (
        " WHERE " + " AND ".join(f"{quote_identifier(k)} IS NOT NULL" for k in keys)
        if skip_nulls
        else ""
    )
    ws.con.execute(
        f"CREATE TABLE {quote_identifier(table)} AS SELECT {selected}, count(*) AS {count} "
        f"FROM {quote_identifier(relation)}{where} GROUP BY ALL"
    )
    return table


def _refuse_repeated_keys(ws: Workspace, right_keys: str, name: str) -> None:
    duplicate = fetch_one(
        ws.con, f"SELECT * FROM {quote_identifier(right_keys)} WHERE m > 1 LIMIT 1"
    )
    if duplicate:
        key = duplicate[0] if len(duplicate) == 2 else tuple(duplicate[:-1])
        raise failed_precondition(
            f"Joining {name!r} is not many-to-one: key {key!r} appears {duplicate[-1]} times "
            f"in {name!r}. Deduplicate {name!r} first (a per-source `clean:` with "
            "drop_duplicates) or set `many_to_one: false`."
        )


def _map_keys(
    ws: Workspace,
    left_keys: str,
    right_keys: str,
    pairs: list[tuple[str, str]],
    indexes: list[int],
    match: KeyMatch,
) -> tuple[dict[int, str], dict[str, Any]]:
    """Per matched key pair, a table (value, matched) of left spellings -> right keys."""
    maps: dict[int, str] = {}
    mapped_rows: list[dict[str, Any]] = []
    ambiguous_rows: list[dict[str, Any]] = []
    not_compared = not_compared_rows = 0
    for index in indexes:
        k = f"_k{index}"
        unmatched = ws.con.execute(
            f"SELECT l.{k}, sum(l.n) FROM {quote_identifier(left_keys)} l "
            f"WHERE l.{k} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
            f"{quote_identifier(right_keys)} r WHERE r.{k} = l.{k}) GROUP BY 1"
        ).fetchall()
        if not unmatched:
            continue
        vocabulary = [
            row[0]
            for row in ws.con.execute(
                f"SELECT DISTINCT {k} FROM {quote_identifier(right_keys)}"
            ).fetchall()
        ]
        counts = {str(value): int(rows) for value, rows in unmatched}
        found = match_keys(counts, vocabulary, match)
        not_compared += found.not_compared
        not_compared_rows += found.not_compared_rows
        column = pairs[index][0]
        for value, (key, how, score) in found.mapped.items():
            mapped_rows.append(
                {
                    "column": column,
                    "value": value,
                    "key": key,
                    "rows": counts[value],
                    "how": how,
                    "score": score,
                }
            )
        for value, candidates in found.ambiguous.items():
            ambiguous_rows.append(
                {"column": column, "value": value, "rows": counts[value], "candidates": candidates}
            )
        if found.mapped:
            table = ws.new_name("keymap", table=False)
            frame = pd.DataFrame(
                {
                    "value": pd.Series(list(found.mapped), dtype="object"),
                    "matched": pd.Series([m[0] for m in found.mapped.values()], dtype="object"),
                }
            )
            ws.con.register("_cairn_keymap", frame)
            ws.con.execute(
                f"CREATE TABLE {quote_identifier(table)} AS SELECT CAST(value AS VARCHAR) AS value, "
                "CAST(matched AS VARCHAR) AS matched FROM _cairn_keymap"
            )
            ws.con.unregister("_cairn_keymap")
            maps[index] = table
    mapped_rows.sort(key=lambda row: (-row["rows"], row["value"]))
    ambiguous_rows.sort(key=lambda row: (-row["rows"], row["value"]))
    details: dict[str, Any] = {
        "method": "spellings",
        "similarity": match.similarity,
        "columns": [pairs[i][0] for i in indexes],
        "mapped_values": len(mapped_rows),
        "mapped_rows": sum(row["rows"] for row in mapped_rows),
        "mapping": mapped_rows[:_LISTED_MAPPINGS],
        "ambiguous": ambiguous_rows[:_LISTED_MAPPINGS],
    }
    if not_compared:
        details["not_compared"] = not_compared
        details["not_compared_rows"] = not_compared_rows
    return maps, details


def _left_key(index: int, column: str, maps: Mapping[int, str], alias: str = "l") -> str:
    own = f"{alias}.{quote_identifier(column)}"
    return f"coalesce(m{index}.matched, {own})" if index in maps else own


def _map_joins(maps: Mapping[int, str], column_of: Mapping[int, str], alias: str = "l") -> str:
    return "".join(
        f" LEFT JOIN {quote_identifier(table)} m{i} ON {alias}.{quote_identifier(column_of[i])} "
        f"= m{i}.value"
        for i, table in maps.items()
    )


def _renamed(
    left_columns: Mapping[str, str],
    right_columns: Mapping[str, str],
    pairs: list[tuple[str, str]],
    columns: Sequence[str] | None,
    suffix: str | None,
    name: str,
) -> dict[str, str]:
    """Right-hand column -> its name in the joined table, where a clash renamed it."""
    suffix = suffix if suffix is not None else f"_{name}"
    dropped = {r for _, r in pairs}
    return {
        column: column + suffix
        for column in right_columns
        if column not in dropped
        and (columns is None or column in columns)
        and column in left_columns
    }


def _create_join(
    ws: Workspace,
    left: str,
    right: str,
    pairs: list[tuple[str, str]],
    how: str,
    schemas: tuple[Mapping[str, str], Mapping[str, str]],
    columns: Sequence[str] | None,
    suffix: str | None,
    name: str,
    maps: Mapping[int, str],
    lazy: bool,
) -> str:
    left_columns, right_columns = schemas
    renamed = _renamed(left_columns, right_columns, pairs, columns, suffix, name)
    mapped_columns = {pairs[i][0]: i for i in maps}
    selected = [
        f"{_left_key(mapped_columns[c], c, maps)} AS {quote_identifier(c)}"
        if c in mapped_columns
        else f"l.{quote_identifier(c)}"
        for c in left_columns
    ]
    dropped = {r for _, r in pairs}
    for column in right_columns:
        if column in dropped or (columns is not None and column not in columns):
            continue
        alias = renamed.get(column, column)
        selected.append(f"r.{quote_identifier(column)} AS {quote_identifier(alias)}")
    condition = " AND ".join(
        f"{_left_key(i, lk, maps)} = r.{quote_identifier(rk)}" for i, (lk, rk) in enumerate(pairs)
    )
    # A lazy join is a view: chained joins then run as one query when materialised.
    out = ws.new_name("joined", table=not lazy)
    ws.con.execute(
        f"CREATE {'VIEW' if lazy else 'TABLE'} {quote_identifier(out)} AS "
        f"SELECT {', '.join(selected)} FROM {quote_identifier(left)} l"
        f"{_map_joins(maps, {i: pairs[i][0] for i in maps})} "
        f"{how.upper()} JOIN {quote_identifier(right)} r ON {condition}"
    )
    return out


def _match_counts(
    ws: Workspace, left_keys: str, right_keys: str, width: int, maps: Mapping[int, str]
) -> tuple[tuple[Any, ...], list[tuple[Any, int]]]:
    """(left rows, matched rows, inner-join rows, left-join rows, distinct unmatched keys,
    unmatched rows with a NULL key) and the most frequent unmatched keys, from the two
    key-count tables."""
    stats = ws.new_name("match_stats", table=False)
    keys = [f"_k{i}" for i in range(width)]
    condition = " AND ".join(f"{_left_key(i, k, maps)} = r.{k}" for i, k in enumerate(keys))
    ws.con.execute(
        f"CREATE TEMP TABLE {quote_identifier(stats)} AS SELECT "
        f"{', '.join('l.' + k for k in keys)}, l.n, r.m FROM {quote_identifier(left_keys)} l"
        f"{_map_joins(maps, dict(enumerate(keys)))} "
        f"LEFT JOIN {quote_identifier(right_keys)} r ON {condition}"
    )
    try:
        totals = fetch_one(
            ws.con,
            "SELECT sum(n), sum(n) FILTER (WHERE m IS NOT NULL), "
            "sum(n * m) FILTER (WHERE m IS NOT NULL), sum(n * coalesce(m, 1)), "
            f"count(*) FILTER (WHERE m IS NULL), sum(n) FILTER (WHERE m IS NULL AND "
            f"({' OR '.join(k + ' IS NULL' for k in keys)})) FROM {quote_identifier(stats)}",
        ) or (0, 0, 0, 0, 0, 0)
        rows = ws.con.execute(
            f"SELECT {', '.join(keys)}, n FROM {quote_identifier(stats)} WHERE m IS NULL "
            f"ORDER BY n DESC, {', '.join(keys)} NULLS LAST LIMIT {_TOP_UNMATCHED}"
        ).fetchall()
    finally:
        ws.con.execute(f"DROP TABLE IF EXISTS {quote_identifier(stats)}")
    top = [(row[0] if width == 1 else list(row[:-1]), int(row[-1])) for row in rows]
    return totals, top


def _render_key(key: Any) -> str:
    if isinstance(key, list):
        return "(" + ", ".join(_render_key(k) for k in key) + ")"
    return "NULL" if key is None else repr(key) if isinstance(key, str) else str(key)


def _unmatched_message(
    name: str,
    pairs: list[tuple[str, str]],
    rows: tuple[int, int, int],
    max_unmatched: float,
    top: list[tuple[Any, int]],
    match: KeyMatch | None,
    matching: Mapping[str, Any] | None = None,
) -> str:
    on = ", ".join(lk if lk == rk else f"{lk} = {rk}" for lk, rk in pairs)
    keys = ", ".join(f"{_render_key(key)} ({rows:,} rows)" for key, rows in top[:5])
    unmatched, total, null_rows = rows
    notes = ""
    if null_rows:
        # No spelling advice reaches a missing key.
        notes += (
            f" {null_rows:,} of the unmatched rows have a NULL key: drop or fill them before "
            "the join (a `missing` step under the source) if they should match."
        )
    matching = matching or {}
    not_compared = matching.get("not_compared", 0)
    if not_compared:
        notes += (
            f" {not_compared:,} distinct keys ({matching['not_compared_rows']:,} rows) were not "
            f"compared for near matches: the comparison budget ({_FUZZY_PAIRS:,} pairs) ran "
            "out, so clean those keys under the source rather than relying on `match:`."
        )
    fixes = "clean the key before the join (a `clean:` under the source, e.g. a spellings step)"
    fixes += (
        ", add synonyms or lower `similarity` under `match:`"
        if match is not None
        else ", add `match: spellings` to the join"
    )
    fixes += ", or raise `max_unmatched` if these rows truly have no match"
    return (
        f"join {name}: {unmatched / total:.1%} of rows ({unmatched:,} of {total:,}) found no match in "
        f"{name!r} on {on}, more than max_unmatched {max_unmatched * 100:g} %. Most frequent "
        f"unmatched keys: {keys}.{notes} To fix: {fixes}."
    )


@dataclass
class UnionReport:
    """What schema rationalisation did and what it could not reconcile."""

    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreconciled: dict[str, str] = field(default_factory=dict)


_NUMERIC_RANK = {
    "BOOLEAN": 0,
    "TINYINT": 1,
    "SMALLINT": 2,
    "INTEGER": 3,
    "BIGINT": 4,
    "HUGEINT": 5,
    "FLOAT": 6,
    "DOUBLE": 7,
}


def _unify(types: list[str]) -> str | None:
    """One type that holds every input type, or None when only text can hold them all."""
    distinct = set(types)
    if len(distinct) == 1:
        return types[0]
    if all(t in _NUMERIC_RANK for t in distinct):
        return max(distinct, key=lambda t: _NUMERIC_RANK[t])
    if all(t.startswith(("DECIMAL", *_NUMERIC_RANK)) for t in distinct):
        return "DOUBLE"
    if distinct <= {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}:
        return "TIMESTAMP"
    return None


def union(
    ws: Workspace,
    relations: Sequence[str],
    renames: Mapping[str, str] | None = None,
    normalize_names: bool = True,
    source_column: str | None = "_source",
) -> tuple[str, StepReport, UnionReport]:
    """Stack relations by column name after normalising names and applying `renames`.

    Types are unified to the widest common type; where one source has text that does not
    parse as the others' type, the column stays text and is listed in `unreconciled`.
    """
    renames = {
        normalize_column_name(k) if normalize_names else k: v for k, v in (renames or {}).items()
    }
    report = UnionReport()
    schemas: dict[str, dict[str, str]] = {}
    for relation in relations:
        mapped: dict[str, str] = {}
        for column, kind in columns_of(ws.con, relation).items():
            target = normalize_column_name(column) if normalize_names else column
            target = renames.get(target, renames.get(column, target))
            if target != column:
                report.renamed.setdefault(relation, {})[column] = target
            mapped[column] = target
            schemas.setdefault(target, {})[relation] = kind
        schemas.setdefault("\0order", {})  # keeps dict insertion order meaningful
        ws.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote_identifier('_u_' + relation)} AS SELECT "
            + ", ".join(
                f"{quote_identifier(c)} AS {quote_identifier(t)}" for c, t in mapped.items()
            )
            + f" FROM {quote_identifier(relation)}"
        )
    schemas.pop("\0order")
    final_types: dict[str, str] = {}
    for column, per_source in schemas.items():
        unified = _unify(list(per_source.values()))
        if unified is None:
            numeric = [t for t in per_source.values() if t != "VARCHAR"]
            common = _unify(numeric) if numeric else None
            if common and _all_text_casts(ws, column, per_source, common):
                unified = common
            else:
                unified = "VARCHAR"
                report.unreconciled[column] = ", ".join(
                    f"{source}: {kind}" for source, kind in per_source.items()
                )
        final_types[column] = unified
        missing = [r for r in relations if r not in per_source]
        if missing:
            report.missing[column] = missing
    report.types = final_types
    selects = []
    for relation in relations:
        parts = []
        for column, kind in final_types.items():
            if relation in schemas[column]:
                parts.append(
                    f"TRY_CAST({quote_identifier(column)} AS {kind}) AS {quote_identifier(column)}"
                )
            else:
                parts.append(f"CAST(NULL AS {kind}) AS {quote_identifier(column)}")
        if source_column:
            parts.append(f"'{relation}' AS {quote_identifier(source_column)}")
        selects.append(f"SELECT {', '.join(parts)} FROM {quote_identifier('_u_' + relation)}")
    out = ws.new_name("union")
    ws.con.execute(f"CREATE TABLE {quote_identifier(out)} AS " + " UNION ALL ".join(selects))
    before = sum(ws.count(r) for r in relations)
    step = StepReport(
        "union",
        before,
        ws.count(out),
        {
            "renamed": report.renamed,
            "missing_columns": report.missing,
            "unreconciled": report.unreconciled,
        },
    )
    return out, step, report


def _all_text_casts(ws: Workspace, column: str, per_source: Mapping[str, str], target: str) -> bool:
    """True when every non-null text value of `column` parses as `target`."""
    for relation, kind in per_source.items():
        if kind != "VARCHAR":
            continue
        failures = fetch_one(
            ws.con,
            f"SELECT count(*) FROM {quote_identifier('_u_' + relation)} "
            f"WHERE {quote_identifier(column)} IS NOT NULL "
            f"AND TRY_CAST({quote_identifier(column)} AS {target}) IS NULL",
        )
        if failures and failures[0]:
            return False
    return True
