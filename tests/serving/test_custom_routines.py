"""Custom prediction routines: a user's class loaded from the path, in process and in a node."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cairn.domain.errors import ApiError, Code
from cairn.serving import ServingManager
from cairn.serving.errors import ModelLoadError, PredictionError
from cairn.serving.framing import PREDICT
from cairn.serving.loaders import load_predictor
from cairn.serving.process import NodeProcess, NodeStartError
from cairn.serving.requests import parse_request

ROUTINES = '''
import json
import asyncio
import os
import sys


class Scaled:
    """Sums each row, times a factor read from the model directory, times `scale`."""

    def __init__(self, factor):
        self.factor = factor

    @classmethod
    def from_path(cls, model_dir):
        with open(os.path.join(model_dir, "factor.json")) as handle:
            return cls(json.load(handle))

    def predict(self, instances, scale=1, **kwargs):
        if scale == 0:
            raise ValueError("scale must not be zero")
        if scale == "exit":
            sys.exit(3)
        if kwargs.get("shape") == "dict":
            return {"sum": 1}
        if kwargs.get("shape") == "short":
            return [1.0]
        if kwargs.get("shape") == "tuple":
            return tuple(sum(row) for row in instances)
        return [sum(row) * self.factor * scale for row in instances]


class Echo:
    """Returns the keyword arguments it was called with, once per instance."""

    @classmethod
    def from_path(cls, model_dir):
        return cls()

    def predict(self, instances, **kwargs):
        return [kwargs for _ in instances]


class NoPredict:
    @classmethod
    def from_path(cls, model_dir):
        return cls()


class NoFromPath:
    def predict(self, instances, **kwargs):
        return instances


class BrokenLoad:
    @classmethod
    def from_path(cls, model_dir):
        raise FileNotFoundError("model.pkl is missing from " + model_dir)

    def predict(self, instances, **kwargs):
        return instances


class NoInstances:
    @classmethod
    def from_path(cls, model_dir):
        return cls()

    def predict(self):
        return []


class Static:
    """A static predict and no **kwargs: fine while requests carry no other fields."""

    @classmethod
    def from_path(cls, model_dir):
        return cls()

    @staticmethod
    def predict(instances):
        return [len(instances)] * len(instances)


class ReturnsNone:
    @classmethod
    def from_path(cls, model_dir):
        return None

    def predict(self, instances, **kwargs):
        return instances


def not_a_class():
    pass
'''


@pytest.fixture
def package_dir(tmp_path: Path) -> Path:
    """A tiny importable package `my_routines` plus one module that fails to import."""
    root = tmp_path / "site"
    package = root / "my_routines"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "predictor.py").write_text(textwrap.dedent(ROUTINES))
    (package / "broken.py").write_text("import json\nraise RuntimeError('bad config at import')\n")
    (package / "needs_missing.py").write_text("import not_installed_anywhere\n")
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "factor.json").write_text("10")
    return directory


@pytest.fixture
def on_path(package_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The package importable here, and by node processes (they inherit PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(package_dir))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [str(package_dir), os.environ.get("PYTHONPATH")])),
    )
    yield
    for name in [m for m in sys.modules if m.startswith("my_routines")]:
        del sys.modules[name]


def request(instances: object, **extra: object) -> bytes:
    return orjson.dumps({"instances": instances, **extra})


@pytest.mark.usefixtures("on_path")
def test_keyword_arguments_come_from_the_request_body(model_dir: Path) -> None:
    predictor = load_predictor(model_dir, None, "my_routines.predictor.Scaled")
    assert predictor.warmup_instances() is None
    rows = [[1.0, 2.0], [3.0, 4.0]]
    assert predictor.predict_request(parse_request(request(rows))) == [30.0, 70.0]
    assert predictor.predict_request(parse_request(request(rows, scale=2))) == [60.0, 140.0]
    assert predictor.predict(rows) == [30.0, 70.0]

    echo = load_predictor(model_dir, None, "my_routines.predictor.Echo")
    body = request([1], scale=2, signature_name="sig", nested={"a": [1, 2]})
    assert echo.predict_request(parse_request(body)) == [
        {"scale": 2, "signature_name": "sig", "nested": {"a": [1, 2]}}
    ]


@pytest.mark.usefixtures("on_path")
def test_errors_in_user_code_name_the_routine(model_dir: Path) -> None:
    predictor = load_predictor(model_dir, None, "my_routines.predictor.Scaled")
    cases = [
        ({"scale": 0}, "my_routines.predictor.Scaled.predict: ValueError: scale must not be zero"),
        ({"scale": "exit"}, "my_routines.predictor.Scaled.predict: SystemExit: 3"),
        ({"shape": "dict"}, "returned dict; it must return a list"),
        ({"shape": "short"}, "returned 1 predictions for 2 instances"),
        ({"scale": None}, "Scaled.predict: TypeError: unsupported operand"),
    ]
    for options, words in cases:
        with pytest.raises(PredictionError) as caught:
            predictor.predict_request(parse_request(request([[1], [2]], **options)))
        assert caught.value.message.startswith("Prediction failed: "), options
        assert words in caught.value.message, (options, caught.value.message)
        assert "Traceback" not in caught.value.message
    tupled = predictor.predict_request(parse_request(request([[1], [2]], shape="tuple")))
    assert tupled == [1, 2]

    static = load_predictor(model_dir, None, "my_routines.predictor.Static")
    assert static.predict_request(parse_request(request([1, 2]))) == [2, 2]
    with pytest.raises(PredictionError, match="TypeError: .*unexpected keyword argument 'k'"):
        static.predict_request(parse_request(request([1], k=1)))


@pytest.mark.usefixtures("on_path")
@pytest.mark.parametrize(
    ("prediction_class", "words"),
    [
        ("Scaled", "must name a class with its module"),
        ("no_such_package.Predictor", "no module named 'no_such_package'"),
        ("my_routines.nowhere.Predictor", "module 'my_routines' has no attribute 'nowhere'"),
        ("my_routines.predictor.Missing", "module 'my_routines.predictor' has no attribute"),
        ("my_routines.broken.Predictor", "RuntimeError: bad config at import"),
        (
            "my_routines.needs_missing.Predictor",
            "ModuleNotFoundError: No module named 'not_installed_anywhere'",
        ),
        ("my_routines.predictor.not_a_class", "is a function, not a class"),
        ("my_routines.predictor.NoPredict", "lacks predict"),
        ("my_routines.predictor.NoFromPath", "lacks from_path"),
        ("my_routines.predictor.NoInstances", "must take the instances"),
        ("my_routines.predictor.BrokenLoad", "FileNotFoundError: model.pkl is missing"),
        ("my_routines.predictor.ReturnsNone", "from_path returned NoneType"),
    ],
)
def test_classes_that_cannot_serve_fail_to_load_with_the_reason(
    model_dir: Path, prediction_class: str, words: str
) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_predictor(model_dir, None, prediction_class)
    assert words in str(caught.value)


def test_a_routine_answers_from_a_real_node(model_dir: Path, on_path: None, tmp_path: Path) -> None:
    node = _node(model_dir, "my_routines.predictor.Scaled", tmp_path)
    try:
        handshake = node.start()
        assert handshake["warmup"] is None  # unknown inputs: the node is pinged
        node.warm_up(timeout_s=60)
        status, answer = node.call_blocking(PREDICT, request([[1, 2]], scale=3), 60)
        assert (status, orjson.loads(answer)) == (200, {"predictions": [90]})
        status, answer = node.call_blocking(PREDICT, request([[1, 2]], scale=0), 60)
        assert status == 400
        assert orjson.loads(answer) == {
            "error": "Prediction failed: Exception in the prediction routine "
            "my_routines.predictor.Scaled.predict: ValueError: scale must not be zero"
        }
        # sys.exit in user code is the request's error, not the node's end.
        status, _ = node.call_blocking(PREDICT, request([[1]], scale="exit"), 60)
        assert status == 400
        assert node.call_blocking(PREDICT, request([[1]]), 60)[0] == 200
    finally:
        node.stop(grace_s=1.0)


def test_a_node_whose_class_does_not_import_reports_why(
    model_dir: Path, on_path: None, tmp_path: Path
) -> None:
    node = _node(model_dir, "my_routines.broken.Predictor", tmp_path)
    try:
        with pytest.raises(NodeStartError, match="RuntimeError: bad config at import"):
            node.start()
    finally:
        node.stop(grace_s=1.0)


def test_a_version_deployed_with_its_class(model_dir: Path, on_path: None, tmp_path: Path) -> None:
    manager = ServingManager(tmp_path / "serving")
    key = "projects/p/models/m/versions/routine"
    try:
        # The directory holds no model file: the class decides what it reads.
        result = manager.deploy(
            key, model_dir, None, prediction_class="my_routines.predictor.Scaled"
        )
        assert result.framework == ""  # unset, as AI Platform leaves it for routines

        async def concurrent() -> list[tuple[int, bytes]]:
            bodies = [request([[1, 2]], scale=s) for s in (1, 2, 0)]
            return list(await asyncio.gather(*(manager.predict(key, b) for b in bodies)))

        answers = [(status, orjson.loads(body)) for status, body in asyncio.run(concurrent())]
        assert answers[0] == (200, {"predictions": [30]})
        assert answers[1] == (200, {"predictions": [60]})
        assert answers[2][0] == 400 and "scale must not be zero" in answers[2][1]["error"]

        with pytest.raises(ApiError) as failed:
            manager.deploy(key + "2", model_dir, None, prediction_class="my_routines.broken.X")
        assert failed.value.code is Code.FAILED_PRECONDITION
        assert "RuntimeError: bad config at import" in failed.value.message
        assert manager.is_deployed(key) and not manager.is_deployed(key + "2")
    finally:
        manager.shutdown()


def _node(model_dir: Path, prediction_class: str, tmp_path: Path) -> NodeProcess:
    sockets = Path(os.environ.get("TMPDIR", "/tmp"))
    return NodeProcess(
        model_dir=model_dir,
        framework=None,
        socket_path=sockets / f"cairn-test-{os.getpid()}-{tmp_path.name[-20:]}.sock",
        log_path=tmp_path / "node.log",
        load_timeout_s=120,
        prediction_class=prediction_class,
    )
