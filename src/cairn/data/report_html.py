"""The HTML report: one self-contained file with inline SVG charts, readable offline.

Charts are drawn with matplotlib's SVG backend and embedded as markup, so the page needs no
script, no network and no image files beside it.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cairn.data.drift import Comparison, DriftReport, DriftSettings  # noqa: E402
from cairn.data.profiling import ColumnProfile, Profile, QueryLink, profile  # noqa: E402
from cairn.data.workspace import StepReport, Workspace  # noqa: E402

if TYPE_CHECKING:
    from cairn.data.recipe import Recipe

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-top:1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;font-size:.85rem;text-align:left}
.cols{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.5rem}.flag{color:#b00020;font-weight:bold}
svg{max-width:100%;height:auto}
code.q{display:block;font-size:.72rem;background:#f6f8fa;border:1px solid #e3e3e3;padding:.2rem .4rem;margin:.2rem 0;user-select:all;white-space:pre-wrap;word-break:break-all}
.note{color:#555;font-size:.85rem}
"""


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _column_chart(column: ColumnProfile, sample: pd.DataFrame) -> str:
    figure, axis = plt.subplots(figsize=(4, 2.4))
    if column.numeric:
        values = pd.to_numeric(sample[column.name], errors="coerce").dropna()
        if values.empty:
            plt.close(figure)
            return ""
        axis.hist(values.astype(float), bins=30, color="#4878a8")
        axis.set_ylabel("rows")
    elif column.top_values:
        labels = [v[:18] for v, _ in column.top_values][::-1]
        axis.barh(labels, [n for _, n in column.top_values][::-1], color="#6a9955")
        axis.set_xlabel("rows")
    else:
        plt.close(figure)
        return ""
    axis.set_title(column.name, fontsize=9)
    axis.tick_params(labelsize=7)
    return _svg(figure)


def _query(result: Profile, sql: str) -> str:
    """The command that reproduces a finding, selectable with one click to copy."""
    if not sql:
        return ""
    return f'<code class="q" title="the query that reproduces this">{_e(result.shown_query(sql))}</code>'


def _column_card(column: ColumnProfile, result: Profile) -> str:
    sample = result.sample
    rows = [
        ("type", column.type),
        ("missing", f"{column.missing_share:.1%}"),
        ("distinct (approx.)", column.distinct),
        ("min / max", f"{_fmt(column.minimum)} / {_fmt(column.maximum)}"),
    ]
    if column.numeric and column.quantiles:
        rows.append(("mean", _fmt(column.mean)))
        rows.append(
            ("p5 / p25 / p50 / p75 / p95", " / ".join(_fmt(v) for v in column.quantiles.values()))
        )
        rows.append(("outliers (1.5 IQR)", column.outliers))
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    queries = ""
    if column.missing_query:
        queries += f'<p class="note">missing rows:</p>{_query(result, column.missing_query)}'
    if column.outlier_query:
        queries += f'<p class="note">outliers:</p>{_query(result, column.outlier_query)}'
    if column.top_query:
        queries += f'<p class="note">top values:</p>{_query(result, column.top_query)}'
    return (
        f'<div class="card"><h3>{_e(column.name)}</h3><table>{table}</table>'
        f"{queries}{_column_chart(column, sample)}</div>"
    )


def _correlations(result: Profile) -> str:
    matrix = result.correlations
    if matrix.empty:
        return "<p>Fewer than two numeric columns.</p>"
    size = max(4.0, 0.35 * len(matrix))
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
    axis.set_xticks(range(len(matrix)), matrix.columns, rotation=90, fontsize=7)
    axis.set_yticks(range(len(matrix)), matrix.index, fontsize=7)
    figure.colorbar(image, ax=axis, shrink=0.7)
    return _svg(figure)


def _trends(result: Profile) -> str:
    if not result.trends and not result.places:
        return "<p>Give a time column (--time) or a place column (--place) to see trends.</p>"
    parts = []
    for column, table in list(result.trends.items())[:24]:
        figure, axis = plt.subplots(figsize=(4, 2.2))
        axis.plot(table.index, table["mean"], color="#c0504d")
        axis.set_title(f"{column}: mean over {result.time_column}", fontsize=9)
        axis.tick_params(labelsize=7)
        figure.autofmt_xdate()
        parts.append(f'<div class="card">{_svg(figure)}</div>')
    for column, table in list(result.places.items())[:24]:
        figure, axis = plt.subplots(figsize=(4, 2.2))
        axis.bar(
            [str(i)[:12] for i in table.index], table["mean"].to_numpy(dtype=float), color="#8064a2"
        )
        axis.set_title(f"{column}: mean by {result.place_column}", fontsize=9)
        axis.tick_params(labelsize=7)
        parts.append(f'<div class="card">{_svg(figure)}</div>')
    note = (
        f'<p class="note">Means drawn from the sample of {len(result.sample)} rows; the drift '
        "and differences below count every row.</p>"
    )
    return f'{note}<div class="cols">{"".join(parts)}</div>'


_TIME_HINT = "give a time column (--time)"


def _drift(result: Profile, time_hint: str = _TIME_HINT) -> str:
    report = result.drift
    if report is None:
        return f"<p>No drift over time: {_e(time_hint)} to look for it.</p>"
    if report.time_column is None:
        return f"<p>No drift over time ({_e(time_hint)} to look for it); slices compared below.</p>"
    if report.not_tested and not report.tests:
        return f"<p>Drift not tested: {_e(report.not_tested)}.</p>"
    s = report.settings
    slices = (
        f"all rows, and each value of {', '.join(report.slice_columns)}"
        if report.slice_columns
        else "all rows"
    )
    method = (
        f'<p class="note">{len(report.windows)} windows of {_e(report.time_column)}; each '
        f"window is compared with all earlier windows of its slice ({_e(slices)}), for "
        f"{_e(', '.join(report.measured))}. {report.tests} tests with at "
        f"least {s.min_rows} values on each side; PSI over the history's deciles (or "
        f"categories) and KS (chi-squared for categories). Drift means a Benjamini-Hochberg "
        f"adjusted p-value below {s.false_discovery_rate} and PSI of at least {s.psi_floor}; "
        f"{report.raw_hits} tests had an unadjusted p below {s.false_discovery_rate} "
        f"({report.uncorrected_alarms} of them with PSI >= {s.psi_floor}: false alarms "
        "without the correction, unless the change is real).</p>"
    )
    if report.time_note:
        method += f'<p class="note">{_e(report.time_note)}.</p>'
    skipped = "".join(f"<li>{_e(c)}: {_e(why)}</li>" for c, why in report.skipped.items())
    if skipped:
        method += f'<p class="note">Not measured:</p><ul class="note">{skipped}</ul>'
    if not report.findings:
        body = "<p>No drift found.</p>"
    else:
        rows = "".join(_finding_row(result, f) for f in report.findings[:40])
        body = (
            "<table><tr><th>slice</th><th>column</th><th>window</th><th>against history</th>"
            "<th>PSI</th><th>KS</th><th>adjusted p</th><th>history</th><th>window</th>"
            f"<th></th></tr>{rows}</table>"
        )
    closest = ""
    if report.closest:
        rows = "".join(_finding_row(result, f) for f in report.closest)
        closest = (
            "<details><summary>Largest changes that are not drift</summary><table><tr>"
            "<th>slice</th><th>column</th><th>window</th><th>against history</th><th>PSI</th>"
            "<th>KS</th><th>adjusted p</th><th>history</th><th>window</th><th></th></tr>"
            f"{rows}</table></details>"
        )
    return method + body + closest


def _finding_row(result: Profile, d: Comparison) -> str:
    css = ' class="flag"' if d.flagged else ""
    ks = _fmt(d.ks) if d.ks is not None else "-"
    column = d.column if d.measure == "values" else f"{d.column} ({d.measure})"
    more = f" ({d.windows_flagged} windows)" if d.windows_flagged > 1 else ""
    moved = (
        f'<br><span class="note">the same change in {_e(", ".join(d.moved_with_all_rows))}</span>'
        if d.moved_with_all_rows
        else ""
    )
    return (
        f"<tr{css}><td>{_e(d.slice_label)}{moved}</td><td>{_e(column)}</td>"
        f"<td>{_e(d.window_label)}{_e(more)}</td><td>{_e(d.history_label)}</td>"
        f"<td>{_fmt(d.psi)}</td><td>{ks}</td><td>{_p(d.adjusted_p)}</td>"
        f"<td>{_e(d.history_summary)}</td><td>{_e(d.window_summary)}</td>"
        f"<td>{'drift' if d.flagged else ''}</td></tr>"
        f'<tr><td colspan="10">{_query(result, d.query)}</td></tr>'
    )


def _p(value: float) -> str:
    return f"{value:.2g}" if value > 1e-300 else "&lt; 1e-300"


def _differences(result: Profile) -> str:
    report: DriftReport | None = result.drift
    if report is None or not report.slice_columns:
        return "<p>Give a place column (--place) or slice columns to compare slices.</p>"
    if not report.differences:
        return (
            f"<p>No slice differs from the other rows by PSI >= {report.settings.psi_floor} "
            f"with an adjusted p below {report.settings.false_discovery_rate}.</p>"
        )
    rows, shown = [], set()
    for d in report.differences:
        rows.append(
            f"<tr><td>{_e(d.slice_column)} = {_e(d.slice_value)}</td><td>{_e(d.column)}</td>"
            f"<td>{d.rows_slice}</td><td>{d.rows_rest}</td><td>{_fmt(d.psi)}</td>"
            f"<td>{_fmt(d.ks) if d.ks is not None else '-'}</td><td>{_p(d.adjusted_p)}</td></tr>"
        )
        if (d.slice_column, d.column) not in shown:  # one query answers a whole column
            shown.add((d.slice_column, d.column))
            rows.append(f'<tr><td colspan="7">{_query(result, d.query)}</td></tr>')
    return (
        '<p class="note">Each slice against all other rows over the whole time range. These are '
        "ordinary differences between slices (one city dearer than another), not drift. Shown "
        f"when PSI >= {report.settings.psi_floor} and the Benjamini-Hochberg adjusted p-value "
        f"is below {report.settings.false_discovery_rate}.</p>"
        "<table><tr><th>slice</th><th>column</th><th>rows</th><th>other rows</th><th>PSI</th>"
        f"<th>KS</th><th>adjusted p</th></tr>{''.join(rows)}</table>"
    )


def _steps(reports: list[StepReport]) -> str:
    if not reports:
        return ""
    figure, axis = plt.subplots(figsize=(6, 0.4 * len(reports) + 1))
    axis.barh(
        [r.step for r in reports][::-1], [r.rows_after for r in reports][::-1], color="#4bacc6"
    )
    axis.set_xlabel("rows after step")
    axis.tick_params(labelsize=7)
    rows = "".join(
        f"<tr><td>{_e(r.step)}</td><td>{r.rows_before}</td><td>{r.rows_after}</td>"
        f"<td><pre>{_e(json.dumps(r.details, default=str, indent=1)[:3000])}</pre></td></tr>"
        for r in reports
    )
    warnings = "".join(  # e.g. a join that left too many rows unmatched
        f'<p class="flag">Warning: {_e(r.details["warning"])}</p>'
        for r in reports
        if "warning" in r.details
    )
    return (
        "<h2>What was changed</h2>"
        + warnings
        + _svg(figure)
        + f"<table><tr><th>step</th><th>rows before</th><th>rows after</th><th>details</th></tr>{rows}</table>"
    )


def render_profile_html(
    result: Profile,
    title: str,
    reports: list[StepReport] | None = None,
    time_hint: str = _TIME_HINT,
) -> str:
    """The whole report page as one string; `time_hint` says how to name a time column."""
    cards = "".join(_column_card(c, result) for c in result.columns)
    flagged = len(result.drift.findings) if result.drift else 0
    link = (
        f'<p class="note">Each finding shows the <code>cairn data query</code> command that '
        f"reproduces it (the data is the table {_e(result.link.table)}).</p>"
        if result.link
        else ""
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f"<p>{result.rows} rows, {len(result.columns)} columns profiled; charts drawn from a sample of {len(result.sample)} rows. "
        f"{flagged} drift findings.</p>"
        + link
        + _steps(reports or [])
        + f'<h2>Columns</h2><div class="cols">{cards}</div>'
        + f"<h2>Correlations</h2>{_correlations(result)}"
        + f"<h2>Trends</h2>{_trends(result)}"
        + f"<h2>Drift over time</h2>{_drift(result, time_hint)}"
        + f"<h2>Differences between slices</h2>{_differences(result)}"
        + "</body></html>"
    )


def write_profile_report(
    ws: Workspace,
    relation: str,
    path: str | Path,
    time_column: str | None = None,
    place_column: str | None = None,
    title: str | None = None,
    slice_columns: list[str] | None = None,
    drift_settings: DriftSettings | None = None,
    link: QueryLink | None = None,
) -> Path:
    """Profile `relation` and write the HTML report to `path`."""
    result = profile(
        ws,
        relation,
        time_column,
        place_column,
        slice_columns=slice_columns,
        drift_settings=drift_settings,
        link=link,
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        render_profile_html(result, title or f"Profile of {relation}"), encoding="utf-8"
    )
    return target


def write_prepare_report(
    ws: Workspace, relation: str, reports: list[StepReport], path: Path, recipe: Recipe
) -> Path:
    """The report of a `prepare` run: the steps' changes, then a profile of the result."""
    view = ws.new_name("report_view")
    ws.con.execute(f'CREATE VIEW "{view}" AS SELECT * FROM "{relation}"')
    result = profile(ws, view)
    path.write_text(
        render_profile_html(
            result,
            f"Preparation of {recipe.path.name}",
            reports,
            "profile the prepared files with cairn data profile FILE --time COLUMN",
        ),
        encoding="utf-8",
    )
    return path
