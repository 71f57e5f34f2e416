"""Cleaning steps. Each reads a DuckDB relation, writes a new table and returns a StepReport.

The pure value-level rules (how a spelling or a length is normalised) live beside them as
plain functions, so the fitted transformers that serving applies use exactly the same rules.
"""

from cairn.data.cleaning.duplicates import drop_duplicates
from cairn.data.cleaning.labels import LabelIssue, find_label_issues
from cairn.data.cleaning.missing import drop_missing, impute_missing
from cairn.data.cleaning.outliers import handle_outliers
from cairn.data.cleaning.spellings import canonical_key, normalize_spellings, suggest_merges
from cairn.data.cleaning.units import normalize_units, parse_quantity

__all__ = [
    "LabelIssue",
    "canonical_key",
    "drop_duplicates",
    "drop_missing",
    "find_label_issues",
    "handle_outliers",
    "impute_missing",
    "normalize_spellings",
    "normalize_units",
    "parse_quantity",
    "suggest_merges",
]
