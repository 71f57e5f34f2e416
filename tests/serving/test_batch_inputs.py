"""Batch-prediction input: splitting between workers, line numbers, CSV, TFRecord framing."""

from __future__ import annotations

import gzip
import io
import re
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest

from cairn.serving.batch import inputs, numeric
from cairn.serving.batch.inputs import (
    DEFAULT_BYTES_PER_WORKER,
    InputFile,
    Piece,
    read_units,
    split_key,
    split_text,
    tf_records,
    worker_count,
    write_tf_record,
)
from cairn.storage.tfrecord import crc32c, masked_crc32c


def _file(path: Path, text: bytes, uri: str) -> InputFile:
    path.write_bytes(text)
    return InputFile(str(path), uri, len(text))


def test_crc32c_matches_the_standard_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert masked_crc32c(b"") == 0xA282EAD8


@pytest.mark.parametrize("read_size", [5, 64, 1 << 20])
@pytest.mark.parametrize("shares", [1, 2, 3, 7, 40])
def test_every_line_is_read_once_with_its_number(
    tmp_path: Path, shares: int, read_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "_READ_CHUNK", read_size)  # reads that split lines
    lines_a = [f"[{i}, {i * 2}]" for i in range(50)]
    lines_b = [f'{{"key": "b{i}", "instance": [{i}]}}' for i in range(30)]
    text_a = ("\n".join(lines_a[:10]) + "\r\n\n" + "\n".join(lines_a[10:])).encode()  # no \n at end
    files = [
        _file(tmp_path / "a.jsonl", text_a, "gs://b/a.jsonl"),
        _file(tmp_path / "b.jsonl", ("\n".join(lines_b) + "\n").encode(), "gs://b/b.jsonl"),
    ]
    seen_units = [u for share in split_text(files, shares) for u in read_units(share, "JSON")]
    seen = [(u.uri, u.number, u.key, u.instance) for u in seen_units]
    expected_a = [("gs://b/a.jsonl", i + 1 + (i >= 10), None, [i, i * 2]) for i in range(50)]
    expected_b = [("gs://b/b.jsonl", i + 1, f"b{i}", [i]) for i in range(30)]
    assert seen == expected_a + expected_b
    blocks = [b for share in split_text(files, shares) for b in inputs.line_blocks(share, 4)]
    numbered = [(uri, n) for uri, first, lines in blocks for n, _ in enumerate(lines, first)]
    assert [(uri, n) for uri, n, _, _ in seen] == [
        (uri, n)
        for uri, n in numbered
        if (uri, n) != ("gs://b/a.jsonl", 11)  # the blank line
    ]
    # Blocks of bytes (the fast path's reads) hold the same lines under the same numbers.
    as_bytes = [
        (uri, n, line)
        for share in split_text(files, shares)
        for uri, first, block in inputs.text_blocks(share)
        for n, line in enumerate(inputs.block_lines(block), first)
    ]
    assert all(
        block.endswith(b"\n")
        for s in split_text(files, shares)
        for *_, block in inputs.text_blocks(s)
    )
    assert [(uri, n) for uri, n, _ in as_bytes] == numbered
    assert [(u.uri, u.number) for u in seen_units] == [
        (uri, n) for uri, n, line in as_bytes if line.strip()
    ]


def test_bad_json_lines_are_units_with_their_reason(tmp_path: Path) -> None:
    file = _file(tmp_path / "in.jsonl", b"[1]\n{oops\n[2]\n", "gs://b/in.jsonl")
    units = list(read_units([Piece(file)], "TEXT"))
    assert [u.number for u in units] == [1, 2, 3]
    assert units[1].error is not None and "not valid JSON" in units[1].error
    assert units[2].instance == [2]


def test_csv_rows_become_lists_of_values(tmp_path: Path) -> None:
    file = _file(tmp_path / "in.csv", b'1,2.5,,"a,b"\n3,4,5,x\n', "gs://b/in.csv")
    units = list(read_units([Piece(file)], "CSV"))
    assert [u.instance for u in units] == [[1, 2.5, None, "a,b"], [3, 4, 5, "x"]]


def test_keyed_instances() -> None:
    assert split_key({"key": 7, "instance": [1, 2]}) == (7, [1, 2])
    # An object with other fields is a plain instance (e.g. a TensorFlow model's inputs).
    assert split_key({"key": 7, "x": 1}) == (None, {"key": 7, "x": 1})


def test_tf_records_round_trip_and_report_corruption(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    for record in (b"[1, 2]", b"[3, 4]", b"[5, 6]"):
        write_tf_record(buffer, record)
    data = bytearray(buffer.getvalue())
    data[12 + 6 + 4 + 12] ^= 0xFF  # the first byte of the second record's data
    read = list(tf_records(io.BytesIO(bytes(data))))
    assert [(n, d) for n, d, e in read if e is None] == [(1, b"[1, 2]"), (3, b"[5, 6]")]
    assert read[1][0] == 2 and "corrupt" in str(read[1][2])
    truncated = list(tf_records(io.BytesIO(buffer.getvalue()[:-3])))
    assert truncated[-1][1] is None and "truncated" in str(truncated[-1][2])


def test_tf_record_shards_take_every_nth_record(tmp_path: Path) -> None:
    path = tmp_path / "in.tfrecord.gz"
    with gzip.open(path, "wb") as handle:
        for i in range(10):
            write_tf_record(handle, orjson.dumps({"key": i, "instance": [i]}))
    file = InputFile(str(path), "gs://b/in.tfrecord.gz", path.stat().st_size)
    got = []
    for shard in range(3):
        units = read_units(
            [Piece(file)], "TF_RECORD_GZIP", shard=shard, shards=3, records_as_json=True
        )
        got += [(u.number, u.key, u.instance) for u in units]
    assert sorted(got) == [(i + 1, i, [i]) for i in range(10)]
    # A TensorFlow model's string input gets each record's bytes as {"b64": ...}.
    (first, *_) = read_units([Piece(file)], "TF_RECORD_GZIP")
    assert set(first.instance) == {"b64"}


def test_worker_count_fits_the_input() -> None:
    small = [InputFile("a", "gs://b/a", 1000)]
    assert worker_count(small, "JSON", 8) == 1
    big = [InputFile("a", "gs://b/a", 10 << 20)]
    assert worker_count(big, "JSON", 8) == 8
    assert worker_count(big, "JSON", 2) == 2
    assert worker_count(small * 3, "TF_RECORD", 8) == 3
    # Without maxWorkerCount a worker takes tens of MB: 10 MB is one worker's, 100 MB four's.
    assert worker_count(big, "JSON", 8, DEFAULT_BYTES_PER_WORKER) == 1
    assert worker_count(big * 10, "JSON", 8, DEFAULT_BYTES_PER_WORKER) == 4


def test_length_crc_is_checked() -> None:
    header = struct.pack("<Q", 3)
    bad = header + struct.pack("<I", 0) + b"abc" + struct.pack("<I", masked_crc32c(b"abc"))
    ((number, data, error),) = list(tf_records(io.BytesIO(bad)))
    assert number == 1 and data is None and "length is corrupt" in str(error)


def _orjson_rows(block: bytes) -> np.ndarray | None:
    """What the general path makes of a block of lines: each line through orjson, all of
    them flat lists of numbers (no booleans, no nulls) of one width, else None."""
    rows = []
    for line in block.split(b"\n"):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, list) or not value:
            return None
        if not all(type(v) in (int, float) for v in value):
            return None
        rows.append(value)
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return np.asarray(rows, dtype=np.float64)


_TOKENS = [
    "0",
    "-0",
    "7",
    "-12",
    "1.5",
    "-0.25",
    "0.0",
    "-0.0",
    "1e5",
    "1E+2",
    "2.5e-3",
    "-0e1",
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551615",
    "123456789012345678901234567890",
    "0.1000000000000000055511151231257827",
    "9007199254740993",
    "4.9e-324",
    # not JSON numbers (or not numbers):
    "01",
    "-01",
    "+1",
    ".5",
    "1.",
    "1.e3",
    "1e",
    "1e+",
    "--1",
    "1-2",
    "0x10",
    "NaN",
    "Infinity",
    "-",
    "",
    "1.2.3",
    "1e5.3",
    "1e2e3",
    "true",
    "null",
    '"1"',
    "[1]",
    "1 2",
]


_BARE_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")


@pytest.mark.parametrize("seed", range(4))
def test_numeric_blocks_read_exactly_what_orjson_reads(seed: int) -> None:
    """The fast path accepts a block only when orjson reads every line as a flat list of
    numbers, and then to the very same floats (signs of zero included)."""
    rng = np.random.default_rng(seed)
    spaces = ["", "", " ", "  ", "\t", "\r"]
    accepted = 0
    for _ in range(1500):
        width = int(rng.integers(1, 4))
        lines = []
        for _ in range(int(rng.integers(1, 4))):
            valid = rng.random() < 0.9
            pool = _TOKENS[:20] if valid else _TOKENS
            items = [
                str(rng.choice(spaces)) + str(rng.choice(pool)) + str(rng.choice(spaces))
                for _ in range(width if rng.random() < 0.95 else width + 1)
            ]
            line = "[" + ",".join(items) + "]"
            if rng.random() < 0.03:
                line = line[:-1]
            lines.append(str(rng.choice(spaces)) + line + str(rng.choice(spaces)))
            if rng.random() < 0.05:
                lines.append(" ")  # a blank line
        block = ("\n".join(lines) + "\n").encode()
        expected = _orjson_rows(block)
        if expected is not None and not np.isfinite(expected).all():
            expected = None  # 1e400: orjson refuses it, numpy never sees it
        got = numeric.parse_rows(block, None)
        if got is None:
            # Refusing is always safe (the general path reads the block), but only the
            # integer `-0` (orjson reads 0, Arrow -0.0) is refused when orjson reads it.
            assert expected is None or _BARE_MINUS_ZERO.search(block), block
            continue
        assert expected is not None, block
        assert got.dtype == np.float64 and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), block
        accepted += 1
    assert accepted > 500  # about 700 of the 1500 blocks are plain numbers


def test_numeric_block_width_and_fallback() -> None:
    block = b"[1, 2.5 ,3e2]\n\n  [4,5,6] \r\n"
    assert numeric.parse_rows(block, None).tolist() == [[1, 2.5, 300], [4, 5, 6]]  # type: ignore[union-attr]
    assert numeric.parse_rows(block, 2) is None  # the model's width decides
    assert numeric.parse_rows(b"[1,2]\n[3]\n", None) is None
    assert numeric.parse_rows(b"\n\n", None) is None
    assert numeric.parse_rows(b'{"key": 1, "instance": [1]}\n', None) is None
    # Without pyarrow (a version's own environment) one orjson call reads the block.
    assert numeric._parse_with_orjson(block, 3).tolist() == [[1, 2.5, 300], [4, 5, 6]]  # type: ignore[union-attr]
    assert numeric._parse_with_orjson(b"[1,2]\n[oops\n", None) is None
