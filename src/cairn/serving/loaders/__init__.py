"""Loading a model directory into a `Predictor`, choosing the loader by framework.

Framework libraries are imported only when their loader runs, so a scikit-learn node never
pays for importing TensorFlow. A custom prediction routine (`prediction_class`) replaces the
framework loaders; a `preparation.joblib` beside a row model puts the fitted preparation in
front of it (loaders/prepared.py).
"""

from __future__ import annotations

from pathlib import Path

from cairn.serving.errors import ModelLoadError
from cairn.serving.frameworks import (
    PICKLE_FILES,
    PREPARATION_FILE,
    SCIKIT_LEARN,
    TENSORFLOW,
    TF_FILES,
    XGBOOST,
    XGBOOST_FILES,
    detect_framework,
    multiple_model_files,
    no_model_file,
    normalize_framework,
)
from cairn.serving.loaders.base import Predictor, RowPredictor

__all__ = ["Predictor", "RowPredictor", "load_predictor"]


def load_predictor(
    model_dir: Path, framework: str | None, prediction_class: str | None = None
) -> Predictor:
    """Load the model in `model_dir`; ApiError/ModelLoadError say what to fix when it fails.

    `prediction_class` ("module.Class", importable in this process) is a custom prediction
    routine: its `from_path(model_dir)` builds the predictor instead of a framework loader.
    """
    model_dir = Path(model_dir)
    if prediction_class:
        from cairn.serving.loaders.custom import load_custom_routine

        return load_custom_routine(model_dir, prediction_class)
    predictor = _load_framework_model(model_dir, framework)
    preparation = model_dir / PREPARATION_FILE
    if not preparation.is_file():
        return predictor
    if not isinstance(predictor, RowPredictor):
        raise ModelLoadError(
            f"{preparation} is a data preparation, which Cairn applies before scikit-learn "
            f"and XGBoost models only, not before a {predictor.framework} model. Remove it "
            "from the model directory and prepare instances before sending them."
        )
    from cairn.serving.loaders.prepared import PreparedPredictor, load_preparation_file

    return PreparedPredictor(predictor, load_preparation_file(preparation), preparation)


def _load_framework_model(model_dir: Path, framework: str | None) -> Predictor:
    chosen = normalize_framework(framework) or detect_framework(model_dir)
    if chosen == TENSORFLOW:
        if not any((model_dir / name).is_file() for name in TF_FILES):
            raise no_model_file(model_dir, TF_FILES)
        from cairn.serving.loaders.tensorflow import load_saved_model

        return load_saved_model(model_dir)
    expected = PICKLE_FILES if chosen == SCIKIT_LEARN else PICKLE_FILES + XGBOOST_FILES
    found = [name for name in expected if (model_dir / name).is_file()]
    if len(found) > 1:
        raise multiple_model_files(model_dir, found)
    if not found:
        raise no_model_file(model_dir, expected)
    path = model_dir / found[0]
    if path.name in XGBOOST_FILES:
        from cairn.serving.loaders.xgboost import load_booster

        return load_booster(path)
    from cairn.serving.loaders.sklearn import SklearnPredictor, load_pickled

    model = load_pickled(path)
    if type(model).__module__.startswith("xgboost"):
        from cairn.serving.loaders.xgboost import predictor_for_object

        return predictor_for_object(model, path)
    if chosen == XGBOOST:
        raise ModelLoadError(
            f"{path} holds a {type(model).__module__}.{type(model).__name__}, not an XGBoost "
            "model. Set the framework to SCIKIT_LEARN, or leave it unset to detect it."
        )
    return SklearnPredictor(model)
