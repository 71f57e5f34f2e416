"""TensorFlow reads the TF_CONFIG the runner gives a replica."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from tests.training.conftest import RunRecorder
from tests.training.packages import build_sdist

_TF_TASK = textwrap.dedent(
    """
    import argparse, json, os
    import tensorflow as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", required=True)
    args = parser.parse_args()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    weights = tf.Variable([1.0, 2.0])
    with open(os.path.join(args.job_dir, "resolved.json"), "w") as handle:
        json.dump(
            {
                "cluster": resolver.cluster_spec().as_dict(),
                "task_type": resolver.task_type,
                "task_id": resolver.task_id,
                "sum": float(tf.reduce_sum(weights).numpy()),
            },
            handle,
        )
    """
)


@pytest.mark.slow
def test_tensorflow_resolves_the_cluster_from_tf_config(
    make_runner, tmp_path: Path, upload, storage_root: Path
) -> None:
    sdist = build_sdist(
        tmp_path / "tf", "tftrainer", {"tftrainer/__init__.py": "", "tftrainer/task.py": _TF_TASK}
    )
    runner = make_runner()
    recorder = RunRecorder()
    spec = {
        "packageUris": [upload(sdist)],
        "pythonModule": "tftrainer.task",
        "jobDir": "gs://bkt/tf",
        "runtimeVersion": "2.11",
        "scaleTier": "BASIC",
    }
    runner.start("p1", "job_tf", spec, **recorder.callbacks)
    outcome = recorder.wait(timeout=240)
    assert outcome.state == "SUCCEEDED", outcome.error_message

    resolved = json.loads((storage_root / "bkt" / "tf" / "resolved.json").read_text())
    [address] = resolved["cluster"]["chief"]
    assert address.startswith("127.0.0.1:")
    assert resolved["task_type"] == "chief"
    assert resolved["task_id"] == 0
    assert resolved["sum"] == 3.0
