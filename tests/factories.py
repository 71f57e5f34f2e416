"""Factories for the artefacts tests need: trainer packages and model directories."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def build_trainer_sdist(
    workdir: Path,
    task_code: str,
    *,
    name: str = "trainer",
    version: str = "0.1",
    install_requires: list[str] | None = None,
) -> Path:
    """Build a real sdist of package `name` whose `task` module runs `task_code`."""
    source = workdir / f"{name}-src"
    package = source / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(textwrap.dedent(task_code))
    (source / "setup.py").write_text(
        "from setuptools import setup, find_packages\n"
        f"setup(name={name!r}, version={version!r}, packages=find_packages(),"
        f" install_requires={install_requires or []!r})\n"
    )
    dist = workdir / f"{name}-dist"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (sdist,) = dist.glob("*.tar.gz")
    return sdist


def sklearn_model_dir(directory: Path) -> Path:
    """A small logistic regression on 4 features saved as model.joblib."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    return directory


def xgboost_model_dir(directory: Path) -> Path:
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgb.DMatrix(features, label=labels),
        num_boost_round=5,
    )
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / "model.bst"))
    return directory


def tensorflow_model_dir(directory: Path) -> Path:
    """A SavedModel with two named inputs (`a`, `b`) returning `sum` and `product`."""
    import tensorflow as tf

    class Arithmetic(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="a"),
                tf.TensorSpec([None], tf.float32, name="b"),
            ]
        )
        def serve(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"sum": a + b, "product": a * b}

    module = Arithmetic()
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})
    return directory
