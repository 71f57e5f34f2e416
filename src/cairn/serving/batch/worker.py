"""One batch-prediction worker: loads the model once, predicts its share of the input.

Started by the batch runner (under the replica shim, as the job's uid) as
`python -m cairn.serving.batch.worker --plan PLAN --shard I`. It writes
`prediction.results-I-of-N` and `prediction.errors_stats-I-of-N` in the output directory
(under temporary names until the shard is complete), a progress file while it runs and a
done file at the end, both in its working directory. A shard with a done file is never
predicted again, so a restarted server resumes a job shard by shard.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from cairn.serving.batch import inputs
from cairn.serving.batch.inputs import (
    JSON_FORMATS,
    TF_RECORD_FORMATS,
    InputFile,
    Piece,
    Unit,
    block_lines,
    json_unit,
    read_units,
    text_blocks,
)
from cairn.serving.batch.numeric import parse_rows
from cairn.serving.batch.plan import (
    BatchPlan,
    done_path,
    errors_name,
    progress_path,
    results_name,
    write_json_atomically,
)
from cairn.serving.frameworks import (
    PICKLE_FILES,
    PREPARATION_FILE,
    TF_FILES,
    XGBOOST,
    XGBOOST_FILES,
    normalize_framework,
)
from cairn.serving.loaders.base import RowPredictor
from cairn.serving.responses import json_default

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
_PROGRESS_EVERY_S = 1.0
# Exit code of a worker whose model did not load (the stderr says why).
MODEL_LOAD_FAILED = 3


class ShardWriter:
    """Results and bad lines of one shard, with the counts that go in predictionOutput."""

    def __init__(self, results: BinaryIO, errors: BinaryIO, csv_output: bool) -> None:
        self.results = results
        self.errors = errors
        self.csv_output = csv_output
        self.columns: list[str] | None = None
        self.predictions = 0
        self.error_count = 0

    def result(self, unit: Unit, prediction: Any) -> None:
        record = result_record(unit.key, prediction)
        if self.csv_output:
            self._csv_row(record)
        else:
            self.results.write(orjson.dumps(record, default=json_default, option=_OPTIONS))
        self.predictions += 1

    def error(self, unit: Unit, message: str, record_input: bool) -> None:
        where = "record" if record_input else "line"
        entry = {"inputPath": unit.uri, where: unit.number, "error": message}
        self.errors.write(orjson.dumps(entry, option=_OPTIONS))
        self.error_count += 1

    def _csv_row(self, record: dict[str, Any]) -> None:
        flat = _flatten(record)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self.columns is None:
            self.columns = list(flat)
            writer.writerow(self.columns)
        writer.writerow([_csv_text(flat.get(column)) for column in self.columns])
        self.results.write(out.getvalue().encode())


def result_record(key: Any, prediction: Any) -> dict[str, Any]:
    """One results line: a model with several outputs gives its object of output aliases (as
    AI Platform writes it), any other prediction goes under "prediction"; a keyed instance's
    key comes first."""
    record: dict[str, Any] = {} if key is None else {"key": key}
    if isinstance(prediction, dict):
        record.update(prediction)
    else:
        record["prediction"] = prediction
    return record


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """CSV columns: a list prediction becomes prediction_0, prediction_1, ..."""
    flat: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list) and all(not isinstance(v, (list, dict)) for v in value):
            for index, item in enumerate(value):
                flat[f"{name}_{index}"] = item
        else:
            flat[name] = value
    return flat


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


class ShardPredictor:
    """Predicts batches of units; a failing batch is retried one unit at a time, so every
    error lands on the line that caused it and the other lines still get predictions."""

    def __init__(self, predictor: Any, signature_name: str | None, writer: ShardWriter) -> None:
        self.predictor = predictor
        self.signature_name = signature_name
        self.writer = writer
        self.record_input = False

    def predict(self, batch: list[Unit]) -> None:
        try:
            predictions = self.predictor.predict([u.instance for u in batch], self.signature_name)
            if _count(predictions) != len(batch):
                raise ValueError(
                    f"the model returned {_count(predictions)} predictions for "
                    f"{len(batch)} instances."
                )
        except Exception as error:  # noqa: BLE001 - a bad instance is that line's error
            if len(batch) == 1:
                self.writer.error(batch[0], _message(error), self.record_input)
                return
            for unit in batch:
                self.predict([unit])
            return
        for unit, prediction in zip(batch, predictions, strict=True):
            self.writer.result(unit, prediction)


def _count(predictions: Any) -> int | None:
    try:
        return len(predictions)
    except TypeError:
        return None


def _message(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    if text.startswith("Prediction failed: "):
        return text
    return f"Prediction failed: {type(error).__name__}: {text}"


def run_shard(plan: BatchPlan, shard: int, work_dir: Path) -> tuple[int, int]:
    """Predict shard `shard` of `plan`; returns (predictions, errors)."""
    from cairn.serving.loaders import load_predictor

    started = time.monotonic()
    pieces = [
        Piece(InputFile(p["path"], p["uri"], int(p["size"])), int(p["start"]), int(p["end"]))
        for p in plan.shares[shard]
    ]
    # JSON lines for a row model are read and parsed from now on, while the model loads
    # and while it predicts.
    prefetch = Prefetch(pieces) if _may_be_rows(plan) else None
    if _booster_file_only(plan):
        _import_xgboost_alone()
    try:
        predictor = load_predictor(
            Path(plan.model_dir), plan.framework, plan.prediction_class or None
        )
    except Exception as error:  # noqa: BLE001 - the loader's words are the job's error
        print(f"The model could not be loaded: {error}", file=sys.stderr, flush=True)
        sys.exit(MODEL_LOAD_FAILED)
    framework = getattr(predictor, "framework", plan.framework)
    print(
        f"Worker {shard + 1} of {plan.shards}: loaded the {framework} model in "
        f"{time.monotonic() - started:.1f} s; predicting {len(pieces)} input piece(s).",
        flush=True,
    )
    output_dir = Path(plan.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # Files are made and renamed relative to the folder, opened once: a directory above it
    # changing its permissions meanwhile cannot fail the shard at its very end.
    folder = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY)
    results_final = results_name(shard, plan.shards)
    errors_final = errors_name(shard, plan.shards)
    results_tmp = f".{results_final}.tmp"
    errors_tmp = f".{errors_final}.tmp"
    rows = predictor if isinstance(predictor, RowPredictor) else None
    units: Iterable[Unit] = read_units(
        pieces,
        plan.data_format,
        shard=shard,
        shards=plan.shards,
        records_as_json=framework != "TENSORFLOW",
    )
    with (
        _create(folder, results_tmp, 1 << 20) as results,
        _create(folder, errors_tmp, -1) as errors,
    ):
        writer = ShardWriter(results, errors, plan.output_format == "CSV")
        shard_predictor = ShardPredictor(predictor, plan.signature_name or None, writer)
        shard_predictor.record_input = plan.data_format in TF_RECORD_FORMATS
        if prefetch is not None:
            fast = FastRows(rows, writer) if rows is not None else None
            units = _fast_or_units(prefetch, fast)
        _predict_all(units, plan.batch_size, shard_predictor, writer, work_dir, shard)
    os.replace(results_tmp, results_final, src_dir_fd=folder, dst_dir_fd=folder)
    os.replace(errors_tmp, errors_final, src_dir_fd=folder, dst_dir_fd=folder)
    os.close(folder)
    counts = {"predictions": writer.predictions, "errors": writer.error_count}
    write_json_atomically(done_path(work_dir, shard), counts)
    print(
        f"Worker {shard + 1} of {plan.shards}: {writer.predictions} predictions, "
        f"{writer.error_count} bad lines, in {time.monotonic() - started:.1f} s.",
        flush=True,
    )
    return writer.predictions, writer.error_count


# One block of a share: (uri, number of its first line, its lines, their matrix or None).
ReadBlock = tuple[str, int, bytes, "np.ndarray | None"]
# How far the reading thread may run ahead of the predictions, in bytes of input: enough to
# parse a good part of a share while the model loads (scikit-learn's import takes a second),
# little enough to keep a worker's memory flat.
_READ_AHEAD_BYTES = 16 << 20


class Prefetch:
    """A share's JSON lines read and parsed into matrices (`numeric.parse_rows`) by a thread
    of its own, a bounded number of blocks ahead, in input order.

    Reading and parsing (RE2, Arrow's CSV reader) and predicting (XGBoost, numpy) run
    outside the GIL, so the two overlap on two cores; and parsing starts before the model
    has loaded. Iterating yields `ReadBlock`s; an error of the reading thread is raised
    there.
    """

    def __init__(self, pieces: list[Piece]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(max(1, _READ_AHEAD_BYTES // _read_size()))
        self._thread = threading.Thread(
            target=self._read, args=(pieces,), name="cairn-batch-reader", daemon=True
        )
        self._thread.start()

    def _read(self, pieces: list[Piece]) -> None:
        try:
            for uri, first, block in text_blocks(pieces):
                self._queue.put((uri, first, block, _rows_or_none(block)))
        except BaseException as error:  # noqa: BLE001 - raised again in the reading loop
            self._queue.put(error)
        finally:
            self._queue.put(_END_OF_INPUT)

    def __iter__(self) -> Iterator[ReadBlock]:
        while True:
            item = self._queue.get()
            if item is _END_OF_INPUT:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


_END_OF_INPUT = object()


def _rows_or_none(block: bytes) -> np.ndarray | None:
    try:
        return parse_rows(block, None)
    except Exception:  # noqa: BLE001 - whatever it is, the line-by-line path reads the block
        return None


def _read_size() -> int:
    return inputs._READ_CHUNK  # looked up when used: tests make reads small


def _may_be_rows(plan: BatchPlan) -> bool:
    """Whether the input is JSON lines that may be rows of numbers for a row model: not for
    a TensorFlow model or a custom routine, which take instances as they are."""
    if plan.data_format not in JSON_FORMATS or plan.prediction_class:
        return False
    return not any((Path(plan.model_dir) / name).is_file() for name in TF_FILES)


def _booster_file_only(plan: BatchPlan) -> bool:
    """Whether the model is an XGBoost Booster file, with nothing that needs scikit-learn
    (a pickle, a preparation, a custom routine)."""
    try:
        framework = normalize_framework(plan.framework)
        names = {path.name for path in Path(plan.model_dir).iterdir()}
    except Exception:  # noqa: BLE001 - the loader says why
        return False
    if plan.prediction_class or framework not in (None, XGBOOST):
        return False
    return (
        any(name in names for name in XGBOOST_FILES)
        and not any(name in names for name in PICKLE_FILES)
        and PREPARATION_FILE not in names
    )


def _import_xgboost_alone() -> None:
    """Import XGBoost without its scikit-learn and pandas integrations, which a Booster
    predicting a matrix never uses: XGBoost imports both when they are installed, and they
    (scipy.stats, pandas) took 1.2 s of a worker's 1.9 s start on the dev machine, more
    than predicting a million rows."""
    if "xgboost" in sys.modules:
        return
    hidden = [name for name in ("sklearn", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` now fails
    try:
        import xgboost  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - the loader imports it again and says why
        pass
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


class FastRows:
    """JSON lines of plain numbers for a row model, a block (a read, about 1 MB) at a time.

    The block is read into one float matrix (`numeric.parse_rows`), predicted in one model
    call whatever `batchSize` says (a row model's predictions do not depend on which rows
    share a call, and the block bounds memory; a call per 64 rows cost scikit-learn 100x
    the arithmetic), and its numeric predictions are written by serialising the model's
    whole answer once. Any block that is not plain numbers of the right width (a bad line,
    a keyed instance, text), or whose call fails, goes the general way, line by line, so
    its errors are reported exactly as there.
    """

    def __init__(self, rows: Any, writer: ShardWriter) -> None:
        self.rows = rows
        self.writer = writer

    def fits(self, matrix: np.ndarray | None) -> bool:
        """Whether a block read as `matrix` (None: not plain numbers) can take this path."""
        if matrix is None:
            return False
        width = self.rows.n_features
        return width is None or matrix.shape[1] == width

    def predict(self, matrix: np.ndarray) -> bool:
        """Predict and write the block; False (nothing written) if the call failed."""
        try:
            predictions = self.rows.predict_matrix(matrix)
        except Exception:  # noqa: BLE001 - the general path finds the culprit
            return False
        if not isinstance(predictions, np.ndarray) or predictions.shape[:1] != (len(matrix),):
            return False
        text = None if self.writer.csv_output else _json_lines(predictions)
        if text is None:
            for prediction in predictions:
                self.writer.result(_NO_KEY, prediction)
            return True
        self.writer.results.write(text)
        self.writer.predictions += len(predictions)
        return True


def _json_lines(predictions: np.ndarray) -> bytes | None:
    """`{"prediction": P}` lines of a 1-D or 2-D numeric answer, serialised in one call and
    cut at the commas between rows (what `ShardWriter.result` writes row by row); None for
    any other answer."""
    if predictions.dtype.kind not in "fiub" or predictions.ndim not in (1, 2):
        return None
    if predictions.ndim == 2 and predictions.shape[1] == 0:
        return None
    try:
        text = orjson.dumps(np.ascontiguousarray(predictions), option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return None
    body = text[1:-1]  # without the outer brackets
    if predictions.ndim == 1:
        return b'{"prediction":' + body.replace(b",", b'}\n{"prediction":') + b"}\n"
    return b'{"prediction":' + body.replace(b"],[", b']}\n{"prediction":[') + b"}\n"


_NO_KEY = Unit("", 0)


def _create(folder: int, name: str, buffering: int) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    return os.fdopen(os.open(name, flags, 0o666, dir_fd=folder), "wb", buffering=buffering)


# Yielded between blocks the fast path wrote itself: the general path flushes its batch
# first, so results stay in input order.
_FLUSH = Unit("", 0)


def _fast_or_units(blocks: Iterable[ReadBlock], fast: FastRows | None) -> Iterator[Unit]:
    """Units for the general path, of the blocks the fast path could not take (all of
    them when the model is not a row model: `fast` None)."""
    for uri, first, block, matrix in blocks:
        if fast is not None and fast.fits(matrix):
            assert matrix is not None
            yield _FLUSH
            if fast.predict(matrix):
                continue
        for number, line in enumerate(block_lines(block), first):
            if line.strip():
                yield json_unit(uri, number, line)


def _predict_all(
    units: Iterable[Unit],
    batch_size: int,
    shard_predictor: ShardPredictor,
    writer: ShardWriter,
    work_dir: Path,
    shard: int,
) -> None:
    batch: list[Unit] = []
    next_report = time.monotonic() + _PROGRESS_EVERY_S
    record_input = shard_predictor.record_input
    for unit in units:
        if unit is _FLUSH:
            if batch:
                shard_predictor.predict(batch)
                batch = []
            if time.monotonic() >= next_report:
                counts = {"predictions": writer.predictions, "errors": writer.error_count}
                write_json_atomically(progress_path(work_dir, shard), counts)
                next_report = time.monotonic() + _PROGRESS_EVERY_S
            continue
        if unit.error is not None:
            writer.error(unit, unit.error, record_input)
            continue
        batch.append(unit)
        if len(batch) < batch_size:
            continue
        shard_predictor.predict(batch)
        batch = []
        if time.monotonic() >= next_report:
            counts = {"predictions": writer.predictions, "errors": writer.error_count}
            write_json_atomically(progress_path(work_dir, shard), counts)
            next_report = time.monotonic() + _PROGRESS_EVERY_S
    if batch:
        shard_predictor.predict(batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cairn.serving.batch.worker", description=__doc__)
    parser.add_argument("--plan", required=True, help="The job's batch plan (JSON).")
    parser.add_argument("--shard", type=int, required=True, help="Which share to predict.")
    args = parser.parse_args(argv)
    plan = BatchPlan.read(Path(args.plan))
    run_shard(plan, args.shard, Path("."))  # relative: see the output folder's note
    # Everything is written, closed and renamed, and the done file says so: skip the
    # interpreter's teardown, which took 0.1-2 s with scikit-learn, XGBoost and Arrow
    # loaded (measured on the dev machine), as long as the rest of a 1M-row job.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
