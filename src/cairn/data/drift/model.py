"""What drift analysis reports: its settings, each test, each difference between slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriftSettings:
    windows: int = 6
    min_rows: int = 100  # values needed in the window and in its history to test at all
    psi_floor: float = 0.1
    false_discovery_rate: float = 0.01
    max_slice_values: int = 50  # most frequent values of each slice column
    auto_slice_columns: int = 5
    auto_slice_distinct: int = 20  # text columns with 2..20 values are slice columns
    max_categories: int = 50  # text columns with more values are not measured


@dataclass
class Comparison:
    """One test: a column within one slice, a window against that slice's history."""

    column: str
    measure: str  # "values", "categories" or "missing share"
    slice_column: str | None  # None: all rows
    slice_value: Any
    window: int
    window_label: str
    history_label: str
    rows_history: int
    rows_window: int
    psi: float
    ks: float | None
    p_value: float
    adjusted_p: float = 1.0
    flagged: bool = False
    windows_flagged: int = 0
    query: str = ""
    history_summary: str = ""
    window_summary: str = ""
    moved_with_all_rows: list[str] = field(default_factory=list)  # slices folded under it

    @property
    def slice_label(self) -> str:
        if self.slice_column is None:
            return "all rows"
        return f"{self.slice_column} = {'NULL' if self.slice_value is None else self.slice_value}"


@dataclass
class SliceDifference:
    """One slice against the other rows of its column, over the whole time range (not drift)."""

    slice_column: str
    slice_value: Any
    column: str
    measure: str
    rows_slice: int
    rows_rest: int
    psi: float
    ks: float | None
    p_value: float = 1.0
    adjusted_p: float = 1.0
    query: str = ""


@dataclass
class DriftReport:
    time_column: str | None
    windows: list[str]
    slice_columns: list[str]
    measured: list[str]
    skipped: dict[str, str]
    settings: DriftSettings
    tests: int = 0
    raw_hits: int = 0  # tests with an unadjusted p below the false-discovery rate
    uncorrected_alarms: int = 0  # of those, with PSI above the floor: drift without the bound
    findings: list[Comparison] = field(default_factory=list)  # flagged, largest PSI first
    closest: list[Comparison] = field(default_factory=list)  # largest PSI among the rest
    differences: list[SliceDifference] = field(default_factory=list)
    not_tested: str = ""  # why no test ran, when none did although a time column was given
    time_note: str = ""  # e.g. text times that did not parse
