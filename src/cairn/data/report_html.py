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
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cairn.data.profiling import ColumnProfile, Profile, profile  # noqa: E402
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


def _column_card(column: ColumnProfile, sample: pd.DataFrame) -> str:
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
    return f'<div class="card"><h3>{_e(column.name)}</h3><table>{table}</table>{_column_chart(column, sample)}</div>'


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
    return f'<div class="cols">{"".join(parts)}</div>'


def _drift(result: Profile) -> str:
    if not result.drift:
        return "<p>No slices to compare.</p>"
    ordered = sorted(result.drift, key=lambda d: -(d.psi if np.isfinite(d.psi) else -1))
    rows = "".join(_drift_row(d) for d in ordered[:80])
    return f"<table><tr><th>column</th><th>reference</th><th>slice</th><th>PSI</th><th>KS</th><th></th></tr>{rows}</table>"


def _drift_row(d: Any) -> str:
    css = ' class="flag"' if d.flagged else ""
    ks = _fmt(d.ks) if d.ks is not None else "-"
    return (
        f"<tr{css}><td>{_e(d.column)}</td><td>{_e(d.reference)}</td><td>{_e(d.current)}</td>"
        f"<td>{_fmt(d.psi)}</td><td>{ks}</td><td>{'drift' if d.flagged else ''}</td></tr>"
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
    return (
        "<h2>What was changed</h2>"
        + _svg(figure)
        + f"<table><tr><th>step</th><th>rows before</th><th>rows after</th><th>details</th></tr>{rows}</table>"
    )


def render_profile_html(
    result: Profile, title: str, reports: list[StepReport] | None = None
) -> str:
    """The whole report page as one string."""
    cards = "".join(_column_card(c, result.sample) for c in result.columns)
    flagged = sum(d.flagged for d in result.drift)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f"<p>{result.rows} rows, {len(result.columns)} columns profiled; charts drawn from a sample of {len(result.sample)} rows. "
        f"{flagged} slice comparisons flagged for drift.</p>"
        + _steps(reports or [])
        + f'<h2>Columns</h2><div class="cols">{cards}</div>'
        + f"<h2>Correlations</h2>{_correlations(result)}"
        + f"<h2>Trends</h2>{_trends(result)}"
        + f"<h2>Drift between slices</h2>{_drift(result)}"
        + "</body></html>"
    )


def write_profile_report(
    ws: Workspace,
    relation: str,
    path: str | Path,
    time_column: str | None = None,
    place_column: str | None = None,
    title: str | None = None,
) -> Path:
    """Profile `relation` and write the HTML report to `path`."""
    result = profile(ws, relation, time_column, place_column)
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
        render_profile_html(result, f"Preparation of {recipe.path.name}", reports), encoding="utf-8"
    )
    return path
