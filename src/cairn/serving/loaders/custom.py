"""Custom prediction routines: a user's class named by the version's `predictionClass`.

AI Platform's interface, duck-typed as there:

    class MyPredictor:
        @classmethod
        def from_path(cls, model_dir): ...        # model_dir: local copy of deploymentUri
        def predict(self, instances, **kwargs): ...  # one prediction per instance

`kwargs` are the request body's other top-level fields (`{"instances": [...], "scale": 2}`
calls `predict(instances, scale=2)`). The class must be importable by the node's
interpreter: the version's `packageUris` are installed into its environment.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from cairn.serving.errors import ModelLoadError, PredictionError
from cairn.serving.loaders.base import Predictor
from cairn.serving.requests import PredictRequest

# A custom routine has no framework, as on AI Platform (the version leaves it unset).
CUSTOM_ROUTINE = ""

_HINT = (
    "Check the spelling of predictionClass ('module.ClassName') and that a package in "
    "packageUris provides the module."
)


class CustomRoutinePredictor(Predictor):
    """Wraps the routine's instance: `predict(instances, **options)`, result checked."""

    framework = CUSTOM_ROUTINE

    def __init__(self, routine: Any, prediction_class: str) -> None:
        self.routine = routine
        self.prediction_class = prediction_class
        self._predict = routine.predict

    def predict(self, instances: list[Any], signature_name: str | None = None) -> Any:
        options = {} if signature_name is None else {"signature_name": signature_name}
        return self._call(instances, options)

    def predict_request(self, request: PredictRequest) -> Any:
        # AI Platform passes every top-level field but `instances`, signature_name included.
        options = dict(request.options)
        if request.signature_name is not None:
            options["signature_name"] = request.signature_name
        return self._call(request.instances, options)

    def warmup_instances(self) -> list[Any] | None:
        return None  # a routine's inputs are unknown; the node is pinged instead

    def _call(self, instances: list[Any], options: dict[str, Any]) -> Any:
        try:
            result = self._predict(instances, **options)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - user code raises anything
            raise PredictionError(
                f"Exception in the prediction routine {self.prediction_class}.predict: "
                f"{_describe(error)}"
            ) from None
        if isinstance(result, tuple):
            result = list(result)
        if not isinstance(result, list | np.ndarray) or (
            isinstance(result, np.ndarray) and result.ndim == 0
        ):
            raise PredictionError(
                "There was a problem processing the outputs: "
                f"{self.prediction_class}.predict returned {type(result).__name__}; it must "
                "return a list (or numpy array) with one prediction per instance."
            )
        if len(result) != len(instances):
            raise PredictionError(
                "There was a problem processing the outputs: "
                f"{self.prediction_class}.predict returned {len(result)} predictions for "
                f"{len(instances)} instances; it must return one per instance."
            )
        return result


def load_custom_routine(model_dir: Path, prediction_class: str) -> CustomRoutinePredictor:
    """Import the class, check its interface and build it with `from_path(model_dir)`."""
    cls = resolve_class(prediction_class)
    _check_interface(cls, prediction_class)
    try:
        routine = cls.from_path(str(model_dir))
    except (Exception, SystemExit) as error:  # noqa: BLE001 - user code raises anything
        raise ModelLoadError(
            f"{prediction_class}.from_path({str(model_dir)!r}) failed: {_describe(error)}"
        ) from None
    if not callable(getattr(routine, "predict", None)):
        raise ModelLoadError(
            f"{prediction_class}.from_path returned {type(routine).__name__}, which has no "
            "predict(instances, **kwargs) method; from_path must return an instance of the "
            "prediction class."
        )
    return CustomRoutinePredictor(routine, prediction_class)


def resolve_class(prediction_class: str) -> Any:
    """The class a dotted "module.Class" names, or ModelLoadError saying why it is not there."""
    path = prediction_class.strip()
    module_name, _, attributes = path.rpartition(".")
    if not module_name or not attributes:
        raise ModelLoadError(
            f"predictionClass {prediction_class!r} must name a class with its module, "
            "like 'my_package.predictor.MyPredictor'."
        )
    # "pkg.module.Outer.Inner": import the longest prefix that is a module.
    parts = path.split(".")
    for split_at in range(len(parts) - 1, 0, -1):
        module_path = ".".join(parts[:split_at])
        try:
            target: Any = importlib.import_module(module_path)
        except ModuleNotFoundError as error:
            if error.name is not None and (module_path + ".").startswith(error.name + "."):
                continue  # this prefix is not a module; try a shorter one
            raise _import_failed(prediction_class, module_path, error) from None
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the module's own code raised
            raise _import_failed(prediction_class, module_path, error) from None
        for attribute in parts[split_at:]:
            if not hasattr(target, attribute):
                raise ModelLoadError(
                    f"Could not find predictionClass {prediction_class!r}: module "
                    f"{module_path!r} has no attribute {attribute!r}. {_HINT}"
                )
            target = getattr(target, attribute)
        if not inspect.isclass(target):
            raise ModelLoadError(
                f"predictionClass {prediction_class!r} is a {type(target).__name__}, not a class."
            )
        return target
    raise ModelLoadError(
        f"Could not import predictionClass {prediction_class!r}: no module named "
        f"{parts[0]!r} in the version's environment. {_HINT}"
    )


def _import_failed(prediction_class: str, module: str, error: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"Could not import predictionClass {prediction_class!r}: importing module {module!r} "
        f"raised {_describe(error)}"
    )


def _check_interface(cls: Any, prediction_class: str) -> None:
    lacking = [name for name in ("from_path", "predict") if not callable(getattr(cls, name, None))]
    if lacking:
        raise ModelLoadError(
            f"predictionClass {prediction_class!r} lacks {' and '.join(lacking)}: a prediction "
            "class needs a classmethod from_path(cls, model_dir) and a method "
            "predict(self, instances, **kwargs)."
        )
    raw = inspect.getattr_static(cls, "predict", None)
    # Through the class a plain method still has `self`; static and class methods do not.
    needed = 1 if isinstance(raw, staticmethod | classmethod) else 2
    try:
        parameters = list(inspect.signature(cls.predict).parameters.values())
    except (TypeError, ValueError):
        return  # a builtin or C method: let the call decide
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < needed and not any(p.kind == p.VAR_POSITIONAL for p in parameters):
        raise ModelLoadError(
            f"{prediction_class}.predict must take the instances: define it as "
            "predict(self, instances, **kwargs)."
        )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
