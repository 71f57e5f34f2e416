"""TensorFlow SavedModels: loaded with tag `serve`, answered through a signature.

Instances follow AI Platform: single-input signatures take bare values (or `{alias: value}`),
multi-input ones take objects keyed by input alias; `{"b64": ...}` is decoded for string
inputs. A single output gives bare predictions, several give objects keyed by output alias;
string outputs whose alias ends in `_bytes` come back as `{"b64": ...}`.

A request is first turned into `TensorInputs` (numpy arrays, checked against the signature),
then predicted: the node stacks the inputs of concurrent requests to the same signature with
the same instance shapes into one graph call (`stack_inputs`) and splits the answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from cairn.serving.errors import InvalidInputs, ModelLoadError, PredictionError
from cairn.serving.frameworks import TENSORFLOW
from cairn.serving.loaders.base import Predictor
from cairn.serving.requests import PredictRequest

DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class _Signature:
    function: Any
    inputs: dict[str, tf.TensorSpec]

    @property
    def takes_any_count(self) -> bool:
        """True when every input's first axis is left open, so instances can be stacked."""
        return all(
            spec.shape.rank is None or (spec.shape.rank > 0 and spec.shape[0] is None)
            for spec in self.inputs.values()
        )


@dataclass(frozen=True)
class TensorInputs:
    """One request's (or several stacked requests') inputs, ready for the graph."""

    signature_name: str
    arrays: dict[str, np.ndarray]
    count: int
    stackable: bool

    @property
    def stack_key(self) -> Hashable:
        """Inputs with equal keys can be concatenated along the instances' axis."""
        return (
            self.signature_name,
            tuple(
                (alias, array.dtype.str, array.shape[1:]) for alias, array in self.arrays.items()
            ),
        )


class SavedModelPredictor(Predictor):
    framework = TENSORFLOW

    def __init__(self, loaded: Any) -> None:
        self._loaded = loaded  # keeps the variables the signatures capture alive
        self._signatures = {
            name: _Signature(function, dict(function.structured_input_signature[1]))
            for name, function in loaded.signatures.items()
        }
        if not self._signatures:
            raise ModelLoadError(
                "The SavedModel has no signatures; export it with a 'serving_default' "
                "signature (tf.saved_model.save(..., signatures=...))."
            )

    def predict(self, instances: list[Any], signature_name: str | None = None) -> Any:
        return self.predict_inputs(self.to_inputs(PredictRequest(instances, signature_name)))

    def to_inputs(self, request: PredictRequest) -> TensorInputs:
        """The request's instances as arrays for its signature, or InvalidInputs."""
        name = request.signature_name or DEFAULT_SIGNATURE
        signature = self._signature(name)
        columns = _columns(request.instances, list(signature.inputs))
        arrays = {
            alias: _to_array(values, signature.inputs[alias], alias)
            for alias, values in columns.items()
        }
        return TensorInputs(name, arrays, len(request.instances), signature.takes_any_count)

    def predict_inputs(self, inputs: TensorInputs) -> Any:
        signature = self._signature(inputs.signature_name)
        tensors = {
            alias: tf.constant(array, dtype=signature.inputs[alias].dtype)
            for alias, array in inputs.arrays.items()
        }
        try:
            outputs = signature.function(**tensors)
        except Exception as error:  # noqa: BLE001 - graph errors are the request's answer
            raise PredictionError(f"Exception during running the graph: {error}") from None
        return _format_outputs(outputs, inputs.count)

    def stack_inputs(self, parts: list[TensorInputs]) -> TensorInputs:
        """One input set of all `parts` (equal `stack_key`s), instances in order."""
        first = parts[0]
        arrays = {
            alias: np.concatenate([part.arrays[alias] for part in parts]) for alias in first.arrays
        }
        count = sum(part.count for part in parts)
        return TensorInputs(first.signature_name, arrays, count, first.stackable)

    def warmup_instances(self) -> list[Any] | None:
        signature = self._signatures.get(DEFAULT_SIGNATURE) or next(iter(self._signatures.values()))
        values = {alias: _zero_value(spec) for alias, spec in signature.inputs.items()}
        if len(values) == 1:
            return [next(iter(values.values()))]
        return [values]

    def _signature(self, name: str | None) -> _Signature:
        wanted = name or DEFAULT_SIGNATURE
        signature = self._signatures.get(wanted)
        if signature is None:
            raise InvalidInputs(
                f"the model has no signature named '{wanted}'; available signatures: "
                f"{', '.join(sorted(self._signatures))}. Set signature_name to one of them."
            )
        return signature


def load_saved_model(model_dir: Path) -> SavedModelPredictor:
    try:
        loaded = tf.saved_model.load(str(model_dir), tags=["serve"])
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(
            f"Could not load the SavedModel in {model_dir} with tag 'serve': {error}"
        ) from None
    return SavedModelPredictor(loaded)


def _columns(instances: list[Any], aliases: list[str]) -> dict[str, list[Any]]:
    """Per-input lists of values, one per instance."""
    if len(aliases) == 1:
        alias = aliases[0]
        if not any(type(instance) is dict for instance in instances):
            return {alias: instances}  # bare values, the common case: no copy
        values = []
        for instance in instances:
            if isinstance(instance, dict) and not _is_b64(instance):
                if set(instance) != {alias}:
                    raise InvalidInputs(
                        f"Expected tensor name: {alias}, got tensor name: {sorted(instance)}."
                    )
                values.append(instance[alias])
            else:
                values.append(instance)
        return {alias: values}
    columns: dict[str, list[Any]] = {alias: [] for alias in aliases}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or _is_b64(instance):
            raise InvalidInputs(
                f"instance {index} must be an object keyed by the model's inputs "
                f"({', '.join(aliases)}), because the signature has several inputs."
            )
        missing = [alias for alias in aliases if alias not in instance]
        unknown = sorted(set(instance) - set(aliases))
        if missing or unknown:
            raise InvalidInputs(
                f"instance {index} has inputs {sorted(instance)}, but the signature expects "
                f"exactly {sorted(aliases)}."
            )
        for alias in aliases:
            columns[alias].append(instance[alias])
    return columns


def _to_array(values: list[Any], spec: tf.TensorSpec, alias: str) -> np.ndarray:
    if spec.dtype == tf.string:
        array = np.array(_decode_strings(values, alias), dtype=object)
    else:
        array = _numeric_array(values, spec, alias)
    if not spec.shape.is_compatible_with(array.shape):
        raise InvalidInputs(
            f"input '{alias}' expects shape {_shape_text(spec)} (first axis: instances), "
            f"but the instances give {list(array.shape)}."
        )
    return array


def _numeric_array(values: list[Any], spec: tf.TensorSpec, alias: str) -> np.ndarray:
    """numpy converts in C; the values are walked in Python only to explain a failure.

    A `{"b64": ...}` object never converts to a number or complex value, so a successful
    conversion proves there was none; booleans (and other dtypes) would take an object as
    True, so for them the walk comes first.
    """
    dtype = np.dtype(spec.dtype.as_numpy_dtype)
    if dtype.kind not in "fiuc" and _contains_b64(values):
        raise _b64_not_allowed(spec, alias)
    try:
        return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError) as error:
        if _contains_b64(values):
            raise _b64_not_allowed(spec, alias) from None
        raise InvalidInputs(
            f"input '{alias}' expects {spec.dtype.name} values of shape "
            f"{_shape_text(spec)}: {error}."
        ) from None


def _b64_not_allowed(spec: tf.TensorSpec, alias: str) -> InvalidInputs:
    return InvalidInputs(
        f"input '{alias}' is {spec.dtype.name}, so it cannot take {{\"b64\": ...}} values."
    )


def _shape_text(spec: tf.TensorSpec) -> str:
    if spec.shape.rank is None:
        return "any"
    return str([dim if dim is not None else -1 for dim in spec.shape.as_list()])


def _decode_strings(value: Any, alias: str) -> Any:
    if isinstance(value, list):
        return [_decode_strings(item, alias) for item in value]
    if isinstance(value, dict):
        if not _is_b64(value):
            raise InvalidInputs(f"input '{alias}' takes strings or {{\"b64\": ...}} objects.")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidInputs(f"input '{alias}' has a 'b64' value that is not base64.") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


def _is_b64(value: dict[str, Any]) -> bool:
    return len(value) == 1 and "b64" in value


def _contains_b64(value: Any) -> bool:
    if isinstance(value, list):
        return any(_contains_b64(item) for item in value)
    return isinstance(value, dict)


def _format_outputs(outputs: Any, count: int) -> Any:
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    columns: dict[str, Any] = {}
    for alias, tensor in outputs.items():
        array = np.asarray(tensor)
        if array.ndim == 0 or array.shape[0] != count:
            raise PredictionError(
                "There was a problem processing the outputs: output "
                f"'{alias}' has shape {list(array.shape)}, but its first axis must be the "
                f"{count} instances."
            )
        columns[alias] = _jsonable(array, alias)
    if len(columns) == 1:
        return next(iter(columns.values()))
    rows = [dict.fromkeys(columns) for _ in range(count)]
    for alias, values in columns.items():
        for row, value in zip(rows, values, strict=True):
            row[alias] = value
    return rows


def _jsonable(array: np.ndarray, alias: str) -> Any:
    if array.dtype != object and array.dtype.kind not in "SU":
        return array.tolist()
    return _encode_strings(array.tolist(), alias.endswith("_bytes"))


def _encode_strings(value: Any, as_b64: bool) -> Any:
    if isinstance(value, list):
        return [_encode_strings(item, as_b64) for item in value]
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _zero_value(spec: tf.TensorSpec) -> Any:
    zero: Any = "" if spec.dtype == tf.string else (False if spec.dtype == tf.bool else 0)
    if spec.shape.rank is None or spec.shape.rank <= 1:
        return zero
    value = zero
    for dim in reversed(spec.shape.as_list()[1:]):
        value = [value] * (dim or 1)
    return value
