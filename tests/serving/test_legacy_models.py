"""Models saved by AI Platform's runtimes: XGBoost 1.7 binary model.bst, old scikit-learn pickles.

The XGBoost files are written by a real XGBoost 1.7.6 (runtime 2.11's), installed once into a
cached virtual environment (~/.cache/cairn-test-runtimes/xgboost-1.7.6, or
$CAIRN_TEST_RUNTIMES); the tests are skipped, saying why, only when it cannot be installed.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import psutil
import pytest
import sklearn.base
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cairn.config import Settings
from cairn.domain.errors import ApiError, Code
from cairn.isolation import isolate_user_code
from cairn.serving import ServingManager, legacy
from cairn.serving.legacy import prepare_legacy_model, sklearn_pickle_info
from cairn.serving.legacy_xgboost import (
    CONVERTED_DIR,
    converted_paths,
    is_legacy_binary,
    read_legacy_model,
)
from cairn.serving.loaders import load_predictor

from .conftest import training_data

# The first test builds the XGBoost 1.7.6 environment (a ~270 MB download on a fresh machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

KEY = "projects/p/models/m/versions/legacy"
XGBOOST_17 = "xgboost==1.7.6"
# XGBoost 1.7.6 and the newest of its era's scikit-learn that installs on this Python (runtime
# 2.11 had 1.0.2, which has no wheel for it): old pickles of both kinds.
OLD_RUNTIME = (XGBOOST_17, "scikit-learn==1.3.2", "numpy<2", "scipy<1.14")
KINDS = ("regression", "multiclass", "dart", "forest", "linear")

# Runs in the XGBoost 1.7.6 environment: models as runtime 2.11 users saved them, and what
# 1.7 itself predicted for the test rows.
GENERATE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import xgboost as xgb

    out = sys.argv[1]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take the default directions
    plain = np.nan_to_num(x)
    value = 3 * plain[:, 0] - plain[:, 1] ** 2 + rng.normal(scale=0.1, size=300)
    label = (plain[:, 0] > 0).astype(int) + (plain[:, 2] > 0.5).astype(int)
    setups = {
        "regression": ({"objective": "reg:squarederror", "max_depth": 4}, value, 20),
        "multiclass": (
            {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}, label, 10
        ),
        "dart": (
            {"booster": "dart", "objective": "binary:logistic", "rate_drop": 0.3,
             "max_depth": 3, "seed": 1}, label > 0, 8
        ),
        "forest": (
            {"objective": "binary:logistic", "num_parallel_tree": 4, "subsample": 0.8,
             "colsample_bynode": 0.8, "max_depth": 3}, label > 0, 3
        ),
        "linear": ({"booster": "gblinear", "objective": "reg:squarederror"}, value, 10),
    }
    rows = rng.normal(size=(50, 6))
    rows[rng.random(rows.shape) < 0.15] = np.nan
    np.save(f"{out}/rows.npy", rows)
    for name, (params, target, rounds) in setups.items():
        booster = xgb.train(params, xgb.DMatrix(x, label=target), rounds)
        booster.set_attr(trained_by="runtime 2.11")
        booster.save_model(f"{out}/{name}.bst")
        booster.save_model(f"{out}/{name}.json")
        np.save(f"{out}/{name}.predictions.npy", booster.predict(xgb.DMatrix(rows)))

    # What runtime 2.11 users also deployed: pickles (joblib) of an XGBClassifier and of a
    # scikit-learn model, written by that era's libraries.
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    train = np.nan_to_num(x)
    test = np.nan_to_num(rows)
    classifier = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(train, label)
    joblib.dump(classifier, f"{out}/xgbclassifier.joblib")
    np.save(f"{out}/xgbclassifier.predictions.npy", classifier.predict(test))
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(train, label)
    joblib.dump(forest, f"{out}/sklearn_forest.joblib")
    np.save(f"{out}/sklearn_forest.predictions.npy", forest.predict(test))
    """
)


def _runtime_home() -> Path:
    configured = os.environ.get("CAIRN_TEST_RUNTIMES")
    return Path(configured) if configured else Path.home() / ".cache" / "cairn-test-runtimes"


def _xgboost_17_python() -> Path:
    """A Python with XGBoost 1.7.6, built once per machine; skips when it cannot be installed."""
    home = _runtime_home()
    home.mkdir(parents=True, exist_ok=True)
    venv = home / "xgboost-1.7.6"
    python = venv / "bin" / "python"
    with (home / "xgboost-1.7.6.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions build it once
        wanted = " ".join(OLD_RUNTIME)
        if (venv / "ready").is_file() and (venv / "ready").read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True, capture_output=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *OLD_RUNTIME],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(
                f"cannot install {wanted} to write real 1.7 models (is the package "
                f"registry reachable?): {install.stderr.strip()[-500:]}"
            )
        (venv / "ready").write_text(wanted)
    return python


@pytest.fixture(scope="session")
def xgboost_17_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model files written by XGBoost 1.7.6: <kind>.bst, <kind>.json, its predictions."""
    out = tmp_path_factory.mktemp("xgboost17")
    subprocess.run(
        [str(_xgboost_17_python()), "-c", GENERATE, str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def model_dir(models: Path, kind: str, target: Path) -> Path:
    target.mkdir()
    shutil.copy(models / f"{kind}.bst", target / "model.bst")
    return target


def rows(models: Path) -> list[list[float | None]]:
    """The test rows as JSON instances (NaN is sent as null, i.e. missing)."""
    matrix = np.load(models / "rows.npy")
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def expected(models: Path, kind: str) -> np.ndarray:
    return np.load(models / f"{kind}.predictions.npy")


# ----- the conversion ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_converted_json_is_what_xgboost_17_writes(xgboost_17_models: Path, kind: str) -> None:
    data = (xgboost_17_models / f"{kind}.bst").read_bytes()
    assert is_legacy_binary(data[:64])
    assert not is_legacy_binary((xgboost_17_models / f"{kind}.json").read_bytes()[:64])
    ours = json.loads(json.dumps(read_legacy_model(data).to_json()))
    theirs = json.loads((xgboost_17_models / f"{kind}.json").read_text())
    # The binary format does not keep gblinear's round count.
    if kind == "linear":
        theirs["learner"]["gradient_booster"]["model"]["boosted_rounds"] = 0
    assert _as_float32(ours) == _as_float32(theirs)


def _as_float32(value: object) -> object:
    """Numbers compared as XGBoost stores them (float32); numeric strings likewise."""
    if isinstance(value, dict):
        return {key: _as_float32(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_float32(item) for item in value]
    if isinstance(value, float):
        return float(np.float32(value))
    if isinstance(value, str):
        try:
            return float(np.float32(float(value)))
        except ValueError:
            return value
    return value


@pytest.mark.parametrize("kind", KINDS)
def test_legacy_model_predicts_as_xgboost_17_did(
    xgboost_17_models: Path, kind: str, tmp_path: Path
) -> None:
    directory = model_dir(xgboost_17_models, kind, tmp_path / kind)
    note = prepare_legacy_model(directory, "2.11")
    assert note and "XGBoost 1.7 (runtime 2.11)" in note and "converted" in note
    assert (directory / "model.bst").read_bytes() == (
        xgboost_17_models / f"{kind}.bst"
    ).read_bytes()
    assert converted_paths(directory / "model.bst")[0].is_file()
    predictions = load_predictor(directory, "XGBOOST").predict(rows(xgboost_17_models))
    np.testing.assert_allclose(predictions, expected(xgboost_17_models, kind), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["regression", "dart", "linear"])
def test_json_is_encoded_one_tree_at_a_time_to_the_same_document(
    xgboost_17_models: Path, kind: str
) -> None:
    model = read_legacy_model((xgboost_17_models / f"{kind}.bst").read_bytes())
    assert json.loads(model.json_bytes()) == json.loads(json.dumps(model.to_json()))


def test_large_legacy_model_is_left_to_the_nodes(
    xgboost_17_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the server's limit nothing is converted in the server; the node converts it."""
    directory = model_dir(xgboost_17_models, "multiclass", tmp_path / "large")
    size = (directory / "model.bst").stat().st_size
    monkeypatch.setattr(legacy, "SERVER_CONVERSION_LIMIT", size - 1)
    monkeypatch.setattr(legacy, "convert", _must_not_run)
    note = prepare_legacy_model(directory, "2.11")
    assert note and "each node converts it" in note and "runtime 2.11" in note
    assert [path.name for path in directory.iterdir()] == ["model.bst"]
    predictions = load_predictor(directory, "XGBOOST").predict(rows(xgboost_17_models))
    np.testing.assert_allclose(predictions, expected(xgboost_17_models, "multiclass"), rtol=1e-5)


def _must_not_run(*args: object) -> None:
    raise AssertionError("the server converted a file above its limit")


def test_unprepared_legacy_model_is_converted_in_memory(
    xgboost_17_models: Path, tmp_path: Path
) -> None:
    """cairn local predict, or a directory nobody prepared: the loader converts it itself."""
    directory = model_dir(xgboost_17_models, "multiclass", tmp_path / "plain")
    predictions = load_predictor(directory, None).predict(rows(xgboost_17_models))
    # Nodes may not write into the version's copy: nothing is written there.
    assert [path.name for path in directory.iterdir()] == ["model.bst"]
    np.testing.assert_allclose(predictions, expected(xgboost_17_models, "multiclass"), rtol=1e-5)


def test_new_formats_need_no_preparation(tmp_path: Path) -> None:
    import xgboost as xgb

    x, y = training_data()
    directory = tmp_path / "ubj"
    directory.mkdir()
    xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), 2).save_model(str(directory / "model.bst"))
    assert prepare_legacy_model(directory, "2.11") is None
    assert not (directory / CONVERTED_DIR).exists()


def test_a_wrong_conversion_is_caught_before_serving(
    xgboost_17_models: Path, tmp_path: Path
) -> None:
    """The node compares XGBoost 3's margins with the original's: a difference fails the load."""
    directory = model_dir(xgboost_17_models, "regression", tmp_path / "tampered")
    prepare_legacy_model(directory)
    converted = converted_paths(directory / "model.bst")[0]
    model = json.loads(converted.read_text())
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    leaf = tree["left_children"].index(-1)
    tree["split_conditions"][leaf] += 1.0
    converted.write_text(json.dumps(model))
    with pytest.raises(Exception, match="the check failed: on 256 synthetic rows") as caught:
        load_predictor(directory, "XGBOOST")
    assert "Stack trace" not in str(caught.value)


# ----- deployment -------------------------------------------------------------------------


def test_legacy_bst_deploys_and_predicts(
    xgboost_17_models: Path, tmp_path: Path, manager: ServingManager
) -> None:
    directory = model_dir(xgboost_17_models, "multiclass", tmp_path / "version")
    assert prepare_legacy_model(directory, "2.11")
    result = manager.deploy(KEY, directory, None)
    assert result.framework == "XGBOOST"
    body = orjson.dumps({"instances": rows(xgboost_17_models)})
    status, answer = asyncio.run(manager.predict(KEY, body))
    assert status == 200, answer
    np.testing.assert_allclose(
        orjson.loads(answer)["predictions"], expected(xgboost_17_models, "multiclass"), rtol=1e-5
    )
    log = next((tmp_path / "serving" / "logs").glob("*node0.log")).read_text()
    assert "(prepared at deploy time); predictions match the original's on 256 synthetic" in log


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: b"PK\x03\x04" + bytes(range(256)), "corrupt or not a model"),  # a zip
        (lambda data: data + b"tail", "unexpected bytes follow the model"),
    ],
)
def test_corrupt_bst_gives_a_clean_error(
    xgboost_17_models: Path, tmp_path: Path, manager: ServingManager, cut: object, reason: str
) -> None:
    directory = tmp_path / "corrupt"
    directory.mkdir()
    data = (xgboost_17_models / "regression.bst").read_bytes()
    (directory / "model.bst").write_bytes(cut(data))  # type: ignore[operator]
    with pytest.raises(ApiError) as prepared:
        prepare_legacy_model(directory, "2.11")
    with pytest.raises(ApiError) as deployed:  # a directory nobody prepared fails the same way
        manager.deploy(KEY, directory, None)
    for error in (prepared.value, deployed.value):
        assert error.code is Code.FAILED_PRECONDITION
        assert reason in error.message
        assert "save_model('model.json')" in error.message
        assert "Stack trace" not in error.message and "[bt]" not in error.message
    assert not manager.is_deployed(KEY)


def test_broken_json_error_has_no_native_trace(tmp_path: Path, manager: ServingManager) -> None:
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "model.json").write_text('{"learner": ')
    with pytest.raises(ApiError) as caught:
        manager.deploy(KEY, directory, None)
    assert "Could not load the XGBoost model in model.json" in caught.value.message
    assert "Stack trace" not in caught.value.message and "[bt]" not in caught.value.message
    assert "save_model('model.json')" in caught.value.message


# ----- scikit-learn pickles ---------------------------------------------------------------


def test_old_sklearn_pickle_is_named_and_served(
    tmp_path: Path, manager: ServingManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = training_data()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    directory = tmp_path / "old_sklearn"
    directory.mkdir()
    # What a runtime 2.5 pickle says about itself: scikit-learn stores its version in the state.
    monkeypatch.setattr(sklearn.base, "__version__", "0.24.2")
    (directory / "model.pkl").write_bytes(pickle.dumps(forest))
    monkeypatch.undo()
    assert "0.24.2" in sklearn_pickle_info(directory / "model.pkl").versions
    note = prepare_legacy_model(directory, "2.5")
    assert note and "scikit-learn 0.24.2 (runtime 2.5)" in note
    assert f"scikit-learn {sklearn.__version__}" in note
    manager.deploy(KEY, directory, None)
    status, answer = asyncio.run(manager.predict(KEY, orjson.dumps({"instances": x[:5].tolist()})))
    assert (status, orjson.loads(answer)["predictions"]) == (200, forest.predict(x[:5]).tolist())


@pytest.mark.parametrize(
    ("kind", "framework"), [("xgbclassifier", "XGBOOST"), ("sklearn_forest", "SCIKIT_LEARN")]
)
def test_pickles_from_the_old_runtime_deploy_and_predict(
    xgboost_17_models: Path, tmp_path: Path, manager: ServingManager, kind: str, framework: str
) -> None:
    """joblib pickles written by XGBoost 1.7.6 / scikit-learn 1.3.2 load in today's libraries."""
    directory = tmp_path / kind
    directory.mkdir()
    shutil.copy(xgboost_17_models / f"{kind}.joblib", directory / "model.joblib")
    note = prepare_legacy_model(directory, "2.11")
    if framework == "SCIKIT_LEARN":
        assert note and "scikit-learn 1.3.2 (runtime 2.11)" in note
    assert manager.deploy(KEY, directory, None).framework == framework
    instances = np.nan_to_num(np.load(xgboost_17_models / "rows.npy")).tolist()
    status, answer = asyncio.run(manager.predict(KEY, orjson.dumps({"instances": instances})))
    assert status == 200, answer
    assert orjson.loads(answer)["predictions"] == expected(xgboost_17_models, kind).tolist()


@pytest.mark.parametrize("compress", [0, 3])
def test_versions_are_found_past_joblibs_raw_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: int
) -> None:
    """joblib writes array bytes between the pickle's opcodes; the version comes after them."""
    x, y = training_data()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    monkeypatch.setattr(sklearn.base, "__version__", "1.0.2")
    joblib.dump(pipeline, tmp_path / "model.joblib", compress=compress)
    info = sklearn_pickle_info(tmp_path / "model.joblib")
    assert info.versions == ["1.0.2"]
    assert {"sklearn.pipeline", "sklearn.preprocessing._data"} <= set(info.modules)


def test_current_sklearn_pickle_needs_no_note(tmp_path: Path) -> None:
    x, y = training_data()
    directory = tmp_path / "current"
    directory.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (directory / "model.pkl").write_bytes(
            pickle.dumps(RandomForestClassifier(n_estimators=2).fit(x, y))
        )
    assert prepare_legacy_model(directory, "2.11") is None


def test_pickle_naming_a_removed_sklearn_module_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "removed"
    directory.mkdir()
    # A scikit-learn 0.20 forest, as pickle protocol 2 wrote it: the class lived in
    # sklearn.ensemble.forest, which scikit-learn 0.24 removed.
    (directory / "model.pkl").write_bytes(
        b"\x80\x02csklearn.ensemble.forest\nRandomForestClassifier\nq\x00)\x81q\x01}q\x02"
        b"X\x10\x00\x00\x00_sklearn_versionq\x03X\x06\x00\x00\x000.20.4q\x04sb."
    )
    with pytest.raises(ApiError) as caught:
        prepare_legacy_model(directory, "1.15")
    assert caught.value.code is Code.FAILED_PRECONDITION
    message = caught.value.message
    assert "scikit-learn 0.20.4 (runtime 1.15)" in message
    assert "sklearn.ensemble.forest" in message and "Retrain" in message


def test_redeploy_reuses_the_conversion(xgboost_17_models: Path, tmp_path: Path) -> None:
    directory = model_dir(xgboost_17_models, "dart", tmp_path / "again")
    first = prepare_legacy_model(directory, "2.11")
    written = {path: path.stat().st_mtime_ns for path in (directory / CONVERTED_DIR).iterdir()}
    assert prepare_legacy_model(directory, "2.11") == first
    assert {p: p.stat().st_mtime_ns for p in (directory / CONVERTED_DIR).iterdir()} == written


def _u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def _text(value: bytes) -> bytes:
    return _u64(len(value)) + value


def as_written_by_xgboost_0_90(data: bytes, objective: bytes) -> bytes:
    """A 1.7 file rewritten as XGBoost 0.90 wrote it: no 'binf' header, version 0.90, the
    objective under its old name, base_score stored as a margin, no saved objective config.
    (No 0.90 wheel installs on this Python; the layout is otherwise the same.)"""
    body = data.removeprefix(b"binf")
    base_score = struct.unpack("<f", body[:4])[0]
    margin = math.log(base_score / (1 - base_score)) if b"logistic" in objective else base_score
    params = struct.pack("<f", margin) + body[4:20] + struct.pack("<II", 0, 90) + body[28:136]
    name_end = 136 + 8 + struct.unpack("<Q", body[136:144])[0]
    attributes_at = body.index(_text(b"best_iteration")) - 8  # xgb.train's, sorted first
    attributes = _u64(1) + _text(b"trained_by") + _text(b"runtime 1.15")
    return params + _text(objective) + body[name_end:attributes_at] + attributes


@pytest.mark.parametrize(
    ("kind", "old_name"), [("regression", b"reg:linear"), ("forest", b"binary:logistic")]
)
def test_models_from_xgboost_before_1_0(
    xgboost_17_models: Path, tmp_path: Path, kind: str, old_name: bytes
) -> None:
    directory = tmp_path / kind
    directory.mkdir()
    old = as_written_by_xgboost_0_90((xgboost_17_models / f"{kind}.bst").read_bytes(), old_name)
    (directory / "model.bst").write_bytes(old)
    note = prepare_legacy_model(directory, "1.15")
    assert note and "XGBoost < 1.0 (runtime 1.15)" in note
    predictions = load_predictor(directory, "XGBOOST").predict(rows(xgboost_17_models))
    np.testing.assert_allclose(predictions, expected(xgboost_17_models, kind), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(os.geteuid() != 0, reason="only a server running as root switches uids")
def test_unprivileged_node_reads_the_prepared_conversion(
    xgboost_17_models: Path, tmp_path: Path
) -> None:
    """The server (root, umask 077) prepares the copy; the node, another uid, reads it."""
    umask = os.umask(0o022)
    os.umask(umask)
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    try:
        identities = isolate_user_code(settings).identities
        assert identities is not None
        directory = settings.models_root / "p" / "m" / "v"
        directory.mkdir(parents=True)
        shutil.copy(xgboost_17_models / "regression.bst", directory / "model.bst")
        prepare_legacy_model(directory, "2.11")
        manager = ServingManager(settings.home / "serving", identities=identities)
        try:
            manager.deploy(KEY, directory, None)
            (uid,) = {psutil.Process(pid).uids().effective for pid in manager.node_pids(KEY)}
            assert uid != os.geteuid()
            body = orjson.dumps({"instances": rows(xgboost_17_models)})
            status, answer = asyncio.run(manager.predict(KEY, body))
            assert status == 200, answer
            np.testing.assert_allclose(
                orjson.loads(answer)["predictions"],
                expected(xgboost_17_models, "regression"),
                rtol=1e-5,
                atol=1e-6,
            )
            log = next((settings.home / "serving" / "logs").glob("*node0.log")).read_text()
            assert "served converted to JSON (prepared at deploy time)" in log
        finally:
            manager.shutdown()
    finally:
        os.umask(umask)


def test_a_runtime_211_model_bst_deploys_as_a_version_and_predicts(
    xgboost_17_models: Path, cairn_server: Any, ml: Any, tmp_path: Path
) -> None:
    """The issue's case end to end: a 1.7 binary model.bst through versions.create over HTTP."""
    from tests.remote import unique, upload_dir, wait_operation

    project = "projects/legacy_project"
    model = unique("legacy")
    directory = model_dir(xgboost_17_models, "multiclass", tmp_path / "multiclass")
    uri = upload_dir(cairn_server.url, directory, "legacy-models", model, cairn_server.headers())
    ml.projects().models().create(parent=project, body={"name": model}).execute()
    operation = (
        ml.projects()
        .models()
        .versions()
        .create(
            parent=f"{project}/models/{model}",
            body={"name": "v1", "deploymentUri": uri, "runtimeVersion": "2.11"},
        )
        .execute()
    )
    done = wait_operation(ml, operation["name"])
    assert "error" not in done, done
    assert done["response"]["framework"] == "XGBOOST"
    answer = (
        ml.projects()
        .predict(name=f"{project}/models/{model}", body={"instances": rows(xgboost_17_models)})
        .execute()
    )
    np.testing.assert_allclose(
        answer["predictions"], expected(xgboost_17_models, "multiclass"), rtol=1e-5, atol=1e-6
    )
