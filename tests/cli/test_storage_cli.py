"""`cairn storage` through click's runner and through the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cairn.cli.storage import storage

CAIRN = str(Path(sys.executable).parent / "cairn")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run(home: Path, *args: str) -> tuple[int, str, str]:
    command, *rest = args
    result = CliRunner().invoke(storage, [command, "--home", str(home), *rest])
    return result.exit_code, result.stdout, result.stderr


def test_mb_cp_ls_cat_rm_round_trip(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "metrics.json"
    source.write_text('{"accuracy": 0.9}')
    assert run(home, "mb", "gs://my-bucket")[0] == 0
    code, _, err = run(home, "cp", str(source), "gs://my-bucket/runs/")
    assert code == 0
    assert "Copying" in err and "Operation completed over 1 objects" in err
    assert (home / "storage/my-bucket/runs/metrics.json").read_text() == '{"accuracy": 0.9}'

    assert run(home, "ls") == (0, "gs://my-bucket/\n", "")
    assert run(home, "ls", "gs://my-bucket")[1] == "gs://my-bucket/runs/\n"
    assert run(home, "ls", "-r", "gs://my-bucket")[1] == "gs://my-bucket/runs/metrics.json\n"
    code, out, _ = run(home, "cat", "gs://my-bucket/runs/metrics.json")
    assert (code, out) == (0, '{"accuracy": 0.9}')

    code, _, err = run(home, "rm", "-r", "gs://my-bucket/runs")
    assert code == 0 and "Removing gs://my-bucket/runs/metrics.json" in err
    assert run(home, "ls", "gs://my-bucket")[1] == ""


def test_ls_long_shows_sizes_times_and_total(home: Path) -> None:
    target = home / "storage/bkt/dir/a.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"12345")
    code, out, _ = run(home, "ls", "-l", "-r", "gs://bkt")
    assert code == 0
    first, total = out.splitlines()
    size, when, uri = first.split()
    assert (size, uri) == ("5", "gs://bkt/dir/a.bin")
    assert when.endswith("Z") and "T" in when
    assert total.startswith("TOTAL: 1 objects, 5 bytes")


def test_cp_recursive_and_wildcards(home: Path, tmp_path: Path) -> None:
    tree = tmp_path / "model"
    (tree / "variables").mkdir(parents=True)
    (tree / "saved_model.pb").write_bytes(b"pb")
    (tree / "variables" / "v.index").write_bytes(b"i")
    assert run(home, "cp", "-r", str(tree), "gs://bkt/export/")[0] == 0
    code, out, _ = run(home, "ls", "-r", "gs://bkt/export")
    assert out.splitlines() == [
        "gs://bkt/export/model/saved_model.pb",
        "gs://bkt/export/model/variables/v.index",
    ]
    code, out, _ = run(home, "cat", "gs://bkt/export/**.pb")
    assert (code, out) == (0, "pb")
    down = tmp_path / "down"
    assert run(home, "cp", "gs://bkt/export/model/*", str(down) + "/")[0] == 0
    assert sorted(path.name for path in down.iterdir()) == ["saved_model.pb"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("cp", "gs://bkt/missing.txt", "gs://bkt/x"), "No URLs matched"),
        (("cp", "gs://bkt/dir", "gs://bkt/x"), "-r"),
        (("ls", "gs://nope-bucket"), "does not exist"),
        (("cat", "gs://bkt/../etc/passwd"), "'..'"),
        (("rm", "gs://bkt/dir"), "-r"),
        (("cat", "gs://bkt/*.none"), "No URLs matched"),
        (("mb", "gs://bkt"), "already exists"),
        (("mb", "gs://UPPER"), "not a valid bucket name"),
        (("ls", "s3://bkt/x"), "not built in Cairn yet"),
    ],
)
def test_errors_are_clean_messages_with_exit_1(
    home: Path, args: tuple[str, ...], fragment: str
) -> None:
    (home / "storage/bkt/dir").mkdir(parents=True)
    (home / "storage/bkt/dir/f").write_text("x")
    code, _, err = run(home, *args)
    assert code == 1
    last_line = err.splitlines()[-1]
    assert last_line.startswith(f"ERROR: (cairn.storage.{args[0]}) ")
    assert fragment in last_line
    assert "Traceback" not in err


def test_every_command_explains_itself() -> None:
    for command in ("cp", "ls", "cat", "rm", "mb"):
        result = CliRunner().invoke(storage, [command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output and "--home" in result.output


def test_console_script_uses_cairn_home(tmp_path: Path) -> None:
    home = tmp_path / "cairn-home"
    source = tmp_path / "hello.txt"
    source.write_text("hello from disk")
    env = {**os.environ, "CAIRN_HOME": str(home)}

    def cairn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CAIRN, "storage", *args], env=env, capture_output=True, text=True, timeout=60
        )

    copied = cairn("cp", str(source), "gs://sub-bucket/in/")
    assert copied.returncode == 0, copied.stderr
    assert (home / "storage/sub-bucket/in/hello.txt").read_text() == "hello from disk"
    assert cairn("cat", "gs://sub-bucket/in/hello.txt").stdout == "hello from disk"
    failed = cairn("cat", "gs://sub-bucket/in/absent.txt")
    assert failed.returncode == 1
    assert (
        failed.stderr.startswith("ERROR: (cairn.storage.cat) ") and "Traceback" not in failed.stderr
    )


def test_without_a_home_it_uses_the_buckets_of_the_local_server(
    cairn_server: Any, tmp_path: Path
) -> None:
    source = tmp_path / "hello.txt"
    source.write_text("hello")
    env = {k: v for k, v in os.environ.items() if k != "CAIRN_HOME"}
    env["CAIRN_API"] = cairn_server.url
    env["HOME"] = str(tmp_path / "elsewhere")  # ~/.cairn must not be where it lands
    done = subprocess.run(
        [CAIRN, "storage", "cp", str(source), "gs://discovered/hello.txt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (cairn_server.home / "storage" / "discovered" / "hello.txt").read_text() == "hello"
