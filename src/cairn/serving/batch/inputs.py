"""Reading batch-prediction input as a stream of instances, each with where it came from.

Text inputs (JSON lines, CSV) are split between workers by byte ranges: a line belongs to
the worker whose range holds its first byte, so every worker reads only its part and line
numbers stay exact (a worker counts the newlines before its range once). TFRecord inputs
cannot be resynchronised in the middle of a file, so every worker reads them whole and
keeps every n-th record. Nothing is read into memory whole.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from cairn.storage.tfrecord import masked_crc32c

JSON_FORMATS = ("JSON", "TEXT")
TF_RECORD_FORMATS = ("TF_RECORD", "TF_RECORD_GZIP")
INPUT_FORMATS = (*JSON_FORMATS, "CSV", *TF_RECORD_FORMATS)
OUTPUT_FORMATS = ("JSON", "TEXT", "CSV")

# Below this many bytes of text input per worker, another worker costs more (loading the
# model) than it saves.
MIN_BYTES_PER_WORKER = 64 * 1024
# Without maxWorkerCount, a worker per this many bytes: one worker already keeps two cores
# busy (a reading thread parses ahead while it predicts), and each more pays ~0.7 s of
# start-up; measured on 1M rows (32 MB), one worker beat two in every run.
DEFAULT_BYTES_PER_WORKER = 32 * 1024 * 1024
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    path: str  # local path
    uri: str  # as the user named it, for the error report
    size: int


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of one text file, or (for TFRecords) the whole file."""

    file: InputFile
    start: int = 0
    end: int = -1


@dataclass(frozen=True)
class Unit:
    """One instance (or the reason its line could not be read) and where it came from."""

    uri: str
    number: int  # 1-based line number, or record number for TFRecords
    instance: Any = None
    key: Any = None
    error: str | None = None
    raw: bytes | None = None  # the JSON text of the instance, when it came from a JSON line


def worker_count(
    files: list[InputFile],
    data_format: str,
    wanted: int,
    bytes_per_worker: int = MIN_BYTES_PER_WORKER,
) -> int:
    """How many workers are worth starting for this input (at least 1, at most `wanted`),
    text inputs giving each worker at least `bytes_per_worker`."""
    if data_format in TF_RECORD_FORMATS:
        return max(1, min(wanted, len(files) or 1, 64))
    total = sum(f.size for f in files)
    return max(1, min(wanted, -(-total // bytes_per_worker)))


def split_text(files: list[InputFile], count: int) -> list[list[Piece]]:
    """Byte ranges of the concatenated files, `count` shares of about equal size."""
    total = sum(f.size for f in files)
    bounds = [total * i // count for i in range(count + 1)]
    shares: list[list[Piece]] = [[] for _ in range(count)]
    offset = 0
    for file in files:
        for index in range(count):
            start = max(bounds[index], offset) - offset
            end = min(bounds[index + 1], offset + file.size) - offset
            if end > start:
                shares[index].append(Piece(file, start, end))
        offset += file.size
    return shares


def read_units(
    pieces: list[Piece],
    data_format: str,
    *,
    shard: int = 0,
    shards: int = 1,
    records_as_json: bool = False,
) -> Iterator[Unit]:
    """The instances of one worker's share, in input order.

    TFRecords are bytes: a TensorFlow model's string input gets them as {"b64": ...} (a
    serialised tf.train.Example, as on AI Platform); `records_as_json` reads each record as
    a JSON instance instead (for the models that take rows of numbers).
    """
    if data_format in TF_RECORD_FORMATS:
        for piece in pieces:
            yield from _tf_record_units(piece.file, data_format, shard, shards, records_as_json)
        return
    parse = _csv_unit if data_format == "CSV" else _json_unit
    for piece in pieces:
        for number, line in _lines_in_range(piece):
            yield parse(piece.file.uri, number, line)


def line_blocks(pieces: list[Piece], size: int) -> Iterator[tuple[str, int, list[bytes]]]:
    """The lines of a text share, about `size` at a time: (uri, number of the first line,
    lines without their newline, blank ones included)."""
    for piece in pieces:
        for first, block in _byte_blocks(piece):
            lines = block_lines(block)
            for offset in range(0, len(lines), size):
                yield piece.file.uri, first + offset, lines[offset : offset + size]


def text_blocks(pieces: list[Piece]) -> Iterator[tuple[str, int, bytes]]:
    """The lines of a text share a read's worth at a time, as one bytes object: (uri,
    number of the first line, whole lines each ending with a newline, blank ones and any
    carriage returns included). Splitting a block with `block_lines` gives its lines."""
    for piece in pieces:
        for first, block in _byte_blocks(piece):
            yield piece.file.uri, first, block


def block_lines(block: bytes) -> list[bytes]:
    """The lines of a block from `text_blocks`, without their newline or carriage return."""
    lines = block[:-1].split(b"\n")
    if b"\r" in block:
        lines = [line.rstrip(b"\r") for line in lines]
    return lines


def json_unit(uri: str, number: int, line: bytes) -> Unit:
    """One JSON line as a unit (its instance, or why it is not one)."""
    return _json_unit(uri, number, line)


def _lines_in_range(piece: Piece) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) of the non-blank lines starting in
    [start, end)."""
    for first, block in _byte_blocks(piece):
        for number, line in enumerate(block_lines(block), first):
            if line.strip():
                yield number, line


def _byte_blocks(piece: Piece) -> Iterator[tuple[int, bytes]]:
    """The lines starting in [start, end), a read's worth at a time: (number of the first,
    the lines as one bytes object, each ending with a newline; the file's last line gets
    one if it lacks it). Only the read that crosses `end` is searched for the cut."""
    end = piece.file.size if piece.end < 0 else piece.end
    with open(piece.file.path, "rb") as handle:
        before, position = _first_line_at(handle, piece.start)
        handle.seek(position)
        number = before + 1  # of the next line to hand out
        carry = b""  # the start of a line that begins at `position`
        while position < end:
            chunk = handle.read(_READ_CHUNK)
            if not chunk:
                if carry:
                    yield number, carry + b"\n"
                return
            data = carry + chunk
            complete = data.rfind(b"\n") + 1
            if position + complete >= end:
                # This read crosses the end of the share: keep the lines starting before
                # it, the last of them up to its newline (found: complete - 1 >= end - 1).
                cut = data.index(b"\n", end - position - 1) + 1
                yield number, data[:cut]
                return
            if complete:
                block = data[:complete]
                yield number, block
                number += block.count(b"\n")
                position += complete
            carry = data[complete:]


def _first_line_at(handle: BinaryIO, start: int) -> tuple[int, int]:
    """Seek to the first line starting at or after `start`; (lines before it, its offset)."""
    if start == 0:
        return 0, 0
    newlines = 0
    handle.seek(0)
    remaining = start - 1
    while remaining > 0:
        chunk = handle.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        remaining -= len(chunk)
    # The byte before `start`: a newline means a line starts exactly at `start`.
    if handle.read(1) == b"\n":
        return newlines + 1, start
    rest = handle.readline()  # the end of a line that began in the previous share
    return newlines + (1 if rest.endswith(b"\n") else 0), start + len(rest)


# A keyed instance: {"key": K, "instance": I} predicts I and writes K beside its prediction.
KEY_FIELD = "key"
INSTANCE_FIELD = "instance"


def split_key(value: Any) -> tuple[Any, Any]:
    """(key, instance) of a keyed instance; (None, value) for a plain one."""
    if isinstance(value, dict) and set(value) == {KEY_FIELD, INSTANCE_FIELD}:
        return value[KEY_FIELD], value[INSTANCE_FIELD]
    return None, value


def _json_unit(uri: str, number: int, line: bytes) -> Unit:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return Unit(uri, number, error=f"The line is not valid JSON: {error}.")
    key, instance = split_key(value)
    return Unit(uri, number, instance, key, raw=line if key is None else None)


def _csv_unit(uri: str, number: int, line: bytes) -> Unit:
    try:
        text = line.decode("utf-8")
        fields = next(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error, StopIteration) as error:
        return Unit(uri, number, error=f"The line is not a CSV row: {error}.")
    return Unit(uri, number, [_csv_value(field) for field in fields])


def _csv_value(text: str) -> Any:
    """A number where the field reads as one, null when empty, the text otherwise."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        return text


def _tf_record_units(
    file: InputFile, data_format: str, shard: int, shards: int, as_json: bool
) -> Iterator[Unit]:
    raw = open(file.path, "rb")  # noqa: SIM115 - closed by the `with` below
    handle: Any = gzip.GzipFile(fileobj=raw, mode="rb") if data_format == "TF_RECORD_GZIP" else raw
    with raw, handle:
        for number, record, error in tf_records(handle):
            if (number - 1) % shards != shard:
                continue
            if error is not None:
                yield Unit(file.uri, number, error=error)
                if record is None:
                    return  # the framing is broken: nothing after it can be found
                continue
            assert record is not None
            if as_json:
                yield _json_unit(file.uri, number, record)
            else:
                yield Unit(file.uri, number, {"b64": base64.b64encode(record).decode("ascii")})


def tf_records(handle: BinaryIO) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(record number, data, problem) of a TFRecord stream, checking both masked CRC32Cs.

    A record whose data CRC is wrong is reported and skipped; a broken length (its CRC
    wrong, or the file ending inside a record) ends the stream with `data` None.
    """
    number = 0
    while True:
        header = handle.read(12)
        if not header:
            return
        number += 1
        if len(header) < 12:
            yield number, None, "The file ends inside a TFRecord header (truncated file)."
            return
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if masked_crc32c(length_bytes) != length_crc:
            yield number, None, "The TFRecord length is corrupt (its CRC does not match)."
            return
        (length,) = struct.unpack("<Q", length_bytes)
        data = handle.read(length)
        footer = handle.read(4)
        if len(data) < length or len(footer) < 4:
            yield number, None, "The file ends inside a TFRecord (truncated file)."
            return
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            yield number, b"", "The TFRecord's data is corrupt (its CRC does not match)."
            continue
        yield number, data, None


def write_tf_record(handle: BinaryIO, data: bytes) -> None:
    """Append one record in TFRecord framing (for tests and tools that make inputs)."""
    length = struct.pack("<Q", len(data))
    handle.write(length + struct.pack("<I", masked_crc32c(length)))
    handle.write(data + struct.pack("<I", masked_crc32c(data)))


def local_files(paths: list[tuple[str, str]]) -> list[InputFile]:
    """InputFiles of (local path, uri) pairs, in the order given."""
    return [InputFile(path, uri, Path(path).stat().st_size) for path, uri in paths]
