"""The analysis: every window of every slice tested against its history, the bound on false
alarms, changes of all rows folded, and differences between slices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from cairn.data.drift.counting import (
    Measure,
    TimeAxis,
    aligned,
    bins_of,
    count_query,
    measures_of,
    most_frequent_values,
    pooled_counts,
    refine,
    time_axis,
)
from cairn.data.drift.model import Comparison, DriftReport, DriftSettings, SliceDifference
from cairn.data.drift.queries import comparison_query, difference_query
from cairn.data.drift.stats import benjamini_hochberg, category_test, numeric_test, place_among


def analyse(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    types: dict[str, str],
    time_column: str | None,
    slice_columns: Sequence[str],
    columns: Sequence[str],
    settings: DriftSettings | None = None,
) -> DriftReport:
    """Drift over time within every slice (needs `time_column`) and differences between
    slices, for `columns` of `relation`; the method is in cairn.data.drift's docstring."""
    settings = settings or DriftSettings()
    skipped: dict[str, str] = {}
    measured = [c for c in columns if c != time_column]
    axis = (
        time_axis(con, relation, time_column, types[time_column], settings.windows)
        if time_column
        else None
    )
    time = axis if isinstance(axis, TimeAxis) else None
    measures = measures_of(con, relation, types, measured, settings, skipped)
    windows = len(time.boundaries) + 1 if time else 1
    window_labels = [time.label(w, w + 1) for w in range(windows)] if time else []
    report = DriftReport(
        time_column,
        window_labels,
        list(slice_columns),
        sorted({m.column for m in measures}),
        skipped,
        settings,
    )
    if isinstance(axis, str):
        report.not_tested = axis
    elif time is not None:
        report.time_note = time.note
    if not measures:
        if time_column and not report.not_tested:
            report.not_tested = "no column could be measured"
        return report
    top_values = most_frequent_values(con, relation, slice_columns, settings)
    sql = count_query(relation, time, slice_columns, top_values, measures)
    result = con.execute(sql).fetchall()
    # (slice column index or -1, value) -> measure index -> window -> {bin: count}
    counts: dict[tuple[int, Any], list[list[dict[Any, int]]]] = {}
    full = (1 << len(slice_columns)) - 1
    n = len(slice_columns)
    for row in result:
        group_set, window = int(row[0]), int(row[1 + 2 * n])
        if group_set == full:
            key: tuple[int, Any] = (-1, None)
        else:
            index = next(i for i in range(n) if not group_set >> (n - 1 - i) & 1)
            if row[1 + n + index]:
                continue  # values beyond the most frequent ones
            key = (index, row[1 + index])
        cells = row[2 + 2 * n :]
        rows = int(cells[0])
        per = counts.setdefault(key, [[{} for _ in range(windows)] for _ in measures])
        for j, m in enumerate(measures):
            per[j][window] = bins_of(m, cells[1 + j], rows)
    refined = (
        refine(con, relation, time, slice_columns, measures, counts, windows, settings)
        if time is not None and windows > 1
        else {}
    )
    _test_windows(report, counts, refined, measures, slice_columns, time, windows, settings, types)
    if time_column and not report.not_tested and not report.tests:
        report.not_tested = (
            f"no window and its history both held {settings.min_rows} values of a column "
            "in any slice (fewer --windows, or more rows)"
        )
    _differences(report, counts, measures, slice_columns)
    return report


def _test(
    measure: Measure, reference: np.ndarray, current: np.ndarray
) -> tuple[float, float | None, float]:
    if measure.measure == "values":
        return numeric_test(reference, current)
    psi, p = category_test(reference, current)
    return psi, None, p


def _test_windows(
    report: DriftReport,
    counts: dict[tuple[int, Any], list[list[dict[Any, int]]]],
    refined: dict[tuple[tuple[int, Any], int], tuple[tuple[float, ...], list[dict[Any, int]]]],
    measures: Sequence[Measure],
    slice_columns: Sequence[str],
    time: TimeAxis | None,
    windows: int,
    settings: DriftSettings,
    types: dict[str, str],
) -> None:
    if time is None or windows < 2:
        return
    tests: list[Comparison] = []
    series: dict[tuple[tuple[int, Any], int], list[np.ndarray]] = {}  # counts per window
    for (index, value), per_measure in counts.items():
        slice_column = None if index < 0 else slice_columns[index]
        for j, (measure, tables) in enumerate(zip(measures, per_measure, strict=True)):
            if slice_column == measure.column:
                continue
            own = refined.get(((index, value), j))
            vectors = aligned(measure, own[1], own[0]) if own else aligned(measure, tables)
            series[((index, value), j)] = vectors
            history = np.zeros_like(vectors[0])
            for window in range(windows):
                current = vectors[window]
                if (
                    window
                    and history.sum() >= settings.min_rows
                    and current.sum() >= settings.min_rows
                ):
                    psi, ks, p = _test(measure, history, current)
                    tests.append(
                        Comparison(
                            measure.column,
                            measure.measure,
                            slice_column,
                            value,
                            window,
                            time.label(window, window + 1),
                            time.label(0, window),
                            int(history.sum()),
                            int(current.sum()),
                            round(psi, 4),
                            None if ks is None else round(ks, 4),
                            p,
                        )
                    )
                history = history + current
    report.tests = len(tests)
    report.raw_hits = sum(t.p_value < settings.false_discovery_rate for t in tests)
    report.uncorrected_alarms = sum(
        t.p_value < settings.false_discovery_rate and t.psi >= settings.psi_floor for t in tests
    )
    for test, q in zip(tests, benjamini_hochberg([t.p_value for t in tests]), strict=True):
        test.adjusted_p = float(q)
        test.flagged = bool(q < settings.false_discovery_rate and test.psi >= settings.psi_floor)
    folded = _fold_global_changes(tests, series, measures, slice_columns, settings)
    best: dict[tuple[Any, ...], Comparison] = {}
    flagged_windows: dict[tuple[Any, ...], int] = {}
    for test in tests:
        if not test.flagged or id(test) in folded:
            continue
        key = (test.slice_column, test.slice_value, test.column, test.measure)
        flagged_windows[key] = flagged_windows.get(key, 0) + 1
        if key not in best or test.psi > best[key].psi:
            best[key] = test
    for key, test in best.items():
        test.windows_flagged = flagged_windows[key]
        test.query = comparison_query(test, time, types)
        if test.slice_column is None:
            test.moved_with_all_rows = sorted(
                {t.slice_label for t in folded.values() if (t.column, t.measure) == key[2:]}
            )
    report.findings = sorted(best.values(), key=lambda t: -t.psi)
    rest = [t for t in tests if not t.flagged]
    report.closest = sorted(rest, key=lambda t: -t.psi)[:10]
    for test in report.closest:
        test.query = comparison_query(test, time, types)


def _fold_global_changes(
    tests: Sequence[Comparison],
    vectors: dict[tuple[tuple[int, Any], int], list[np.ndarray]],
    measures: Sequence[Measure],
    slice_columns: Sequence[str],
    settings: DriftSettings,
) -> dict[int, Comparison]:
    """Flagged slice tests that only repeat a change of all rows in the same window (every
    city's prices up 50 %): id(test) -> test. A slice stays a finding of its own when it
    changed otherwise than its sibling slices (the other values of its slice column)."""
    everywhere = {
        (t.column, t.measure, t.window) for t in tests if t.slice_column is None and t.flagged
    }
    folded: dict[int, Comparison] = {}
    if not everywhere:
        return folded
    index_of = {column: i for i, column in enumerate(slice_columns)}
    position = {(m.column, m.measure): j for j, m in enumerate(measures)}
    for test in tests:
        if not test.flagged or test.slice_column is None:
            continue
        if (test.column, test.measure, test.window) not in everywhere:
            continue
        index, j = index_of[test.slice_column], position[(test.column, test.measure)]
        siblings = [
            v
            for (key, m), v in vectors.items()
            if m == j and key[0] == index and key[1] != test.slice_value
        ]
        own = vectors[((index, test.slice_value), j)]
        if not _changed_otherwise(measures[j], own, siblings, test.window, settings):
            folded[id(test)] = test
    return folded


def _change(measure: Measure, series: list[np.ndarray], window: int) -> np.ndarray | None:
    """How a slice changed from its history to `window`, comparable across slices: for
    values, the window's counts by decile of the slice's own history (a 50 % rise puts
    cities of any price level in the same upper deciles); for categories, each category's
    share in the window over its share in the history. None: too few values to say."""
    history, current = np.sum(series[:window], axis=0), series[window]
    if min(history.sum(), current.sum()) < 1:
        return None
    if measure.measure == "values":
        return place_among(current, history) / current.sum()
    before, after = history / history.sum(), current / current.sum()
    return np.divide(after, before, out=np.full_like(after, np.nan), where=before > 0)


def _changed_otherwise(
    measure: Measure,
    own: list[np.ndarray],
    siblings: Sequence[list[np.ndarray]],
    window: int,
    settings: DriftSettings,
) -> bool:
    """Whether a slice's change differs from the typical (median) change of its siblings,
    by the same rule as drift: a chi-squared p below the false-discovery rate and PSI at
    least the floor."""
    changes = [_change(measure, s, window) for s in siblings]
    typical_changes = [c for c in changes if c is not None]
    if not typical_changes:
        return True  # nothing to compare with: keep the finding
    typical = np.nanmedian(np.array(typical_changes), axis=0)
    current = own[window]
    if measure.measure == "values":
        observed = place_among(current, np.sum(own[:window], axis=0))
        expected = typical
    else:
        history = np.sum(own[:window], axis=0)
        observed, expected = current, history / history.sum() * np.nan_to_num(typical, nan=1.0)
    expected = expected / max(expected.sum(), 1e-12) * observed.sum()
    psi, p = category_test(expected, observed)
    return p < settings.false_discovery_rate and psi >= settings.psi_floor


def _differences(
    report: DriftReport,
    counts: dict[tuple[int, Any], list[list[dict[Any, int]]]],
    measures: Sequence[Measure],
    slice_columns: Sequence[str],
) -> None:
    whole = counts.get((-1, None))
    if whole is None:
        return
    found = []
    for (index, value), per_measure in counts.items():
        if index < 0:
            continue
        slice_column = slice_columns[index]
        for j, measure in enumerate(measures):
            if measure.column == slice_column or measure.measure == "missing share":
                continue
            inside = pooled_counts(measure, per_measure[j])
            total = pooled_counts(measure, whole[j])
            rest = {k: total.get(k, 0) - inside.get(k, 0) for k in total}
            ref, cur = aligned(measure, [rest, inside])
            if ref.sum() < report.settings.min_rows or cur.sum() < report.settings.min_rows:
                continue
            psi, ks, p = _test(measure, ref, cur)
            found.append(
                SliceDifference(
                    slice_column,
                    value,
                    measure.column,
                    measure.measure,
                    int(cur.sum()),
                    int(ref.sum()),
                    round(psi, 4),
                    None if ks is None else round(ks, 4),
                    p,
                )
            )
    # The same rule as drift: many slices x columns make many chances to differ by chance.
    settings = report.settings
    for difference, q in zip(found, benjamini_hochberg([d.p_value for d in found]), strict=True):
        difference.adjusted_p = float(q)
    found.sort(key=lambda d: -d.psi)
    report.differences = [
        d
        for d in found
        if d.psi >= settings.psi_floor and d.adjusted_p < settings.false_discovery_rate
    ][:20]
    for difference in report.differences:
        difference.query = difference_query(difference)
