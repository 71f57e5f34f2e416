"""A block of JSON lines of plain numbers read into one float matrix, without Python objects.

Parsing 1M lines of four numbers with orjson builds 5M Python objects and took about a
second of one core on the dev machine (numpy reading them back another 0.2 s), more than
predicting them with the online benchmark's XGBoost model. Here the whole block is checked
against JSON's grammar for lines that are flat arrays of numbers, in one RE2 match (a DFA,
linear in the block), and the numbers are then converted by Arrow's CSV reader (correctly
rounded, as orjson is): 0.2 s for the same million lines. A block that is anything else,
or holds a number JSON cannot (`1e400`), is refused with None, and the caller reads it
the general way, line by line, which reports every bad line exactly.

Only what orjson accepts gets through, and to the same floats: the one JSON number whose
value differs between the two is the integer `-0` (orjson reads 0, Arrow -0.0), so it is
refused. Without pyarrow (a version's own environment may lack it) the block is parsed by
one orjson call instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import orjson

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
except ImportError:  # pragma: no cover - Cairn's own environment has pyarrow
    pa = None

# JSON's whitespace inside a line (a newline ends it).
_SPACE = r"[ \t\r]*"
# A JSON number, but not `-0` (see above): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
_NUMBER = (
    r"(?:-?[1-9][0-9]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
    r"|-?0\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    r"|-?0[eE][+-]?[0-9]+"
    r"|0)"
)
_ITEM = _SPACE + _NUMBER + _SPACE
# Lines that are each a flat array of numbers, or blank (skipped, as everywhere else); the
# CSV reader then checks that every line has as many as the first.
_BLOCK_PATTERN = rf"\A(?:{_SPACE}(?:\[{_ITEM}(?:,{_ITEM})*\]{_SPACE})?\n)*\z"
_DELETED = b"[] \t\r"  # what is left is CSV: numbers, commas, newlines


def parse_rows(block: bytes, width: int | None) -> np.ndarray | None:
    """The block's lines (each ending with a newline; blank lines skipped) as a float64
    matrix of `width` columns (None: the first line's width), or None when any line is not
    a flat JSON array of that many numbers."""
    if pa is None:
        return _parse_with_orjson(block, width)
    start = block.find(b"[")
    if start < 0:
        return None
    if width is None:
        width = block[start : block.index(b"\n", start)].count(b",") + 1
    if width < 1:
        return None
    # One match over the whole block: RE2 runs it as a DFA, in time linear in the block.
    text = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, len(block)], dtype=np.int64)), pa.py_buffer(block)],
    )
    if not pc.match_substring_regex(text, _BLOCK_PATTERN)[0].as_py():
        return None
    try:
        # The reader refuses a row with another number of fields than the names given.
        table = pa_csv.read_csv(
            pa.py_buffer(block.translate(None, _DELETED)),
            read_options=_read_options(width),
            parse_options=_PARSE_OPTIONS,
            convert_options=_convert_options(width),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows == 0 or table.num_columns != width:
        return None
    matrix = np.empty((table.num_rows, width), dtype=np.float64)
    for index, column in enumerate(table.columns):
        row = 0
        for chunk in column.chunks:
            values = _float_values(chunk)
            matrix[row : row + len(values), index] = values
            row += len(values)
    if not np.isfinite(matrix).all():
        return None  # a number too large for a double: orjson refuses it, so must we
    return matrix


if pa is not None:
    _PARSE_OPTIONS = pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=True)


def _float_values(chunk: Any) -> np.ndarray:
    """A float64 Arrow array without nulls as numpy, read from its buffer: `to_numpy`
    imports pandas (0.2 s of a worker's start) when it is installed."""
    if chunk.null_count:
        raise ValueError("a null in a column read without null values")
    data = chunk.buffers()[1]
    return np.frombuffer(data, dtype=np.float64, count=len(chunk), offset=chunk.offset * 8)


@lru_cache(maxsize=16)
def _read_options(width: int) -> Any:
    return pa_csv.ReadOptions(
        column_names=[f"f{i}" for i in range(width)], use_threads=False, block_size=1 << 30
    )


@lru_cache(maxsize=16)
def _convert_options(width: int) -> Any:
    return pa_csv.ConvertOptions(
        column_types={f"f{i}": pa.float64() for i in range(width)}, null_values=[]
    )


def _parse_with_orjson(block: bytes, width: int | None) -> np.ndarray | None:
    lines = [line for line in block.split(b"\n") if line.strip()]
    if not lines:
        return None
    try:
        matrix = np.asarray(orjson.loads(b"[" + b",".join(lines) + b"]"))
    except (orjson.JSONDecodeError, ValueError):
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "fiub" or len(matrix) != len(lines):
        return None
    if width is not None and matrix.shape[1] != width:
        return None
    return matrix.astype(np.float64, copy=False)
