"""Reading a trial's objective metric as the trainer reports it, while the trial runs.

A trainer reports its hyperparameter metric in one of AI Platform's two ways:

* the cloudml-hypertune library, which rewrites a small JSON-lines file on every report and
  keeps only its last 100 reports there;
* TensorFlow summaries (`tf.summary.scalar`, TF1 `simple_value`), in `events.out.tfevents.*`
  files under the job's directories.

`TrialMetricReader` polls both and remembers everything it has seen, so reports that fall
out of the hypertune file and files that disappear are not forgotten. Event files are
decoded here (TFRecord framing and the few Event/Summary/TensorProto fields needed) rather
than with TensorFlow, whose import costs the server seconds.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.storage.tfrecord import masked_crc32c


@dataclass(frozen=True)
class Measurement:
    step: int
    value: float
    time: float | None = None  # seconds since the epoch, when the source tells


def final_measurement(measurements: Sequence[Measurement]) -> Measurement | None:
    """The last reported measurement of a list in `TrialMetricReader.read()` order
    (AI Platform's `finalMetric` is the last one, not the best one)."""
    return measurements[-1] if measurements else None


# The hypertune file holds at most 100 short lines; anything far bigger is not its writing,
# and only its tail (the latest lines) is worth reading.
_MAX_METRIC_FILE_BYTES = 4 << 20
# A file modified this recently may be rewritten again within the same mtime tick, with the
# same size: its stat is not trusted to mean "unchanged" (git's "racy" check).
_RACY_SECONDS = 2.0

# Bounds on the walk for event files, so a job directory full of checkpoints or data cannot
# make every poll slow.
_MAX_WALK_DEPTH = 8
_MAX_WALK_ENTRIES = 20_000
_EVENT_FILE_PREFIX = "events.out.tfevents."

# A scalar's event is ~100 bytes; records above this (graphs, big images) are skipped unread.
_MAX_RECORD_BYTES = 64 << 20
# Records up to this size are CRC-checked before decoding (pure-Python CRC is slow, and only
# records that mention the tag get this far).
_MAX_CRC_CHECKED_BYTES = 1 << 20


class TrialMetricReader:
    """Incremental: each read() returns every measurement of `tag` seen so far (sorted by
    order of report), re-reading only what changed since the last call.

    Order: by time when every measurement has one (both sources normally do), else by step;
    ties keep the order of report. Hypertune reports come first-class; a summary
    measurement is added unless hypertune reported the same step and value (a trainer
    that does both would otherwise count each report twice).

    Non-finite values are skipped. `summary_dirs` are searched recursively (symbolic
    links to directories are not followed); the same run's files under two of them count
    once. Not thread-safe: one poller per reader.
    """

    def __init__(self, metric_file: Path, summary_dirs: Sequence[Path], tag: str) -> None:
        self.metric_file = Path(metric_file)
        self.summary_dirs = tuple(Path(d) for d in summary_dirs)
        self.tag = tag
        self._tag_bytes = tag.encode("utf-8")
        self._metric_file_stat: tuple[int, int, int] | None = None
        self._hypertune: list[Measurement] = []
        self._hypertune_seen: set[tuple[float | None, int, float]] = set()
        self._summaries: list[Measurement] = []
        self._summaries_seen: set[tuple[float | None, int, float]] = set()
        self._event_files: dict[str, _EventFileState] = {}
        self._merged: list[Measurement] = []

    def read(self) -> list[Measurement]:
        changed = self._read_metric_file()
        for path in self._find_event_files():
            changed |= self._read_event_file(path)
        if changed:
            self._merged = _merge(self._hypertune, self._summaries)
        return list(self._merged)

    # -- cloudml-hypertune ---------------------------------------------------------------

    def _read_metric_file(self) -> bool:
        try:
            with open(self.metric_file, "rb") as handle:
                stat = os.fstat(handle.fileno())
                signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if signature == self._metric_file_stat:
                    return False
                cut = max(0, stat.st_size - _MAX_METRIC_FILE_BYTES)
                handle.seek(cut)
                text = handle.read(_MAX_METRIC_FILE_BYTES).decode("utf-8", errors="replace")
        except OSError:
            return False  # not written yet (or gone): what was seen stays
        stable = time.time() - stat.st_mtime_ns / 1e9 > _RACY_SECONDS
        self._metric_file_stat = signature if stable else None
        lines = text.split("\n")
        if cut:
            lines = lines[1:]  # the cut fell inside a line
        changed = False
        for line in lines:
            # A partially written last line never parses: a JSON object is whole or invalid.
            measurement = _hypertune_line(line, self.tag)
            if measurement is None:
                continue
            key = (measurement.time, measurement.step, measurement.value)
            if key not in self._hypertune_seen:
                self._hypertune_seen.add(key)
                self._hypertune.append(measurement)
                changed = True
        return changed

    # -- TensorFlow summaries ------------------------------------------------------------

    def _find_event_files(self) -> list[str]:
        found: dict[str, None] = {}  # ordered set: overlapping summary_dirs list a file once
        budget = _MAX_WALK_ENTRIES
        pending = [(os.path.abspath(d), 0) for d in self.summary_dirs]
        while pending and budget > 0:
            directory, depth = pending.pop()
            try:
                with os.scandir(directory) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError:
                continue  # not created yet, a file, or unreadable
            for entry in entries[:budget]:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < _MAX_WALK_DEPTH:
                            pending.append((entry.path, depth + 1))
                    elif entry.name.startswith(_EVENT_FILE_PREFIX) and entry.is_file():
                        found[os.path.normpath(entry.path)] = None
                except OSError:
                    continue
            budget -= len(entries)
        return list(found)

    def _read_event_file(self, path: str) -> bool:
        state = self._event_files.setdefault(path, _EventFileState())
        try:
            with open(path, "rb", buffering=1 << 16) as handle:
                stat = os.fstat(handle.fileno())
                if stat.st_ino != state.inode or stat.st_size < state.offset:
                    # Replaced or truncated: read it again from the start; what was already
                    # seen is deduplicated.
                    state.inode, state.offset, state.broken = stat.st_ino, 0, False
                if state.broken or stat.st_size == state.offset:
                    return False
                return self._read_records(handle, state, stat.st_size)
        except OSError:
            return False

    def _read_records(self, handle: Any, state: _EventFileState, size: int) -> bool:
        changed = False
        position = state.offset
        while position + 12 <= size:
            handle.seek(position)
            header = handle.read(12)
            if len(header) < 12:
                break
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                # The framing is lost: nothing after this point can be located.
                state.broken = True
                break
            end = position + 12 + length + 4
            if end > size:
                break  # still being written: retried on the next read
            if length <= _MAX_RECORD_BYTES:
                data = handle.read(length)
                footer = handle.read(4)
                if len(data) < length or len(footer) < 4:
                    break
                if self._tag_bytes in data:
                    (data_crc,) = struct.unpack("<I", footer)
                    if length <= _MAX_CRC_CHECKED_BYTES and masked_crc32c(data) != data_crc:
                        if end == size:
                            break  # perhaps not fully flushed yet: try again next time
                        position = end  # corrupt: skip this one record
                        continue
                    changed |= self._add_events(data)
            position = end
        state.offset = position
        return changed

    def _add_events(self, record: bytes) -> bool:
        try:
            found = list(_scalars(record, self._tag_bytes))
        except (_Malformed, struct.error, OverflowError):
            return False  # not an Event we understand: skip the record
        changed = False
        for measurement in found:
            key = (measurement.time, measurement.step, measurement.value)
            if key not in self._summaries_seen:
                self._summaries_seen.add(key)
                self._summaries.append(measurement)
                changed = True
        return changed


@dataclass
class _EventFileState:
    offset: int = 0
    inode: int = -1
    broken: bool = False  # framing corrupt: stop reading this file (until it is replaced)


def _merge(hypertune: list[Measurement], summaries: list[Measurement]) -> list[Measurement]:
    reported = {(m.step, _as_float32(m.value)) for m in hypertune}
    merged = hypertune + [m for m in summaries if (m.step, _as_float32(m.value)) not in reported]
    times = [m.time for m in merged]
    if None not in times:
        merged.sort(key=lambda m: (m.time or 0.0, m.step))
    else:
        merged.sort(key=lambda m: m.step)
    return merged


def _as_float32(value: float) -> float:
    """Summaries store float32, hypertune writes the double: compare at float32 precision."""
    try:
        result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return value
    return result


# -- the hypertune file ------------------------------------------------------------------


def _hypertune_line(line: str, tag: str) -> Measurement | None:
    """One line of the file: `{"<tag>": "0.93", "global_step": "100", "timestamp": ...}`."""
    line = line.strip()
    if not line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or tag not in doc:
        return None
    value = _number(doc[tag])
    if value is None or not math.isfinite(value):
        return None
    step = _step(doc.get("global_step"))
    if step is None:
        return None
    timestamp = _number(doc.get("timestamp"))
    if timestamp is not None and not math.isfinite(timestamp):
        timestamp = None
    return Measurement(step=step, value=value, time=timestamp)


def _number(raw: Any) -> float | None:
    """A float from a JSON number or a numeric string (hypertune writes `str(float(v))`)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        return float(raw)
    except (ValueError, OverflowError):
        return None


def _step(raw: Any) -> int | None:
    if raw is None:
        return 0  # hypertune writes "0" when the trainer gives no step
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    value = _number(raw)
    if value is None or not value.is_integer():
        return None
    return int(value)


# -- protobuf wire format ----------------------------------------------------------------


class _Malformed(ValueError):
    pass


_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if position >= len(buffer):
            raise _Malformed("truncated varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
    raise _Malformed("varint too long")


def _fields(buffer: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints, bytes for everything else."""
    position, size = 0, len(buffer)
    while position < size:
        key, position = _varint(buffer, position)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == _VARINT:
            value, position = _varint(buffer, position)
        elif wire in (_FIXED64, _FIXED32, _BYTES):
            if wire == _BYTES:
                length, position = _varint(buffer, position)
            else:
                length = 8 if wire == _FIXED64 else 4
            if position + length > size:
                raise _Malformed("field runs past the end")
            value = buffer[position : position + length]
            position += length
        else:
            raise _Malformed(f"unsupported wire type {wire}")  # groups: not in these messages
        if number == 0:
            raise _Malformed("field number 0")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# Event: wall_time = 1 (double), step = 2 (int64), summary = 5.
# Summary: value = 1. Summary.Value: tag = 1, simple_value = 2 (float), tensor = 8.
def _scalars(record: bytes, tag: bytes) -> Iterator[Measurement]:
    wall_time: float | None = None
    step = 0
    summaries: list[bytes] = []
    for number, wire, value in _fields(record):
        if number == 1 and wire == _FIXED64:
            wall_time = struct.unpack("<d", value)[0]
        elif number == 2 and wire == _VARINT:
            step = _signed64(value)
        elif number == 5 and wire == _BYTES:
            summaries.append(value)
    if wall_time is not None and not math.isfinite(wall_time):
        wall_time = None
    for summary in summaries:
        for number, wire, value in _fields(summary):
            if number != 1 or wire != _BYTES:
                continue
            scalar = _summary_value(value, tag)
            if scalar is not None and math.isfinite(scalar):
                yield Measurement(step=step, value=scalar, time=wall_time)


def _summary_value(value: bytes, tag: bytes) -> float | None:
    name: bytes | None = None
    scalar: float | None = None
    for number, wire, field in _fields(value):
        if number == 1 and wire == _BYTES:
            name = field
        elif number == 2 and wire == _FIXED32:
            scalar = struct.unpack("<f", field)[0]  # TF1 simple_value
        elif number == 8 and wire == _BYTES:
            scalar = _tensor_scalar(field)  # TF2 tf.summary.scalar
    return scalar if name == tag else None


# TensorProto: dtype = 1, tensor_shape = 2, tensor_content = 4, and the typed value lists.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_BFLOAT16, _DT_HALF = 1, 2, 3, 9, 14, 19
_CONTENT_FORMATS = {
    _DT_FLOAT: "<f",
    _DT_DOUBLE: "<d",
    _DT_INT32: "<i",
    _DT_INT64: "<q",
    _DT_HALF: "<e",
    _DT_BFLOAT16: "<H",
}
# dtype -> (field number of its value list, struct format when packed as fixed-size items,
# or None when the items are varints)
_VALUE_FIELDS: dict[int, tuple[int, str | None]] = {
    _DT_FLOAT: (5, "f"),
    _DT_DOUBLE: (6, "d"),
    _DT_INT32: (7, None),
    _DT_INT64: (10, None),
    _DT_HALF: (13, None),  # half_val: the 16 bits in an int32
    _DT_BFLOAT16: (13, None),
}


def _tensor_scalar(tensor: bytes) -> float | None:
    """The value of a one-element numeric tensor; None for anything else."""
    dtype = 0
    elements: int | None = 1  # no shape field: a scalar
    content: bytes | None = None
    fields: dict[int, list[tuple[int, Any]]] = {}
    for number, wire, value in _fields(tensor):
        if number == 1 and wire == _VARINT:
            dtype = value
        elif number == 2 and wire == _BYTES:
            elements = _element_count(value)
        elif number == 4 and wire == _BYTES:
            content = value
        else:
            fields.setdefault(number, []).append((wire, value))
    if elements != 1 or dtype not in _VALUE_FIELDS:
        return None
    raw: float | int
    if content:
        fmt = _CONTENT_FORMATS[dtype]
        if len(content) != struct.calcsize(fmt):
            return None
        raw = struct.unpack(fmt, content)[0]
        if dtype == _DT_BFLOAT16:
            return float(_bfloat16(int(raw)))
        return float(raw)
    number, item_format = _VALUE_FIELDS[dtype]
    values = [v for wire, value in fields.get(number, []) for v in _items(wire, value, item_format)]
    if len(values) != 1:
        return None
    raw = values[0]
    if dtype == _DT_HALF:
        return float(struct.unpack("<e", struct.pack("<H", int(raw) & 0xFFFF))[0])
    if dtype == _DT_BFLOAT16:
        return _bfloat16(int(raw))
    return float(raw)


def _items(wire: int, value: Any, item_format: str | None) -> list[float | int]:
    """A repeated numeric field's items, packed or not."""
    if wire == _BYTES:
        if item_format is None:
            items: list[float | int] = []
            position = 0
            while position < len(value):
                item, position = _varint(value, position)
                items.append(_signed64(item))
            return items
        count, rest = divmod(len(value), struct.calcsize(item_format))
        if rest:
            raise _Malformed("packed field of a partial item")
        return list(struct.unpack(f"<{count}{item_format}", value))
    if wire == _VARINT:
        return [_signed64(value)]
    if wire == _FIXED32:
        return [struct.unpack("<f", value)[0]]
    return [struct.unpack("<d", value)[0]]


def _bfloat16(bits: int) -> float:
    result: float = struct.unpack("<f", struct.pack("<I", (bits & 0xFFFF) << 16))[0]
    return result


def _element_count(shape: bytes) -> int | None:
    """TensorShapeProto (dim = 2 with size = 1, unknown_rank = 3): the number of elements."""
    count = 1
    for number, wire, value in _fields(shape):
        if number == 3 and wire == _VARINT and value:
            return None
        if number == 2 and wire == _BYTES:
            size = 0  # proto3 leaves a zero size out
            for dim_number, dim_wire, dim_value in _fields(value):
                if dim_number == 1 and dim_wire == _VARINT:
                    size = _signed64(dim_value)
            if size < 0:
                return None
            count *= size
    return count
