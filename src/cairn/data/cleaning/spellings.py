"""Several spellings of one value: case, whitespace, punctuation, synonyms, near-duplicates."""

from __future__ import annotations

import difflib
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

from cairn.data.cleaning._columns import require_columns
from cairn.data.cleaning._mapping import apply_value_map, distinct_counts
from cairn.data.workspace import StepReport, Workspace

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def canonical_key(
    value: str, case: bool = True, whitespace: bool = True, punctuation: bool = True
) -> str:
    """The form two spellings share when they mean the same: `" New-York. "` -> `new york`."""
    key = unicodedata.normalize("NFKC", value)
    if punctuation:
        key = _PUNCTUATION.sub(" ", key)
    if whitespace:
        key = " ".join(key.split())
    if case:
        key = key.casefold()
    return key


def spelling_map(
    counts: Mapping[str, int],
    synonyms: Mapping[str, str] | None = None,
    case: bool = True,
    whitespace: bool = True,
    punctuation: bool = True,
) -> dict[str, str]:
    """Map each spelling to its group's most frequent spelling (or to its synonym's target).

    `synonyms` maps a spelling (compared by canonical key) to the value it should become.
    """

    def key_of(text: str) -> str:
        return canonical_key(text, case, whitespace, punctuation)

    synonym_keys = {key_of(k): v for k, v in (synonyms or {}).items()}
    groups: dict[str, Counter[str]] = {}
    for value, n in counts.items():
        key = key_of(value)
        key = key_of(synonym_keys[key]) if key in synonym_keys else key
        groups.setdefault(key, Counter())[value] += n
    targets = {key_of(v): v for v in synonym_keys.values()}
    mapping: dict[str, str] = {}
    for value in counts:
        key = key_of(value)
        key = key_of(synonym_keys[key]) if key in synonym_keys else key
        mapping[value] = targets.get(key) or groups[key].most_common(1)[0][0]
    return mapping


def suggest_merges(
    counts: Mapping[str, int], threshold: float = 0.85, limit: int = 300
) -> list[tuple[str, str, float]]:
    """Pairs of distinct values that look like one category misspelt: (rare, common, score).

    Only the `limit` most frequent values are compared, which keeps the quadratic search small.
    """
    top = sorted(counts, key=lambda v: -counts[v])[:limit]
    keys = {v: canonical_key(v) for v in top}
    pairs: list[tuple[str, str, float]] = []
    for i, common in enumerate(top):
        for rare in top[i + 1 :]:
            if keys[rare] == keys[common]:
                continue
            score = difflib.SequenceMatcher(None, keys[rare], keys[common]).ratio()
            if score >= threshold:
                pairs.append((rare, common, round(score, 3)))
    return sorted(pairs, key=lambda p: -p[2])


def normalize_spellings(
    ws: Workspace,
    relation: str,
    columns: Sequence[str],
    synonyms: Mapping[str, str] | None = None,
    merge_suggestions: bool = False,
    similarity: float = 0.85,
) -> tuple[str, StepReport]:
    """Rewrite each text column so spellings of one value become one; report suggested merges.

    With `merge_suggestions`, near-duplicates found by `suggest_merges` are merged too;
    otherwise they are only listed for review.
    """
    require_columns(ws, relation, columns, "spellings")
    changed: dict[str, dict[str, str]] = {}
    suggestions: dict[str, list[tuple[str, str, float]]] = {}
    # Each column's vocabulary is one aggregate pass; the rewrites compose as views.
    current = ws.reusable(relation)
    for column in columns:
        table = distinct_counts(ws, current, column)
        counts = dict(zip(table["value"], table["n"].astype(int), strict=True))
        mapping = spelling_map(counts, synonyms)
        merged: Counter[str] = Counter()
        for value, target in mapping.items():
            merged[target] += counts[value]
        found = suggest_merges(merged, similarity)
        suggestions[column] = found
        if merge_suggestions:
            follow = {rare: common for rare, common, _ in found}
            for value, target in mapping.items():
                while target in follow:
                    target = follow[target]
                mapping[value] = target
        changed[column] = {v: t for v, t in mapping.items() if v != t}
        current = apply_value_map(ws, current, column, mapping, "VARCHAR")
    total = ws.count(current)
    ws.note_count(relation, total)
    return current, StepReport(
        "spellings",
        total,
        total,
        {"rewritten": changed, "suggested_merges": suggestions, "merged": merge_suggestions},
    )
