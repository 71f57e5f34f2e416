"""TensorFlow SavedModels: named inputs, bare values, b64 strings, signatures, outputs."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.serving.test_batching import decode

from cairn.domain.errors import ApiError
from cairn.serving import ServingManager, detect_framework, predict_local
from cairn.serving.batching import BatchAnswerer
from cairn.serving.framing import PREDICT
from cairn.serving.loaders import load_predictor

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow


class TwoInputs(tf.Module):
    """score = 2*x + sum(v); also echoes the byte length of `image_bytes`."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="x"),
            tf.TensorSpec([None, 2], tf.float32, name="v"),
            tf.TensorSpec([None], tf.string, name="image_bytes"),
        ]
    )
    def serve(self, x: tf.Tensor, v: tf.Tensor, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return {
            "score": 2.0 * x + tf.reduce_sum(v, axis=1),
            "length": tf.strings.length(image_bytes),
            "echo_bytes": image_bytes,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def double(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"doubled": 2.0 * x}


class OneInput(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def serve(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"total": tf.reduce_sum(features, axis=1)}


@pytest.fixture(scope="module")
def two_inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tf_two")
    module = TwoInputs()
    tf.saved_model.save(
        module,
        str(directory),
        signatures={"serving_default": module.serve, "double": module.double},
    )
    return directory


@pytest.fixture(scope="module")
def one_input_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tf_one")
    module = OneInput()
    tf.saved_model.save(module, str(directory), signatures=module.serve)
    return directory


def test_detected(two_inputs_dir: Path) -> None:
    assert detect_framework(two_inputs_dir) == "TENSORFLOW"


def test_named_inputs_and_multi_output(two_inputs_dir: Path) -> None:
    instances = [
        {"x": 1.0, "v": [1.0, 2.0], "image_bytes": {"b64": base64.b64encode(b"abc").decode()}},
        {"x": 0.5, "v": [0.0, 0.0], "image_bytes": {"b64": base64.b64encode(b"\xff\x00").decode()}},
    ]
    predictions = predict_local(two_inputs_dir, None, instances)
    assert predictions == [
        {"score": 5.0, "length": 3, "echo_bytes": {"b64": base64.b64encode(b"abc").decode()}},
        {"score": 1.0, "length": 2, "echo_bytes": {"b64": base64.b64encode(b"\xff\x00").decode()}},
    ]


def test_other_signature(two_inputs_dir: Path) -> None:
    assert predict_local(two_inputs_dir, "tensorflow", [1.5, 2.0], "double") == [3.0, 4.0]
    with pytest.raises(ApiError, match="no signature named 'nope'"):
        predict_local(two_inputs_dir, None, [1.0], "nope")


def test_single_input_bare_values_and_alias(one_input_dir: Path) -> None:
    assert predict_local(one_input_dir, None, [[1, 2, 3], [0, 0, 1]]) == [6.0, 1.0]
    assert predict_local(one_input_dir, None, [{"features": [1, 1, 1]}]) == [3.0]
    with pytest.raises(ApiError, match="Expected tensor name: features"):
        predict_local(one_input_dir, None, [{"feature": [1, 1, 1]}])


def test_bad_tf_instances(two_inputs_dir: Path, one_input_dir: Path) -> None:
    with pytest.raises(ApiError, match="expects shape"):
        predict_local(one_input_dir, None, [[1, 2]])
    with pytest.raises(ApiError, match="expects exactly"):
        predict_local(two_inputs_dir, None, [{"x": 1.0, "v": [1.0, 2.0]}])
    with pytest.raises(ApiError, match="must be an object"):
        predict_local(two_inputs_dir, None, [1.0])


def test_served_by_node(tmp_path: Path, two_inputs_dir: Path, one_input_dir: Path) -> None:
    manager = ServingManager(tmp_path / "run")
    try:
        assert manager.deploy("k1", one_input_dir, "TENSORFLOW").framework == "TENSORFLOW"
        assert manager.deploy("k2", two_inputs_dir, None).framework == "TENSORFLOW"

        async def scenario() -> list[tuple[int, bytes]]:
            return [
                await manager.predict("k1", b'{"instances": [[1, 2, 3]]}'),
                await manager.predict("k2", b'{"instances": [3.0], "signature_name": "double"}'),
                await manager.predict("k1", b'{"instances": [[1, 2]]}'),
            ]

        ok, other_signature, bad = asyncio.run(scenario())
        assert ok == (200, b'{"predictions":[6.0]}')
        assert orjson.loads(other_signature[1]) == {"predictions": [6.0]}
        assert bad[0] == 400 and b"expects shape" in bad[1]
    finally:
        manager.shutdown()


class CallCounter(tf.Module):
    """Answers each instance with the number of the graph call that computed it; a negative
    `x` fails the graph, which must fail only the request that sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = tf.Variable(0, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.debugging.assert_non_negative(x, message="x must not be negative")
        call = self.calls.assign_add(1)
        return {
            "call": tf.fill([tf.shape(x)[0]], call),
            "total": tf.reduce_sum(x, axis=1),
        }

    @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
    def pairs(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        call = self.calls.assign_add(1)
        return {"call": tf.fill([2], call), "total": tf.reduce_sum(x, axis=1)}


@pytest.fixture(scope="module")
def counter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tf_counter")
    module = CallCounter()
    tf.saved_model.save(
        module, str(directory), signatures={"serving_default": module.serve, "pairs": module.pairs}
    )
    return directory


def answer_together(model_dir: Path, bodies: list[dict[str, Any]]) -> dict[int, tuple[int, Any]]:
    """The node's answers to `bodies` arriving together (request ids 1, 2, ...)."""
    answerer = BatchAnswerer(load_predictor(model_dir, "TENSORFLOW"))
    frames = [(index, PREDICT, orjson.dumps(body)) for index, body in enumerate(bodies, 1)]
    return decode(answerer.answer(frames))


def calls_of(answer: tuple[int, Any]) -> set[int]:
    assert answer[0] == 200, answer
    return {prediction["call"] for prediction in answer[1]["predictions"]}


def test_requests_arriving_together_share_one_graph_call(counter_dir: Path) -> None:
    answers = answer_together(
        counter_dir,
        [
            {"instances": [[1, 2, 3]]},
            {"instances": [[4, 5, 6], [1, 1, 1]]},
            {"instances": [{"x": [0, 0, 1]}]},
        ],
    )
    assert [[p["total"] for p in answers[i][1]["predictions"]] for i in (1, 2, 3)] == [
        [6.0],
        [15.0, 3.0],
        [1.0],
    ]
    assert len(calls_of(answers[1]) | calls_of(answers[2]) | calls_of(answers[3])) == 1


def test_only_matching_instance_shapes_and_signatures_are_stacked(counter_dir: Path) -> None:
    answers = answer_together(
        counter_dir,
        [
            {"instances": [[1, 2, 3]]},
            {"instances": [[1, 2]]},  # another width: a call of its own
            {"instances": [[1, 1, 1]]},
            {"instances": [[1, 1, 1], [2, 2, 2]], "signature_name": "pairs"},
            {"instances": [[3, 3, 3], [4, 4, 4]], "signature_name": "pairs"},
        ],
    )
    assert calls_of(answers[1]) == calls_of(answers[3])
    assert calls_of(answers[2]) != calls_of(answers[1])
    # A signature with a fixed number of instances is never stacked.
    assert calls_of(answers[4]) != calls_of(answers[5])
    assert [p["total"] for p in answers[5][1]["predictions"]] == [9.0, 12.0]


def test_a_failing_graph_call_fails_only_its_own_request(counter_dir: Path) -> None:
    answers = answer_together(
        counter_dir,
        [
            {"instances": [[1, 2, 3]]},
            {"instances": [[1, -2, 3]]},  # fails the graph
            {"instances": [[1, 2]], "signature_name": "nope"},  # bad before any call
            {"instances": [[0, 0, 1], [1, 0, 0]]},
        ],
    )
    assert answers[1][1]["predictions"][0]["total"] == 6.0
    assert answers[4][1]["predictions"][1]["total"] == 1.0
    assert calls_of(answers[1]) != calls_of(answers[4])  # retried one by one
    assert answers[2][0] == 400
    assert "Exception during running the graph" in answers[2][1]["error"]
    assert "must not be negative" in answers[2][1]["error"]
    assert answers[3][0] == 400 and "no signature named 'nope'" in answers[3][1]["error"]


def test_b64_objects_rejected_for_numeric_inputs(one_input_dir: Path) -> None:
    with pytest.raises(ApiError, match="cannot take"):
        predict_local(one_input_dir, None, [[1.0, 2.0, {"b64": "AAAA"}]])
    with pytest.raises(ApiError, match="expects float32 values"):
        predict_local(one_input_dir, None, [[1.0, 2.0, [3.0]]])
