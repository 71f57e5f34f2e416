"""`cairn data query SOURCE... SQL`: DuckDB SQL over CSV, Parquet, JSON Lines and SQLite
sources through the real CLI, joins between sources, and the refusal of everything else."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli


def query(*args: str, home: Path | None = None) -> tuple[int, str, str]:
    env = {"CAIRN_HOME": str(home)} if home else {}
    result = CliRunner().invoke(cli, ["data", "query", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def query_json(*args: str) -> list[dict[str, object]]:
    code, out, err = query(*args, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


@pytest.fixture
def shop(tmp_path: Path) -> dict[str, Path]:
    sales = pd.DataFrame(
        {
            "city": ["Boston", "Boston", "Austin", "Chicago", "Austin"],
            "price": [500.0, 700.0, 300.0, 250.0, 350.0],
            "shop_id": [1, 1, 2, 3, 2],
        }
    )
    shops = pd.DataFrame({"shop_id": [1, 2, 3], "owner": ["Ann", "Bo", "Cy"]})
    paths = {
        "csv": tmp_path / "house-sales.csv",
        "parquet": tmp_path / "shops.parquet",
        "jsonl": tmp_path / "events.jsonl",
        "sqlite": tmp_path / "shop.db",
        "secret": tmp_path / "secret.csv",
    }
    sales.to_csv(paths["csv"], index=False)
    shops.to_parquet(paths["parquet"])
    paths["jsonl"].write_text('{"kind": "visit", "n": 3}\n{"kind": "buy", "n": 1}\n')
    with sqlite3.connect(paths["sqlite"]) as con:
        sales.to_sql("sales", con, index=False)
    paths["secret"].write_text("password\nhunter2\n")
    return paths


def test_csv_source_is_a_table_named_after_its_stem(shop: dict[str, Path]) -> None:
    rows = query_json(
        str(shop["csv"]),
        "SELECT city, sum(price) AS total FROM house_sales GROUP BY city ORDER BY city",
    )
    assert rows == [
        {"city": "Austin", "total": 650.0},
        {"city": "Boston", "total": 1200.0},
        {"city": "Chicago", "total": 250.0},
    ]


def test_default_output_is_a_table_with_every_cell(shop: dict[str, Path]) -> None:
    code, out, err = query(str(shop["csv"]), "FROM house_sales ORDER BY price DESC")
    assert code == 0, err
    lines = out.splitlines()
    assert "city" in lines[0] and "price" in lines[0] and "shop_id" in lines[0]
    assert "Boston" in lines[2] and "700.0" in lines[2]
    assert "5 rows" in err


def test_parquet_and_jsonl_sources_and_a_join_between_two_sources(shop: dict[str, Path]) -> None:
    rows = query_json(
        str(shop["csv"]),
        str(shop["parquet"]),
        "SELECT owner, count(*) AS sales FROM house_sales s JOIN shops USING (shop_id) "
        "GROUP BY owner ORDER BY owner",
    )
    assert rows == [
        {"owner": "Ann", "sales": 2},
        {"owner": "Bo", "sales": 2},
        {"owner": "Cy", "sales": 1},
    ]
    assert query_json(str(shop["jsonl"]), "SELECT sum(n) AS n FROM events") == [{"n": 4}]


def test_sqlite_table_and_chosen_names(shop: dict[str, Path]) -> None:
    url = f"sqlite:///{shop['sqlite']}#sales"
    assert query_json(url, "SELECT count(*) AS n FROM sales") == [{"n": 5}]
    rows = query_json(
        f"db={url}",
        f"s={shop['parquet']}",
        "SELECT s.owner, max(db.price) AS top FROM db JOIN s USING (shop_id) GROUP BY 1 ORDER BY 1",
    )
    assert rows == [
        {"owner": "Ann", "top": 700.0},
        {"owner": "Bo", "top": 350.0},
        {"owner": "Cy", "top": 250.0},
    ]
    code, _, err = query(f"sqlite:///{shop['sqlite']}", "SELECT 1")
    assert code == 1 and "#TABLE" in err


def test_output_file_and_limit(shop: dict[str, Path], tmp_path: Path) -> None:
    for suffix in ("csv", "parquet", "jsonl"):
        out = tmp_path / f"out.{suffix}"
        code, stdout, err = query(
            str(shop["csv"]), "FROM house_sales ORDER BY price", "-o", str(out), "--limit", "3"
        )
        assert code == 0, err
        assert f"output: {out}" in stdout and "3 rows" in err
        written = {
            "csv": pd.read_csv,
            "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True),
        }[suffix](out)
        assert written["price"].tolist() == [250.0, 300.0, 350.0]
    code, _, err = query(str(shop["csv"]), "FROM house_sales", "--limit", "2")
    assert code == 0 and "showing the first 2 rows" in err


def test_sources_and_output_in_local_buckets(shop: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    bucket = home / "storage" / "bucket"
    bucket.mkdir(parents=True)
    (bucket / "sales.csv").write_bytes(shop["csv"].read_bytes())
    code, stdout, err = query(
        "gs://bucket/sales.csv",
        "SELECT city, count(*) AS n FROM sales GROUP BY city",
        "-o",
        "gs://bucket/out/counts.parquet",
        home=home,
    )
    assert code == 0, err
    counts = pd.read_parquet(bucket / "out" / "counts.parquet")
    assert dict(zip(counts["city"], counts["n"], strict=True)) == {
        "Boston": 2,
        "Austin": 2,
        "Chicago": 1,
    }


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM '{secret}'",
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM glob('{folder}/*')",
        "SELECT * FROM query('SELECT * FROM read_csv(''{secret}'')')",
    ],
)
def test_file_functions_are_refused(shop: dict[str, Path], sql: str) -> None:
    text = sql.format(secret=shop["secret"], folder=shop["secret"].parent)
    code, out, err = query(str(shop["csv"]), text)
    assert code == 1
    assert "hunter2" not in out + err
    assert "only the named sources can be read (tables: house_sales)" in err
    assert "Permission Error" in err  # DuckDB itself refused, not the statement check


@pytest.mark.parametrize(
    "sql, word",
    [
        # The statement's own kind, as DuckDB names it, after "not " (the list of refused
        # statements that follows names them all, so it cannot be what is asserted).
        ("ATTACH '{folder}/x.db'", "not ATTACH:"),
        ("COPY house_sales TO '{folder}/leak.csv'", "not COPY:"),
        ("INSTALL httpfs", "not LOAD:"),
        ("LOAD httpfs", "not LOAD:"),
        ("SET enable_external_access = true", "not SET:"),
        ("PRAGMA version", "not PRAGMA:"),
        ("CREATE TABLE t AS SELECT 1", "not CREATE:"),
        ("SELECT 1; SELECT 2", "not 2 statements"),
    ],
)
def test_statements_other_than_queries_are_refused(
    shop: dict[str, Path], sql: str, word: str
) -> None:
    folder = shop["secret"].parent
    code, _, err = query(str(shop["csv"]), sql.format(folder=folder))
    assert code == 1 and word in " ".join(err.split())
    assert not (folder / "leak.csv").exists() and not (folder / "x.db").exists()


def test_bad_arguments_say_what_is_wrong(shop: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = query("SELECT 1")
    assert code == 2 and "at least one SOURCE" in err
    code, _, err = query(str(tmp_path / "nope.csv"), "SELECT 1")
    assert code == 1 and "does not exist" in err
    code, _, err = query(str(shop["csv"]), f"x={shop['csv']}", "SELECT 1")
    assert code == 0, err
    code, _, err = query(str(shop["csv"]), str(shop["csv"]), "SELECT 1")
    assert code == 1 and "two sources are named 'house_sales'" in err
    code, _, err = query(str(shop["csv"]), "SELECT nope FROM house_sales")
    assert code == 1 and "nope" in err
    code, _, err = query(str(shop["csv"]), "FROM house_sales", "-o", str(tmp_path / "x.xlsx"))
    assert code == 1 and ".parquet" in err


def test_help_explains_what_is_refused() -> None:
    result = CliRunner().invoke(cli, ["data", "query", "--help"])
    assert result.exit_code == 0
    for words in ("SOURCE... SQL", "external access", "ATTACH", "NAME=SOURCE", "URL#TABLE"):
        assert words in result.output


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "ATTACH '{folder}/x.db'",
        "COPY house_sales TO '{folder}/leak.csv'",
        "SELECT * FROM read_text('{secret}')",
    ],
)
def test_the_locked_connection_itself_refuses(shop: dict[str, Path], statement: str) -> None:
    """Past the statement check: DuckDB's own lock is what keeps the SQL in."""
    import duckdb

    from cairn.data.query import QuerySession, parse_source

    folder = shop["secret"].parent
    with (
        QuerySession([parse_source(str(shop["csv"]))]) as session,
        pytest.raises(duckdb.Error) as refused,
    ):
        session.ws.con.execute(statement.format(folder=folder, secret=shop["secret"]))
    assert "configuration" in str(refused.value) or "Permission" in str(refused.value)
    assert not (folder / "leak.csv").exists() and not (folder / "x.db").exists()


def test_output_replaces_an_existing_file_even_a_source(shop: dict[str, Path]) -> None:
    out = shop["csv"].parent / "cheap.csv"
    out.write_text("old\n")
    code, _, err = query(str(shop["csv"]), "FROM house_sales WHERE price < 400", "-o", str(out))
    assert code == 0, err
    assert pd.read_csv(out)["price"].tolist() == [300.0, 250.0, 350.0]
    code, _, err = query(
        str(shop["csv"]), "FROM house_sales WHERE city = 'Boston'", "-o", str(shop["csv"])
    )
    assert code == 0, err
    assert pd.read_csv(shop["csv"])["price"].tolist() == [500.0, 700.0]
    leftovers = [p.name for p in shop["csv"].parent.iterdir() if "cairn-tmp" in p.name]
    assert leftovers == []


def test_a_failed_query_leaves_no_file_and_no_folder(shop: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder" / "x.csv"
    code, _, err = query(str(shop["csv"]), "SELECT nope FROM house_sales", "-o", str(out))
    assert code == 1 and "nope" in err
    assert not (tmp_path / "new").exists()


def test_cells_and_headers_are_shown_as_written_not_as_markup(shop: dict[str, Path]) -> None:
    code, out, err = query(str(shop["csv"]), "SELECT '[/oops]' AS \"[b]h\", '[red]x[/red]' AS y")
    assert code == 0, err
    assert "[/oops]" in out and "[red]x[/red]" in out and "[b]h" in out


@pytest.fixture
def parts(tmp_path: Path) -> Path:
    """parts/{a,b}/p.csv, with secrets beside and below them."""
    for part, rows in (("a", "1,2\n"), ("b", "3,4\n")):
        (tmp_path / "parts" / part / "deep").mkdir(parents=True)
        (tmp_path / "parts" / part / "p.csv").write_text("x,y\n" + rows)
    (tmp_path / "parts" / "a" / ".env").write_text("TOKEN=hunter2\n")
    (tmp_path / "parts" / "a" / "deep" / "notes.txt").write_text("hunter2\n")
    return tmp_path / "parts"


def test_a_glob_with_a_wildcard_folder_reads_every_matched_file(parts: Path) -> None:
    assert query_json(f"parts={parts / '*' / 'p.csv'}", "SELECT sum(x) AS x FROM parts") == [
        {"x": 4}
    ]
    code, _, err = query(str(parts / "*" / "none.csv"), "SELECT 1")
    assert code == 1 and "matches no file" in err


def test_a_glob_leaves_the_other_files_of_its_folder_unreadable(parts: Path) -> None:
    source = f"parts={parts / 'a' / '*.csv'}"
    assert query_json(source, "SELECT sum(x) AS x FROM parts") == [{"x": 1}]
    for secret in (parts / "a" / ".env", parts / "a" / "deep" / "notes.txt"):
        code, out, err = query(source, f"SELECT * FROM read_text('{secret}')")
        assert code == 1 and "hunter2" not in out + err and "Permission Error" in err


def test_sqlite_is_read_only_never_created_and_its_table_quoted(
    shop: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = query(f"sqlite:///{missing}#sales", "SELECT 1")
    assert code == 1 and "no SQLite file" in err
    assert not missing.exists()
    with sqlite3.connect(shop["sqlite"]) as con:
        con.execute('CREATE TABLE "order" (id INTEGER)')
        con.execute('INSERT INTO "order" VALUES (7)')
    assert query_json(f"sqlite:///{shop['sqlite']}#order", 'SELECT id FROM "order"') == [{"id": 7}]


def test_a_trailing_semicolon_and_comment_and_json_in_select_order(
    shop: dict[str, Path],
) -> None:
    code, out, err = query(
        str(shop["csv"]),
        "SELECT price, 'nan'::DOUBLE AS b, city FROM house_sales LIMIT 1; -- the first sale",
        "--format",
        "json",
    )
    assert code == 0, err
    assert out.index('"price"') < out.index('"b"') < out.index('"city"')
    assert json.loads(out) == [{"price": 500.0, "b": None, "city": "Boston"}]


def test_the_writer_checks_the_suffix_first_and_takes_any_path(tmp_path: Path) -> None:
    import duckdb

    from cairn.data.writer import OutputFile, write_query
    from cairn.domain.errors import ApiError

    with pytest.raises(ApiError, match=r"\.parquet"):
        OutputFile(tmp_path / "x.xlsx")
    con = duckdb.connect()
    odd = tmp_path / "it's here" / "a b.parquet"  # a quote and spaces, in a folder to make
    assert write_query(con, "SELECT range AS i FROM range(5)", odd) == 5
    assert pd.read_parquet(odd)["i"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(duckdb.Error):
        write_query(con, "SELECT nope", odd)
    assert pd.read_parquet(odd)["i"].tolist() == [0, 1, 2, 3, 4]  # the old file stands
    assert [p.name for p in odd.parent.iterdir()] == ["a b.parquet"]  # no staging file left
