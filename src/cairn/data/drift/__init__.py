"""Drift over time within each slice, with a bound on false alarms; differences between slices.

Method (docs/data.md, "Drift"):

- The time range is cut into `windows` equal windows (6 by default; whole days when the
  range is long). The cut runs between the 0.5th and 99.5th percentiles of the times when
  a few stray times (1970, 2099) lie far outside them; rows outside fall into the first or
  last window. Text times are read as ISO 8601 (TIMESTAMPTZ, offsets kept). Every window
  from the second on is compared with that slice's own history, all the earlier windows
  together. A slice is the whole data, or the rows with one value of a slice column: the
  place column and other low-cardinality text columns (`auto_slice_columns`).
- Each measured column gets one test per slice and window when both the window and its
  history hold at least `min_rows` values: numeric columns by PSI over the reference's
  deciles and the two-sample Kolmogorov-Smirnov test; text columns (and the missing share
  of numeric columns with gaps) by PSI over their categories and a chi-squared test.
  Integer columns are measured unless they look like keys (`looks_like_key`).
- DuckDB does the counting in two passes over all rows: 99 approximate percentiles of each
  numeric column, then counts per (slice, window, percentile bin or category) for every
  slice column at once (GROUPING SETS). A slice whose values fill fewer than
  REFINE_BELOW_BINS of its column's bins (a few mansions among flats) gets two more passes:
  its own 99 percentiles, then its counts per window in those (`counting.refine`). Everything
  below works on those counts. The reference deciles and the KS statistic are therefore
  read at the resolution of the bins: a decile edge falls on a bin edge, and KS is the
  largest gap between the two distributions at the bin edges (never above the exact
  statistic, so its p-value errs on the side of no alarm).
- False alarms: many slices x columns x windows make many tests, so p-values are adjusted
  by Benjamini-Hochberg over every test made, and a test is drift only when its adjusted
  p-value is below `false_discovery_rate` AND its PSI is at least `psi_floor` (an effect
  large enough to matter). PSI shares below `PSI_EPSILON` count as `PSI_EPSILON`.
- A change of all rows that a slice merely repeats (every city's prices up 50 %) is folded
  under the all-rows finding; a slice whose change differs from its siblings' typical
  change stays a finding of its own (`findings._fold_global_changes`).
- Differences between slices (one place against all others, over the whole time range) are
  computed from the same counts, under the same rule (Benjamini-Hochberg over all of them,
  PSI floor), and reported apart: they are not drift.
- When no test runs although a time column was given, `DriftReport.not_tested` says why.

Modules: `model` (settings and results), `stats` (statistics on counts), `counting` (what
is measured, the windows, the SQL that counts), `findings` (the tests, the bound on false
alarms, folding, differences), `queries` (the SQL that reproduces a finding).
"""

from cairn.data.drift.counting import (
    auto_slice_columns,
    is_numeric_type,
    is_text_type,
    looks_like_key,
)
from cairn.data.drift.findings import analyse
from cairn.data.drift.model import Comparison, DriftReport, DriftSettings, SliceDifference
from cairn.data.drift.queries import (
    TABLE,
    comparison_query,
    difference_query,
    render_query,
    slice_condition,
)
from cairn.data.drift.stats import (
    PSI_EPSILON,
    benjamini_hochberg,
    category_test,
    decile_groups,
    numeric_test,
    psi_from_counts,
)

__all__ = [
    "PSI_EPSILON",
    "TABLE",
    "Comparison",
    "DriftReport",
    "DriftSettings",
    "SliceDifference",
    "analyse",
    "auto_slice_columns",
    "benjamini_hochberg",
    "category_test",
    "comparison_query",
    "decile_groups",
    "difference_query",
    "is_numeric_type",
    "is_text_type",
    "looks_like_key",
    "numeric_test",
    "psi_from_counts",
    "render_query",
    "slice_condition",
]
