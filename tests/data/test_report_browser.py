"""The HTML profile report opens in headless Chromium without errors and shows real charts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cairn.data import Workspace
from cairn.data.report_html import write_profile_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def drifting_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    when = pd.date_range("2024-01-01", periods=n, freq="h")
    shift = np.where(np.arange(n) > n // 2, 3.0, 0.0)  # the second half drifts
    return pd.DataFrame(
        {
            "when": when,
            "place": rng.choice(["north", "south", "east"], n),
            "temperature": rng.normal(10, 2, n) + shift,
            "stable": rng.normal(0, 1, n),
            "kind": rng.choice(["a", "b", None], n),
        }
    )


@pytest.fixture
def report(tmp_path: Path) -> Path:
    with Workspace() as ws:
        table = ws.register_frame(drifting_frame())
        return write_profile_report(ws, table, tmp_path / "report.html", "when", "place")


def test_report_flags_drift_of_the_drifting_column(report: Path) -> None:
    text = report.read_text()
    assert text.count("<svg") >= 8
    flagged_rows = [row for row in text.split("<tr") if 'class="flag"' in row]
    # Every place warmed alike: one finding for all rows, the places named under it.
    assert any(
        "temperature" in row and ">all rows<" in row and "place = north" in row
        for row in flagged_rows
    )
    assert not any(">place = north<" in row for row in flagged_rows)
    assert not any(">stable<" in row for row in flagged_rows)


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium package is not installed (apt-get install -y chromium)",
)
def test_report_opens_in_headless_chromium_without_errors(report: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=FLAGS, headless=True
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on(
                "requestfailed", lambda request: errors.append(f"request failed: {request.url}")
            )
            page.goto(report.as_uri())
            charts = page.locator("svg")
            assert charts.count() >= 8
            box = charts.first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
            assert page.locator("h2", has_text="Drift over time").count() == 1
            assert page.locator("h2", has_text="Differences between slices").count() == 1
        finally:
            browser.close()
    assert errors == []
