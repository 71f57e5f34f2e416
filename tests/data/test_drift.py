"""Drift over time within each slice: found where it hides, not invented where there is none,
and every finding reproducible with `cairn data query`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from cairn.cli.main import cli
from cairn.data import Workspace
from cairn.data.drift import (
    DriftSettings,
    analyse,
    benjamini_hochberg,
    numeric_test,
    psi_from_counts,
)
from cairn.data.profiling import QueryLink, profile
from cairn.data.sources import columns_of

CITY_PRICE = {"Boston": 500e3, "New York": 800e3, "Chicago": 300e3, "Austin": 400e3}


def house_sales(shift: float, n: int = 20_000, seed: int = 1) -> pd.DataFrame:
    """Three years of sales in four cities of very different price levels; Boston's prices
    are multiplied by `shift` in the last six months."""
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("2022-01-01"), pd.Timestamp("2025-01-01")
    sold = start + pd.to_timedelta(rng.uniform(0, (end - start).total_seconds(), n), unit="s")
    city = rng.choice(list(CITY_PRICE), n)
    price = pd.Series(city).map(CITY_PRICE).to_numpy() * rng.lognormal(0, 0.25, n)
    late = (city == "Boston") & (sold >= pd.Timestamp("2024-07-01"))
    return pd.DataFrame(
        {
            "sold": sold.floor("s"),
            "city": city,
            "price": np.where(late, price * shift, price).round(0),
            "area": rng.normal(120, 30, n),
            "kind": rng.choice(["house", "flat"], n),
        }
    )


def analysed(frame: pd.DataFrame, slices: list[str], settings: DriftSettings | None = None):
    with Workspace() as ws:
        table = ws.register_frame(frame)
        types = columns_of(ws.con, table)
        columns = [c for c in frame.columns if c != "sold"]
        return analyse(ws.con, table, types, "sold", slices, columns, settings)


def test_one_city_tripling_in_the_last_six_months_is_the_top_finding() -> None:
    report = analysed(house_sales(shift=3.0), ["city", "kind"])
    top = report.findings[0]
    assert (top.slice_column, top.slice_value, top.column) == ("city", "Boston", "price")
    assert top.window == len(report.windows) - 1  # the last window
    assert top.window_label.startswith("2024-07")
    assert top.psi > 2 and top.ks is not None and top.ks > 0.9 and top.adjusted_p < 1e-10
    flagged_cities = {f.slice_value for f in report.findings if f.slice_column == "city"}
    assert flagged_cities == {"Boston"}
    assert all(f.column == "price" for f in report.findings)
    assert [f.psi for f in report.findings] == sorted(
        (f.psi for f in report.findings), reverse=True
    )


def test_cities_that_differ_without_a_shift_are_not_drift() -> None:
    report = analysed(house_sales(shift=1.0), ["city", "kind"])
    assert report.findings == []
    assert report.tests > 100
    # The ordinary differences between cities are there, but in their own list.
    priced = [d for d in report.differences if d.column == "price" and d.slice_column == "city"]
    assert {d.slice_value for d in priced} == set(CITY_PRICE)
    assert min(d.psi for d in priced) > 0.5


def test_the_old_half_against_half_comparison_missed_what_windows_find() -> None:
    """The first half against the second half dilutes Boston's late tripling into noise."""
    frame = house_sales(shift=3.0)
    middle = frame["sold"].median()
    early, late = frame[frame["sold"] <= middle], frame[frame["sold"] > middle]
    edges = np.quantile(early["price"], np.linspace(0, 1, 11))[1:-1]
    halves = psi_from_counts(
        np.bincount(np.searchsorted(edges, early["price"]), minlength=10).astype(float),
        np.bincount(np.searchsorted(edges, late["price"]), minlength=10).astype(float),
    )
    assert halves < 0.2  # below the customary threshold: the old profile saw nothing
    report = analysed(frame, ["city"])
    assert report.findings[0].psi > 10 * halves


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_many_slices_and_no_shift_report_no_drift(seed: int) -> None:
    """The bound on false alarms: thousands of tests, dozens of nominal hits, no finding."""
    rng = np.random.default_rng(seed)
    n = 40_000
    frame = pd.DataFrame(
        {
            "sold": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.uniform(0, 3 * 365 * 86400, n), unit="s")
        }
    )
    for column, values in (("region", 40), ("store", 25), ("channel", 8)):
        frame[column] = rng.choice([f"{column}{i}" for i in range(values)], n)
    for i in range(4):
        frame[f"x{i}"] = rng.lognormal(i, 1, n)
    frame["visits"] = rng.poisson(3, n)
    frame["grade"] = rng.choice(list("abcde"), n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    frame["gappy"] = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    report = analysed(frame, ["region", "store", "channel"])
    assert report.tests > 3000
    # Without the correction, small slices would raise alarms: p < 0.01 and PSI >= 0.1.
    assert report.raw_hits > 10 and report.uncorrected_alarms > 5
    assert report.findings == []


def test_a_category_share_and_a_missing_share_that_change_are_found() -> None:
    frame = house_sales(shift=1.0)
    rng = np.random.default_rng(5)
    late_chicago = (frame["city"] == "Chicago") & (frame["sold"] >= pd.Timestamp("2024-07-01"))
    frame.loc[late_chicago, "kind"] = np.where(
        rng.random(late_chicago.sum()) < 0.9, "flat", "house"
    )
    late = frame["sold"] >= pd.Timestamp("2024-07-01")
    frame.loc[late & (rng.random(len(frame)) < 0.4), "area"] = np.nan
    report = analysed(frame, ["city"])
    found = {(f.slice_value, f.column, f.measure) for f in report.findings}
    assert ("Chicago", "kind", "categories") in found
    assert (None, "area", "missing share") in found
    assert not any(
        f.column == "kind" and f.slice_value != "Chicago" for f in report.findings if f.slice_column
    )


def test_binned_ks_is_close_to_the_exact_statistic_and_never_above_it() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 5000), rng.normal(0.2, 1.1, 800)
    edges = np.quantile(np.concatenate([reference, current]), np.arange(1, 100) / 100)
    count = lambda values: np.bincount(np.searchsorted(edges, values), minlength=100).astype(float)  # noqa: E731
    psi, ks, p = numeric_test(count(reference), count(current))
    exact = stats.ks_2samp(reference, current)
    assert exact.statistic - 0.02 <= ks <= exact.statistic + 1e-12
    assert exact.pvalue <= p < 1e-4  # conservative, still clear
    assert psi > 0.05


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(4).uniform(0, 0.1, 50)
    assert np.allclose(benjamini_hochberg(p), stats.false_discovery_control(p))


@pytest.fixture
def sales_csv(tmp_path: Path) -> Path:
    frame = house_sales(shift=3.0)
    frame.loc[frame.index[:300], "area"] = np.nan
    frame.loc[frame.index[300:310], "area"] = 5000.0  # absurd outliers
    path = tmp_path / "house-sales.csv"
    frame.to_csv(path, index=False)
    return path


def run_shown(command: str) -> list[dict[str, object]]:
    words = shlex.split(command)
    assert words[:3] == ["cairn", "data", "query"]
    result = CliRunner().invoke(cli, [*words[1:], "--format", "json", "--limit", "100000"])
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_each_finding_query_returns_the_rows_it_describes(sales_csv: Path) -> None:
    from cairn.data import load_source
    from cairn.data.sources import SourceSpec

    with Workspace() as ws:
        relation = load_source(ws.con, SourceSpec(name="source", path=str(sales_csv)))
        result = profile(
            ws,
            relation,
            "sold",
            "city",
            link=QueryLink((str(sales_csv),), "house_sales"),
        )
    assert result.drift is not None
    top = result.drift.findings[0]
    assert (top.slice_value, top.column) == ("Boston", "price")
    rows = {r["period"]: r for r in run_shown(result.shown_query(top.query))}
    assert rows["history"]["n"] == top.rows_history and rows["window"]["n"] == top.rows_window
    assert float(rows["window"]["median"]) > 2.5 * float(rows["history"]["median"])  # type: ignore[arg-type]
    assert "median" in top.window_summary
    area = next(c for c in result.columns if c.name == "area")
    missing = run_shown(result.shown_query(area.missing_query))
    assert len(missing) == 300 and all(r["area"] is None for r in missing)
    outliers = run_shown(result.shown_query(area.outlier_query))
    assert len(outliers) == area.outliers >= 10
    assert outliers[0]["area"] == 5000.0
    difference = result.drift.differences[0]
    by_city = run_shown(result.shown_query(difference.query))
    assert {r["city"] for r in by_city} == set(CITY_PRICE)


def test_profile_command_reports_drift_with_copyable_queries(
    sales_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "profile.html"
    result = CliRunner().invoke(
        cli,
        ["data", "profile", str(sales_csv), "--time", "sold", "--place", "city", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    drift = text[text.index("<h2>Drift over time</h2>") : text.index("<h2>Differences")]
    first = drift.split('class="flag"', 1)[1]
    assert "city = Boston" in first.split("</tr>", 1)[0]
    assert "cairn data query" in first and "house_sales" in first
    assert "not drift" in text[text.index("<h2>Differences") :]


def test_whole_dollar_prices_are_measured_not_taken_for_keys() -> None:
    frame = house_sales(shift=3.0)
    frame["price"] = frame["price"].astype("int64")  # ~99 % distinct whole numbers
    frame["row_number"] = np.arange(len(frame))  # 0, 1, 2, ...: a key
    frame["shop_id"] = np.random.default_rng(2).integers(0, 30, len(frame))  # named like one
    report = analysed(frame, ["city"])
    assert "price" in report.measured and "price" not in report.skipped
    assert {"row_number", "shop_id"} <= set(report.skipped)
    top = report.findings[0]
    assert (top.slice_value, top.column) == ("Boston", "price")


def test_a_small_slice_inside_one_percentile_bin_still_shows_its_drift() -> None:
    """1 % of the sales are mansions at 15x the price: all of them sit in the column's top
    percentile, so only their own bins can show their 50 % rise in the last six months."""
    rng = np.random.default_rng(7)
    n = 60_000
    start, end = pd.Timestamp("2022-01-01"), pd.Timestamp("2025-01-01")
    sold = start + pd.to_timedelta(rng.uniform(0, (end - start).total_seconds(), n), unit="s")
    cities = [f"c{i}" for i in range(30)] + ["Lux"]
    shares = np.array([0.99 / 30] * 30 + [0.01])
    city = rng.choice(cities, n, p=shares / shares.sum())
    price = np.where(city == "Lux", 5e6, 300e3) * rng.lognormal(0, 0.1, n)
    late = (city == "Lux") & (sold >= pd.Timestamp("2024-07-01"))
    frame = pd.DataFrame(
        {"sold": sold.floor("s"), "city": city, "price": np.where(late, price * 1.5, price)}
    )
    report = analysed(frame, ["city"])
    assert [(f.slice_value, f.column) for f in report.findings] == [("Lux", "price")]
    assert report.findings[0].window == len(report.windows) - 1


@pytest.mark.parametrize("stray", ["1970-01-01", "2099-12-31"])
def test_one_stray_timestamp_does_not_switch_drift_off(stray: str) -> None:
    frame = house_sales(shift=3.0)
    odd = frame.iloc[:1].assign(sold=pd.Timestamp(stray))
    report = analysed(pd.concat([frame, odd], ignore_index=True), ["city"])
    assert report.tests > 50 and not report.not_tested
    top = report.findings[0]
    assert (top.slice_value, top.column) == ("Boston", "price")
    assert top.window == len(report.windows) - 1


def test_when_no_test_runs_the_report_says_why() -> None:
    frame = house_sales(shift=1.0).assign(sold=pd.Timestamp("2024-01-01"))
    report = analysed(frame, ["city"])
    assert report.tests == 0 and "single time" in report.not_tested
    small = house_sales(shift=1.0, n=300)
    report = analysed(small, ["city"])
    assert report.tests == 0 and "100 values" in report.not_tested


def test_text_times_that_are_not_iso_are_counted_and_named() -> None:
    frame = house_sales(shift=3.0)
    frame["sold"] = frame["sold"].dt.strftime("%d/%m/%Y")
    report = analysed(frame, ["city"])
    assert report.tests == 0
    assert f"none of the {len(frame)} values" in report.not_tested
    assert "ISO 8601" in report.not_tested
    frame = house_sales(shift=3.0)
    frame["sold"] = frame["sold"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.loc[frame.index[:50], "sold"] = "yesterday"
    report = analysed(frame, ["city"])
    assert report.findings[0].slice_value == "Boston"
    assert "50 of 20000 values of sold do not read as times" in report.time_note


def test_iso_text_times_keep_their_offset() -> None:
    """Boston's late sales written in local time with +14:00: read without the offset they
    would land 14 hours later, here across the 2024-07-01 window boundary."""
    frame = house_sales(shift=3.0)
    report_utc = analysed(frame, ["city"])
    boundary = report_utc.findings[0].window_label.split(" .. ")[0]
    shifted = frame["sold"] + pd.Timedelta(hours=14)
    frame["sold"] = shifted.dt.strftime("%Y-%m-%dT%H:%M:%S+14:00")
    report = analysed(frame, ["city"])
    top = report.findings[0]
    assert top.window_label.split(" .. ")[0] == boundary
    assert (top.rows_history, top.rows_window) == (
        report_utc.findings[0].rows_history,
        report_utc.findings[0].rows_window,
    )


@pytest.mark.parametrize("kind", ["date", "timestamptz"])
def test_date_and_zoned_time_columns(kind: str) -> None:
    frame = house_sales(shift=3.0)
    frame["sold"] = frame["sold"].dt.date if kind == "date" else frame["sold"].dt.tz_localize("UTC")
    report = analysed(frame, ["city"])
    top = report.findings[0]
    assert (top.slice_value, top.column) == ("Boston", "price")


def test_differences_between_slices_of_pure_noise_are_not_reported() -> None:
    rng = np.random.default_rng(3)
    n = 8000
    frame = pd.DataFrame(
        {
            "sold": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.uniform(0, 3 * 365 * 86400, n), unit="s"),
            "store": rng.choice([f"s{i}" for i in range(40)], n),
            "product": rng.choice([f"p{i}" for i in range(45)], n),
            "x": rng.normal(size=n),
        }
    )
    assert analysed(frame, ["store"]).differences == []


def test_columns_named_like_the_report_s_own_aliases_profile(tmp_path: Path) -> None:
    frame = house_sales(shift=3.0).rename(columns={"kind": "period", "area": "n"})
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "profile.html"
    result = CliRunner().invoke(
        cli, ["data", "profile", str(path), "--time", "sold", "--place", "city", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "city = Boston" in text and "median" in text
    assert "query failed" not in text


def test_profile_report_never_shows_a_database_password() -> None:
    from cairn.cli.data.profile import _link

    link = _link("postgresql://ann:s3cret@db.example/shop", True, "public.sales", None)
    assert link is not None
    command = link.command("SELECT 1")
    assert "s3cret" not in command and "ann:***@db.example" in command


def test_a_change_of_all_rows_is_one_finding_and_a_local_one_stays_apart() -> None:
    """Every city's prices up 50 % in the last six months is one finding (all rows), with
    the slices that moved with it named under it; Boston tripling at the same time is its
    own finding."""
    frame = house_sales(shift=1.0)
    late = frame["sold"] >= pd.Timestamp("2024-07-01")
    frame.loc[late, "price"] *= 1.5
    report = analysed(frame, ["city", "kind"])
    assert [(f.slice_column, f.column) for f in report.findings] == [(None, "price")]
    assert report.findings[0].moved_with_all_rows == [
        *(f"city = {c}" for c in sorted(CITY_PRICE)),
        "kind = flat",
        "kind = house",
    ]
    frame.loc[late & (frame["city"] == "Boston"), "price"] *= 2
    report = analysed(frame, ["city", "kind"])
    assert [(f.slice_value, f.column) for f in report.findings] == [
        ("Boston", "price"),
        (None, "price"),
    ]
    assert "city = Boston" not in report.findings[1].moved_with_all_rows
