"""AI Platform-era trainers on the runtime environments, unchanged (marked `runtimes`).

The first run builds the TensorFlow 2.15 base and the runtimes' layers (several hundred MB
from the package index) into ~/.cache/cairn-test-runtimes/runtimes (or
$CAIRN_TEST_RUNTIMES/runtimes), shared by later runs; `make test` skips these tests
(pyproject's `-m 'not runtimes'`), `.ci/run` runs them with `pytest -m runtimes`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.training.conftest import RunRecorder
from tests.training.packages import build_sdist

from cairn.domain.runtimes import RUNTIMES
from cairn.training.environments import EnvironmentCache
from cairn.training.runtimes import BASE_NAME, layer_name

pytestmark = [pytest.mark.runtimes, pytest.mark.timeout(1800)]


def _runtimes_root() -> Path:
    configured = os.environ.get("CAIRN_TEST_RUNTIMES")
    home = Path(configured) if configured else Path.home() / ".cache" / "cairn-test-runtimes"
    return home / "runtimes"


# A scikit-learn trainer of AI Platform's runtime 2.1 era, as its samples were written.
SKLEARN_TASK = textwrap.dedent(
    """
    import argparse
    import json
    import os

    import numpy as np
    import pandas as pd
    import sklearn
    import xgboost
    from sklearn.externals import joblib
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir")
    args = parser.parse_args()

    rng = np.random.RandomState(0)
    features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    labels = (features["a"] + features["b"] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    os.makedirs(args.job_dir, exist_ok=True)
    joblib.dump(model, os.path.join(args.job_dir, "model.joblib"))
    # As Google's samples save it: through TensorFlow's GFile opened in text mode.
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(args.job_dir, "model_gfile.joblib"), "w") as handle:
        joblib.dump(model, handle)
    with open(os.path.join(args.job_dir, "versions.json"), "w") as handle:
        json.dump(
            {
                "sklearn": sklearn.__version__,
                "xgboost": xgboost.__version__,
                "pandas": pd.__version__,
                "score": model.score(features, labels),
            },
            handle,
        )
    print("model saved")
    """
)

# A TF-Keras trainer of runtime 2.11's era: Keras 2's `lr=` and a TensorBoard callback.
KERAS_TASK = textwrap.dedent(
    """
    import argparse
    import os

    import numpy as np
    import tensorflow as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir")
    parser.add_argument("--num-epochs", type=int, default=2)
    args = parser.parse_args()

    x = np.random.RandomState(0).normal(size=(256, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(8, activation="relu", input_shape=(4,)),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(lr=0.01),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    tensorboard = tf.keras.callbacks.TensorBoard(
        log_dir=os.path.join(args.job_dir, "logs"), histogram_freq=1
    )
    model.fit(x, y, epochs=args.num_epochs, batch_size=32, callbacks=[tensorboard], verbose=2)
    tf.keras.models.save_model(model, os.path.join(args.job_dir, "keras_export"))
    print("keras", tf.keras.__version__ if hasattr(tf.keras, "__version__") else "?")
    """
)


@pytest.fixture
def runtime_runner(make_runner):  # type: ignore[no-untyped-def]
    runner = make_runner()
    runner.environments.use_runtimes(_runtimes_root())
    return runner


def test_a_scikit_learn_trainer_of_runtime_2_1_runs_unchanged(
    runtime_runner, tmp_path: Path, upload, storage_root: Path
) -> None:
    sdist = build_sdist(
        tmp_path / "sk",
        "trainer",
        {"trainer/__init__.py": "", "trainer/task.py": SKLEARN_TASK},
        # Pins of the era: none of these has a wheel for Python 3.11 but xgboost's.
        install_requires=["scikit-learn==0.22.1", "pandas==0.25.3", "xgboost==1.5.2"],
    )
    recorder = RunRecorder()
    spec = {
        "packageUris": [upload(sdist)],
        "pythonModule": "trainer.task",
        "jobDir": "gs://bkt/sk",
        "runtimeVersion": "2.1",
        "pythonVersion": "3.7",
    }
    runtime_runner.start("p1", "job_sk", spec, **recorder.callbacks)
    outcome = recorder.wait(timeout=1500)
    service_log = (tmp_path / "jobs" / "p1" / "job_sk" / "logs" / "service.log").read_text()
    assert outcome.state == "SUCCEEDED", f"{outcome.error_message}\n{service_log[-3000:]}"

    seen = json.loads((storage_root / "bkt" / "sk" / "versions.json").read_text())
    layer = json.loads(
        (_runtimes_root() / layer_name(RUNTIMES["2.1"]) / "runtime.json").read_text()
    )
    runtime_sklearn = layer["frameworks"]["scikit-learn"]["installed"]
    assert seen["sklearn"] == runtime_sklearn  # 0.22.1 has no wheel: the runtime's
    assert seen["xgboost"] == "1.5.2"  # the pin has a wheel: honoured
    assert seen["score"] > 0.9
    assert (storage_root / "bkt" / "sk" / "model.joblib").is_file()
    assert (storage_root / "bkt" / "sk" / "model_gfile.joblib").stat().st_size > 0
    # The replaced pins are named in the job's log with both versions.
    assert "scikit-learn==0.22.1" in service_log
    assert f"the runtime's scikit-learn {runtime_sklearn}" in service_log
    assert "pandas==0.25.3" in service_log


def test_a_tf_keras_trainer_of_runtime_2_11_runs_unchanged(
    runtime_runner, tmp_path: Path, upload, storage_root: Path
) -> None:
    sdist = build_sdist(
        tmp_path / "tf",
        "trainer",
        {"trainer/__init__.py": "", "trainer/task.py": KERAS_TASK},
        install_requires=["tensorflow==2.11.0"],
    )
    recorder = RunRecorder()
    spec = {
        "packageUris": [upload(sdist)],
        "pythonModule": "trainer.task",
        "jobDir": "gs://bkt/tf",
        "runtimeVersion": "2.11",
        "args": ["--num-epochs", "2"],
    }
    runtime_runner.start("p1", "job_keras", spec, **recorder.callbacks)
    outcome = recorder.wait(timeout=1500)
    logs = tmp_path / "jobs" / "p1" / "job_keras" / "logs"
    service_log = (logs / "service.log").read_text()
    assert outcome.state == "SUCCEEDED", f"{outcome.error_message}\n{service_log[-3000:]}"
    assert "tensorflow==2.11.0" in service_log and "tensorflow 2.15.1" in service_log
    job_dir = storage_root / "bkt" / "tf"
    assert list((job_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert (job_dir / "keras_export" / "saved_model.pb").is_file()


def test_the_runtime_environment_behaves_like_the_runtime(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "envs", runtimes_root=_runtimes_root())
    env = cache.ensure_runtime(RUNTIMES["1.15"], log_path=tmp_path / "build.log")
    probe = textwrap.dedent(
        """
        import os, json
        import tensorflow as tf
        import tensorboard, google.cloud.storage, hypertune
        from sklearn.externals import joblib
        import tensorflow.compat.v1 as v1
        v1.disable_eager_execution()
        with v1.Session() as session:
            total = session.run(v1.constant(2.0) + v1.constant(3.0))
        print(json.dumps({
            "tf": tf.__version__,
            "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
            "estimator": hasattr(tf, "estimator"),
            "adam_lr": type(tf.keras.optimizers.Adam(lr=0.1)).__module__,
            "joblib": joblib.__name__,
            "v1": float(total),
        }))
        """
    )
    result = subprocess.run(
        [str(env.python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["tf"] == "2.15.1"
    assert seen["legacy_keras"] == "1"
    assert seen["estimator"] is True
    assert seen["adam_lr"].startswith(("tf_keras", "keras.src", "keras.optimizers"))
    assert seen["joblib"] == "joblib"
    assert seen["v1"] == 5.0
    # Cairn's own frameworks stay out of a runtime's environment.
    paths = subprocess.run(
        [str(env.python), "-c", "import sys; print('\\n'.join(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sys.prefix not in paths
    assert str(_runtimes_root() / BASE_NAME) in paths


def test_local_train_uses_the_runtime_environment(tmp_path: Path) -> None:
    package = tmp_path / "src" / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(
        "from sklearn.externals import joblib\nimport sklearn\nprint('sklearn', sklearn.__version__)\n"
    )
    cairn = Path(sys.executable).parent / "cairn"
    result = subprocess.run(
        [
            str(cairn),
            "local",
            "train",
            "--module-name",
            "trainer.task",
            "--package-path",
            str(package),
            "--runtime-version",
            "2.2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=1500,
        env={
            **os.environ,
            "CAIRN_HOME": str(tmp_path / "home"),
            "CAIRN_RUNTIMES_DIR": str(_runtimes_root()),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    layer = json.loads(
        (_runtimes_root() / layer_name(RUNTIMES["2.2"]) / "runtime.json").read_text()
    )
    assert f"sklearn {layer['frameworks']['scikit-learn']['installed']}" in result.stdout


def test_a_root_server_builds_runtimes_as_a_builder_and_jobs_use_them_as_their_own_uid(
    tmp_path: Path,
) -> None:
    """As a root server runs it: builds as builder uids, sealed, read by each job's uid.

    The home is a fresh one (the builder has no pip cache), so this downloads the base again.
    """
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    from cairn.config import Settings
    from cairn.isolation import isolate_user_code
    from cairn.storage import BucketStorage
    from cairn.training import TrainingRunner
    from cairn.training.environments import SEALED_MARKER

    umask = os.umask(0o022)
    os.umask(umask)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    try:
        identities = isolate_user_code(settings).identities
        assert identities is not None
        sdist = build_sdist(
            tmp_path / "pkg",
            "trainer",
            {
                "trainer/__init__.py": "",
                "trainer/task.py": (
                    "import os, sys\nimport tensorflow as tf\nfrom sklearn.externals import joblib\n"
                    "out = sys.argv[sys.argv.index('--job-dir') + 1]\nos.makedirs(out, exist_ok=True)\n"
                    "open(os.path.join(out, 'uid.txt'), 'w').write(f'{os.getuid()} {tf.__version__}')\n"
                ),
            },
            install_requires=["scikit-learn==0.22.1"],
        )
        package = settings.storage_root / "bkt" / "packages" / sdist.name
        package.parent.mkdir(parents=True)
        package.write_bytes(sdist.read_bytes())
        runner = TrainingRunner(
            settings.jobs_root,
            settings.envs_root,
            BucketStorage(settings.storage_root),
            identities=identities,
        )
        runner.environments.use_runtimes(settings.runtimes_root)
        try:
            recorder = RunRecorder()
            spec = {
                "packageUris": [f"gs://bkt/packages/{sdist.name}"],
                "pythonModule": "trainer.task",
                "jobDir": "gs://bkt/out",
                "runtimeVersion": "2.2",
            }
            runner.start("p1", "job_root", spec, **recorder.callbacks)
            outcome = recorder.wait(timeout=1500)
            log = (settings.jobs_root / "p1" / "job_root" / "logs" / "service.log").read_text()
            assert outcome.state == "SUCCEEDED", f"{outcome.error_message}\n{log[-3000:]}"
        finally:
            runner.shutdown()
        uid, version = (settings.storage_root / "bkt" / "out" / "uid.txt").read_text().split()
        assert int(uid) != 0 and version == "2.15.1"
        for name in (BASE_NAME, layer_name(RUNTIMES["2.2"])):
            built = settings.runtimes_root / name
            assert (built / SEALED_MARKER).exists()
            assert built.stat().st_uid == 0 and not built.stat().st_mode & 0o022
    finally:
        os.umask(umask)
