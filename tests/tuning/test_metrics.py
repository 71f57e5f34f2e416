"""A trial's metric, read from real cloudml-hypertune files and real TensorFlow event files."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import hypertune
import pytest

from cairn.tuning.metrics import Measurement, TrialMetricReader, final_measurement


def reporter(monkeypatch: pytest.MonkeyPatch, metric_file: Path) -> hypertune.HyperTune:
    """A trainer's HyperTune, writing where the trial's environment says (read on init)."""
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(metric_file))
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "7")
    return hypertune.HyperTune()


def steps(measurements: list[Measurement]) -> list[int]:
    return [m.step for m in measurements]


# -- cloudml-hypertune -----------------------------------------------------------------------


def test_nothing_written_yet_reads_as_nothing(tmp_path: Path) -> None:
    reader = TrialMetricReader(tmp_path / "no" / "metrics", [tmp_path / "no" / "logs"], "acc")
    assert reader.read() == []
    assert reader.read() == []
    assert final_measurement(reader.read()) is None


def test_hypertune_reports_are_read_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_file = tmp_path / "hp" / "output.metrics"
    trainer = reporter(monkeypatch, metric_file)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.5, global_step=10)
    trainer.report_hyperparameter_tuning_metric("loss", 3.0, global_step=10)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.75, global_step=20)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.625)  # no step: hypertune says 0

    measurements = TrialMetricReader(metric_file, [], "accuracy").read()

    assert [(m.step, m.value) for m in measurements] == [(10, 0.5), (20, 0.75), (0, 0.625)]
    times = [m.time for m in measurements]
    assert all(t is not None for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    assert final_measurement(measurements) == measurements[-1]


def test_reports_beyond_the_files_last_100_are_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_file = tmp_path / "output.metrics"
    trainer = reporter(monkeypatch, metric_file)
    polling = TrialMetricReader(metric_file, [], "accuracy")
    for step in range(1, 151):
        trainer.report_hyperparameter_tuning_metric("accuracy", step / 1000, global_step=step)
        if step % 25 == 0:
            polling.read()

    assert len(metric_file.read_text().splitlines()) == 100
    assert steps(polling.read()) == list(range(1, 151))
    assert [m.value for m in polling.read()] == [s / 1000 for s in range(1, 151)]
    # A reader that starts late can only see what the file still holds.
    assert steps(TrialMetricReader(metric_file, [], "accuracy").read()) == list(range(51, 151))


def test_each_read_sees_new_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metric_file = tmp_path / "output.metrics"
    reader = TrialMetricReader(metric_file, [tmp_path / "logs"], "accuracy")
    assert reader.read() == []
    trainer = reporter(monkeypatch, metric_file)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.1, global_step=1)
    assert steps(reader.read()) == [1]
    assert steps(reader.read()) == [1]
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.2, global_step=2)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.2, global_step=2)  # a repeat
    assert steps(reader.read()) == [1, 2, 2]
    # A trainer restarted on the same trial starts a new file: earlier reports stay.
    restarted = reporter(monkeypatch, metric_file)
    restarted.report_hyperparameter_tuning_metric("accuracy", 0.3, global_step=3)
    assert len(metric_file.read_text().splitlines()) == 1
    assert [(m.step, m.value) for m in reader.read()] == [(1, 0.1), (2, 0.2), (2, 0.2), (3, 0.3)]


def test_partial_lines_junk_and_non_finite_values_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_file = tmp_path / "output.metrics"
    trainer = reporter(monkeypatch, metric_file)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.5, global_step=1)
    trainer.report_hyperparameter_tuning_metric("accuracy", math.nan, global_step=2)
    trainer.report_hyperparameter_tuning_metric("accuracy", math.inf, global_step=3)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.75, global_step=4)
    complete = metric_file.read_bytes()
    lines = complete.splitlines(keepends=True)
    assert b'"nan"' in lines[1] and b'"inf"' in lines[2]

    # Caught mid-rewrite: the last line is cut short.
    metric_file.write_bytes(b"".join(lines[:3]) + lines[3][:-20])
    reader = TrialMetricReader(metric_file, [], "accuracy")
    assert [(m.step, m.value) for m in reader.read()] == [(1, 0.5)]

    junk = [
        b"not json\n",
        b"[1, 2]\n",
        b'{"accuracy": "high", "global_step": "5", "timestamp": 1.0}\n',
        b'{"accuracy": true, "global_step": "6", "timestamp": 1.0}\n',
        b'{"accuracy": "0.9", "global_step": "seven", "timestamp": 1.0}\n',
        b"\xff\xfe\n",
        b"\n",
    ]
    metric_file.write_bytes(b"".join(junk) + complete)
    assert [(m.step, m.value) for m in reader.read()] == [(1, 0.5), (4, 0.75)]


def test_a_number_value_and_a_missing_timestamp_are_accepted(tmp_path: Path) -> None:
    # Not hypertune's own output, but what a hand-written reporter might produce.
    metric_file = tmp_path / "output.metrics"
    metric_file.write_text(
        '{"accuracy": 0.5, "global_step": 3}\n{"accuracy": "0.25", "global_step": "1"}\n'
    )
    measurements = TrialMetricReader(metric_file, [], "accuracy").read()
    # Without times the order is by step.
    assert measurements == [Measurement(1, 0.25), Measurement(3, 0.5)]


# -- TensorFlow summaries --------------------------------------------------------------------

# tf.summary.scalar lives in TensorBoard, which is not installed: `scalar` below is what it
# does (tf.summary.write of a float32 tensor with the "scalars" plugin's metadata).
_WRITER = textwrap.dedent(
    """
    import math, sys
    import tensorflow as tf

    root = sys.argv[1]
    metadata = tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
    )

    def scalar(tag, value, step):
        tf.summary.write(tag, tf.cast(value, tf.float32), step=step, metadata=metadata)

    with tf.summary.create_file_writer(root + "/tf2").as_default():
        for step in range(5):
            scalar("accuracy", 0.5 + step / 10, step=step)
            scalar("loss", 1.0 - step / 10, step=step)
        scalar("scope/accuracy", 9.0, step=5)  # tf.summary.scalar under tf.name_scope("scope")
        tf.summary.write("accuracy", tf.random.normal([100]), step=6)  # not a scalar
        tf.summary.write("accuracy", tf.constant("text"), step=7)
        tf.summary.write("accuracy", tf.constant(0.25, tf.float64), step=8)
        scalar("accuracy", math.nan, step=9)
        tf.summary.write("half", tf.constant(0.5, tf.float16), step=1)
        tf.summary.write("bfloat16", tf.constant(0.5, tf.bfloat16), step=1)
        tf.summary.write("int64", tf.constant(-3, tf.int64), step=1)
        tf.summary.write("one_element", tf.constant([0.5]), step=1)

    with tf.summary.create_file_writer(root + "/tf2/eval/nested").as_default():
        scalar("accuracy", 0.125, step=10)

    # TF1: a Summary proto with simple_value, written by the graph-mode FileWriter.
    with tf.Graph().as_default():
        writer = tf.compat.v1.summary.FileWriter(root + "/tf1")
        for step in range(3):
            summary = tf.compat.v1.Summary(
                value=[
                    tf.compat.v1.Summary.Value(tag="scope/accuracy", simple_value=9.0),
                    tf.compat.v1.Summary.Value(tag="accuracy", simple_value=step / 4),
                ]
            )
            writer.add_summary(summary, global_step=100 + step)
        writer.close()
    """
)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Event files from real TensorFlow (one slow import), between two hypertune reports."""
    root = tmp_path_factory.mktemp("events")
    with pytest.MonkeyPatch.context() as monkeypatch:
        trainer = reporter(monkeypatch, root / "hypertune.metrics")
        trainer.report_hyperparameter_tuning_metric("accuracy", 0.01, global_step=1000)
        subprocess.run(
            [sys.executable, "-c", _WRITER, str(root)], check=True, capture_output=True, timeout=240
        )
        trainer.report_hyperparameter_tuning_metric("accuracy", 0.02, global_step=2000)
    yield root


def event_file(directory: Path) -> Path:
    [path] = directory.glob("events.out.tfevents.*")
    return path


def records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each TFRecord in an event file's bytes."""
    spans, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from("<Q", data, position)
        spans.append((position, position + 16 + length))
        position += 16 + length
    return spans


F32 = {"rel": 1e-6}  # summaries hold float32


@pytest.mark.slow
def test_tf2_and_tf1_scalars_are_found_under_every_directory(events: Path) -> None:
    reader = TrialMetricReader(
        events / "absent.metrics", [events / "tf2", events / "tf1"], "accuracy"
    )
    measurements = reader.read()
    assert steps(measurements) == [0, 1, 2, 3, 4, 8, 10, 100, 101, 102]
    assert [m.value for m in measurements] == pytest.approx(
        [0.5, 0.6, 0.7, 0.8, 0.9, 0.25, 0.125, 0.0, 0.25, 0.5], **F32
    )
    assert all(m.time is not None for m in measurements)
    assert final_measurement(measurements) == measurements[-1]
    assert reader.read() == measurements


@pytest.mark.slow
def test_scoped_tags_match_exactly(events: Path) -> None:
    scoped = TrialMetricReader(events / "absent", [events], "scope/accuracy").read()
    assert [(m.step, m.value) for m in scoped] == [(5, 9.0), (100, 9.0), (101, 9.0), (102, 9.0)]
    assert TrialMetricReader(events / "absent", [events], "accura").read() == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tag", "value"), [("half", 0.5), ("bfloat16", 0.5), ("int64", -3.0), ("one_element", 0.5)]
)
def test_other_numeric_tensors_are_read(events: Path, tag: str, value: float) -> None:
    [measurement] = TrialMetricReader(events / "absent", [events / "tf2"], tag).read()
    assert (measurement.step, measurement.value) == (1, value)


@pytest.mark.slow
def test_hypertune_and_summaries_merge_in_time_order(events: Path) -> None:
    reader = TrialMetricReader(events / "hypertune.metrics", [events / "tf1"], "accuracy")
    assert steps(reader.read()) == [1000, 100, 101, 102, 2000]
    final = final_measurement(reader.read())
    assert final is not None and (final.step, final.value) == (2000, 0.02)


@pytest.mark.slow
def test_a_value_reported_both_ways_counts_once(
    events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_file = tmp_path / "output.metrics"
    trainer = reporter(monkeypatch, metric_file)
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.8, global_step=3)  # as in tf2
    trainer.report_hyperparameter_tuning_metric("accuracy", 0.5, global_step=3)  # not as in tf2
    measurements = TrialMetricReader(metric_file, [events / "tf2"], "accuracy").read()
    # The summary's (3, 0.8) is hypertune's report again; hypertune's copy stays.
    assert steps(measurements) == [0, 1, 2, 4, 8, 10, 3, 3]
    assert [m.value for m in measurements][-2:] == [0.8, 0.5]


@pytest.mark.slow
def test_directories_and_files_appearing_later_are_found(events: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    reader = TrialMetricReader(tmp_path / "absent", [logs], "accuracy")
    assert reader.read() == []
    (logs / "run" / "train").mkdir(parents=True)
    assert reader.read() == []
    shutil.copy(event_file(events / "tf1"), logs / "run" / "train")
    assert steps(reader.read()) == [100, 101, 102]
    shutil.copy(event_file(events / "tf2" / "eval" / "nested"), logs / "run")
    assert steps(reader.read()) == [10, 100, 101, 102]


@pytest.mark.slow
def test_a_file_being_written_is_read_record_by_record(events: Path, tmp_path: Path) -> None:
    data = event_file(events / "tf2").read_bytes()
    everything = TrialMetricReader(tmp_path / "absent", [events / "tf2"], "accuracy").read()
    copy = tmp_path / "logs" / "events.out.tfevents.123.host"
    copy.parent.mkdir()
    copy.write_bytes(b"")
    reader = TrialMetricReader(tmp_path / "absent", [copy.parent], "accuracy")
    seen: list[Measurement] = []
    for size in range(0, len(data) + 1, 5):
        with copy.open("ab") as handle:
            handle.write(data[copy.stat().st_size : size])
        now = reader.read()
        assert now[: len(seen)] == seen  # only ever grows
        seen = now
    with copy.open("ab") as handle:
        handle.write(data[copy.stat().st_size :])
    assert reader.read() == [m for m in everything if m.step != 10]  # eval/ is not copied


@pytest.mark.slow
def test_a_corrupt_record_is_skipped_and_lost_framing_ends_the_file(
    events: Path, tmp_path: Path
) -> None:
    data = bytearray(event_file(events / "tf1").read_bytes())
    spans = [span for span in records(bytes(data)) if b"accuracy" in data[span[0] : span[1]]]
    assert len(spans) == 3
    second_start, second_end = spans[1]
    data[second_end - 6] ^= 0xFF  # inside the second scalar's data: its CRC fails
    corrupt = tmp_path / "corrupt" / "events.out.tfevents.1.host"
    corrupt.parent.mkdir()
    corrupt.write_bytes(bytes(data))
    assert steps(TrialMetricReader(tmp_path / "x", [corrupt.parent], "accuracy").read()) == [
        100,
        102,
    ]

    third_start, _ = spans[2]
    data = bytearray(event_file(events / "tf1").read_bytes())
    data[third_start] ^= 0x40  # the third record's length: nothing after it can be found
    broken = tmp_path / "broken" / "events.out.tfevents.1.host"
    broken.parent.mkdir()
    broken.write_bytes(bytes(data) + b"\x00" * 100)
    reader = TrialMetricReader(tmp_path / "x", [broken.parent], "accuracy")
    assert steps(reader.read()) == [100, 101]
    assert steps(reader.read()) == [100, 101]


def test_junk_named_like_an_event_file_is_harmless(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "events.out.tfevents.1.junk").write_bytes(b"accuracy" * 1000)
    (logs / "events.out.tfevents.2.short").write_bytes(b"\x01\x02")
    (logs / "events.out.tfevents.3.dir").mkdir()
    assert TrialMetricReader(tmp_path / "x", [logs, logs / "missing"], "accuracy").read() == []
