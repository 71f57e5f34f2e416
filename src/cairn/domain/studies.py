"""Vizier studies and trials (`projects.locations.studies[.trials]`) and their rules.

Names follow the discovery document: `StudyConfig_ParameterSpec` is `ParameterSpec` here,
`StudyConfigParameterSpec_DoubleValueSpec` is `DoubleValueSpec`, and so on. Every message is
proto3 JSON like the rest of ml v1, except a trial parameter's value, which is a proto
`oneof` and so is kept even when it is zero (`{"floatValue": 0}`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, TypeVar

from pydantic import SerializerFunctionWrapHandler, model_serializer

from cairn.domain.errors import ApiError, Code, FieldViolation, invalid_field, shown
from cairn.domain.wire import Int32, Int64, Message, Timestamp

StudyState = Literal["STATE_UNSPECIFIED", "ACTIVE", "INACTIVE", "COMPLETED"]
TrialState = Literal["STATE_UNSPECIFIED", "REQUESTED", "ACTIVE", "COMPLETED", "STOPPING"]
Algorithm = Literal[
    "ALGORITHM_UNSPECIFIED", "GAUSSIAN_PROCESS_BANDIT", "GRID_SEARCH", "RANDOM_SEARCH"
]
ParameterType = Literal[
    "PARAMETER_TYPE_UNSPECIFIED", "DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE"
]
ScaleType = Literal[
    "SCALE_TYPE_UNSPECIFIED", "UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE"
]
GoalType = Literal["GOAL_TYPE_UNSPECIFIED", "MAXIMIZE", "MINIMIZE"]

# Trials that still run (or wait to): their parameters are pending for the strategy.
PENDING_TRIAL_STATES = frozenset({"REQUESTED", "ACTIVE", "STOPPING"})

# Bounds on what one study may hold: every suggestion reads the whole history, and a
# conditional tree is walked recursively, so their sizes are capped where they are given.
MAX_PARAMETERS = 100
MAX_NESTING = 8
MAX_VALUES = 1000
MAX_METRICS = 16
MAX_SUGGESTIONS = 100
MAX_TRIALS_PER_STUDY = 10_000
MAX_MEASUREMENTS_PER_TRIAL = 10_000
MAX_METRICS_PER_MEASUREMENT = 100
MAX_NAME_CHARS = 256
MAX_REASON_CHARS = 8192

_DURATION = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?s")


class DoubleValueSpec(Message):
    min_value: float | None = None
    max_value: float | None = None


class IntegerValueSpec(Message):
    min_value: Int64 | None = None
    max_value: Int64 | None = None


class CategoricalValueSpec(Message):
    values: list[str] | None = None


class DiscreteValueSpec(Message):
    values: list[float] | None = None


class MatchingParentCategoricalValueSpec(Message):
    values: list[str] | None = None


class MatchingParentDiscreteValueSpec(Message):
    values: list[float] | None = None


class MatchingParentIntValueSpec(Message):
    values: list[Int64] | None = None


class ParameterSpec(Message):
    parameter: str | None = None
    type: ParameterType | None = None
    double_value_spec: DoubleValueSpec | None = None
    integer_value_spec: IntegerValueSpec | None = None
    categorical_value_spec: CategoricalValueSpec | None = None
    discrete_value_spec: DiscreteValueSpec | None = None
    scale_type: ScaleType | None = None
    child_parameter_specs: list[ParameterSpec] | None = None
    parent_categorical_values: MatchingParentCategoricalValueSpec | None = None
    parent_discrete_values: MatchingParentDiscreteValueSpec | None = None
    parent_int_values: MatchingParentIntValueSpec | None = None


class MetricSpec(Message):
    metric: str | None = None
    goal: GoalType | None = None


class MedianAutomatedStoppingConfig(Message):
    use_elapsed_time: bool | None = None


class DecayCurveAutomatedStoppingConfig(Message):
    use_elapsed_time: bool | None = None


class AutomatedStoppingConfig(Message):
    decay_curve_stopping_config: DecayCurveAutomatedStoppingConfig | None = None
    median_automated_stopping_config: MedianAutomatedStoppingConfig | None = None


class StudyConfig(Message):
    algorithm: Algorithm | None = None
    automated_stopping_config: AutomatedStoppingConfig | None = None
    metrics: list[MetricSpec] | None = None
    parameters: list[ParameterSpec] | None = None


class Study(Message):
    name: str | None = None
    study_config: StudyConfig | None = None
    # Output only.
    state: StudyState | None = None
    create_time: Timestamp | None = None
    inactive_reason: str | None = None


class MeasurementMetric(Message):
    metric: str | None = None
    value: float | None = None


class Measurement(Message):
    elapsed_time: str | None = None
    metrics: list[MeasurementMetric] | None = None
    step_count: Int64 | None = None


class TrialParameter(Message):
    parameter: str | None = None
    float_value: float | None = None
    int_value: Int64 | None = None
    string_value: str | None = None

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The value is a oneof: its presence is the information, zero or not.
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class Trial(Message):
    name: str | None = None
    state: TrialState | None = None
    parameters: list[TrialParameter] | None = None
    final_measurement: Measurement | None = None
    measurements: list[Measurement] | None = None
    # Output only.
    client_id: str | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    trial_infeasible: bool | None = None
    infeasible_reason: str | None = None


OUTPUT_ONLY_TRIAL_FIELDS = (
    "name",
    "client_id",
    "start_time",
    "end_time",
    "trial_infeasible",
    "infeasible_reason",
)


class SuggestTrialsRequest(Message):
    client_id: str | None = None
    suggestion_count: Int32 | None = None


class CompleteTrialRequest(Message):
    final_measurement: Measurement | None = None
    trial_infeasible: bool | None = None
    infeasible_reason: str | None = None


class AddTrialMeasurementRequest(Message):
    measurement: Measurement | None = None


class StopTrialRequest(Message):
    pass


class ListOptimalTrialsRequest(Message):
    pass


class CheckTrialEarlyStoppingStateRequest(Message):
    pass


M = TypeVar("M", bound=Message)


def parse_request(cls: type[M], data: Any) -> M:
    """A request whose fields are the body's own (HTTP body `*`); an empty body is `{}`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(
            Code.INVALID_ARGUMENT,
            "Invalid JSON payload received. Expected a JSON object.",
            [FieldViolation("body", "Expected a JSON object.")],
        )
    parsed: M = cls.parse(data, "")
    return parsed


# ----- studies -------------------------------------------------------------------------------


def validate_study_config(config: StudyConfig | None, path: str = "study.study_config") -> None:
    """Vizier's rules for a study's configuration; raises INVALID_ARGUMENT naming the field."""
    if config is None:
        raise invalid_field(path, "A study needs a studyConfig with parameters and metrics.")
    _check_metrics(config.metrics, f"{path}.metrics")
    if not config.parameters:
        raise invalid_field(f"{path}.parameters", "At least one parameter is required.")
    names: set[str] = set()
    for index, spec in enumerate(config.parameters):
        where = f"{path}.parameters[{index}]"
        if _has_parent_values(spec):
            raise invalid_field(
                where, "Only a childParameterSpecs entry can match its parent's values."
            )
        _check_parameter(spec, where, config.algorithm, names, depth=1)
    if len(names) > MAX_PARAMETERS:
        raise invalid_field(
            f"{path}.parameters",
            f"A study tunes at most {MAX_PARAMETERS} parameters, children included; "
            f"this one has {len(names)}.",
        )
    stopping = config.automated_stopping_config
    if (
        stopping is not None
        and stopping.decay_curve_stopping_config is not None
        and stopping.median_automated_stopping_config is not None
    ):
        raise invalid_field(
            f"{path}.automated_stopping_config",
            "Set one of decayCurveStoppingConfig and medianAutomatedStoppingConfig, not both.",
        )


def _check_metrics(metrics: list[MetricSpec] | None, path: str) -> None:
    if not metrics:
        raise invalid_field(path, "At least one metric (its name and goal) is required.")
    if len(metrics) > MAX_METRICS:
        raise invalid_field(path, f"A study has at most {MAX_METRICS} metrics.")
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"{path}[{index}].metric"
        if not metric.metric:
            raise invalid_field(where, "A metric name is required.")
        _check_name(metric.metric, where)
        if metric.metric in seen:
            raise invalid_field(where, f"Duplicate metric {shown(metric.metric)}.")
        seen.add(metric.metric)


def _check_name(name: str, where: str) -> None:
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise invalid_field(
            where, f"Names are printable text of at most {MAX_NAME_CHARS} characters."
        )


_VALUE_SPECS = {
    "DOUBLE": "double_value_spec",
    "INTEGER": "integer_value_spec",
    "CATEGORICAL": "categorical_value_spec",
    "DISCRETE": "discrete_value_spec",
}
_PARENT_SPECS = {
    "CATEGORICAL": "parent_categorical_values",
    "DISCRETE": "parent_discrete_values",
    "INTEGER": "parent_int_values",
}


def _has_parent_values(spec: ParameterSpec) -> bool:
    return any(getattr(spec, name) is not None for name in _PARENT_SPECS.values())


def _check_parameter(
    spec: ParameterSpec, where: str, algorithm: str | None, names: set[str], depth: int
) -> None:
    if depth > MAX_NESTING:
        raise invalid_field(where, f"Conditional parameters nest at most {MAX_NESTING} deep.")
    if not spec.parameter:
        raise invalid_field(f"{where}.parameter", "A parameter name is required.")
    _check_name(spec.parameter, f"{where}.parameter")
    if spec.parameter in names:
        raise invalid_field(
            f"{where}.parameter",
            f"Duplicate parameter {shown(spec.parameter)}: names are unique across the study, "
            "children included.",
        )
    names.add(spec.parameter)
    kind = spec.type
    if kind is None or kind == "PARAMETER_TYPE_UNSPECIFIED":
        raise invalid_field(
            f"{where}.type", "Set the type: DOUBLE, INTEGER, CATEGORICAL or DISCRETE."
        )
    if algorithm == "GRID_SEARCH" and kind == "DOUBLE":
        raise invalid_field(
            f"{where}.type",
            "GRID_SEARCH cannot search DOUBLE parameters; use INTEGER, CATEGORICAL or DISCRETE.",
        )
    for other_kind, field in _VALUE_SPECS.items():
        if other_kind != kind and getattr(spec, field) is not None:
            raise invalid_field(
                f"{where}.{field}", f"A {kind} parameter takes {_VALUE_SPECS[kind]}, not {field}."
            )
    if getattr(spec, _VALUE_SPECS[kind]) is None:
        raise invalid_field(f"{where}.{_VALUE_SPECS[kind]}", f"A {kind} parameter needs it.")
    values: list[Any] = []
    low = 1.0  # CATEGORICAL: no scale (checked below)
    if kind == "DOUBLE":
        assert spec.double_value_spec is not None
        low, _ = _range(spec.double_value_spec, f"{where}.double_value_spec")
    elif kind == "INTEGER":
        assert spec.integer_value_spec is not None
        low, _ = _range(spec.integer_value_spec, f"{where}.integer_value_spec")
    elif kind == "CATEGORICAL":
        assert spec.categorical_value_spec is not None
        values = _categories(spec.categorical_value_spec, f"{where}.categorical_value_spec")
        if spec.scale_type not in (None, "SCALE_TYPE_UNSPECIFIED"):
            raise invalid_field(f"{where}.scale_type", "Leave scaleType unset for CATEGORICAL.")
    else:
        assert spec.discrete_value_spec is not None
        values = _discrete(spec.discrete_value_spec, f"{where}.discrete_value_spec")
        low = values[0]
    if spec.scale_type in ("UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE") and low <= 0:
        raise invalid_field(
            f"{where}.scale_type", f"{spec.scale_type} needs every value above zero."
        )
    children = spec.child_parameter_specs or []
    if children and kind == "DOUBLE":
        raise invalid_field(
            f"{where}.child_parameter_specs",
            "A DOUBLE parameter cannot have children: they match discrete parent values.",
        )
    for index, child in enumerate(children):
        child_where = f"{where}.child_parameter_specs[{index}]"
        _check_parent_values(child, child_where, spec, values)
        _check_parameter(child, child_where, algorithm, names, depth + 1)


def _range(spec: DoubleValueSpec | IntegerValueSpec, where: str) -> tuple[float, float]:
    # proto3: an absent bound is zero.
    low = float(spec.min_value or 0)
    high = float(spec.max_value or 0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise invalid_field(f"{where}.min_value", "Bounds must be finite numbers.")
    if low > high:
        raise invalid_field(f"{where}.max_value", "maxValue must not be below minValue.")
    return low, high


def _categories(spec: CategoricalValueSpec, where: str) -> list[Any]:
    values = spec.values or []
    if not values:
        raise invalid_field(f"{where}.values", "A CATEGORICAL parameter needs its values.")
    if len(values) > MAX_VALUES:
        raise invalid_field(f"{where}.values", f"At most {MAX_VALUES} values are allowed.")
    if any(not value for value in values):
        raise invalid_field(f"{where}.values", "Categories must not be empty strings.")
    if len(set(values)) != len(values):
        raise invalid_field(f"{where}.values", "Categories must be distinct.")
    return list(values)


def _discrete(spec: DiscreteValueSpec, where: str) -> list[Any]:
    values = spec.values or []
    if not values:
        raise invalid_field(f"{where}.values", "A DISCRETE parameter needs its values.")
    if len(values) > MAX_VALUES:
        raise invalid_field(f"{where}.values", f"At most {MAX_VALUES} values are allowed.")
    if not all(math.isfinite(value) for value in values):
        raise invalid_field(f"{where}.values", "Values must be finite numbers.")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise invalid_field(f"{where}.values", "Values must be strictly increasing.")
    return list(values)


def _check_parent_values(
    child: ParameterSpec, where: str, parent: ParameterSpec, parent_values: list[Any]
) -> None:
    kind = parent.type
    assert kind is not None
    expected = _PARENT_SPECS[kind]
    for field in _PARENT_SPECS.values():
        if field != expected and getattr(child, field) is not None:
            raise invalid_field(
                f"{where}.{field}",
                f"The parent {shown(str(parent.parameter))} is {kind}: match its values with "
                f"{expected}.",
            )
    matching = getattr(child, expected)
    values = matching.values if matching is not None else None
    if not values:
        raise invalid_field(
            f"{where}.{expected}",
            f"A child parameter names the values of {shown(str(parent.parameter))} it applies to.",
        )
    for index, value in enumerate(values):
        if kind == "INTEGER":
            assert parent.integer_value_spec is not None
            low = parent.integer_value_spec.min_value or 0
            high = parent.integer_value_spec.max_value or 0
            fits = low <= value <= high
        else:
            fits = value in parent_values
        if not fits:
            raise invalid_field(
                f"{where}.{expected}.values[{index}]",
                f"{value!r} is not a value of the parent {shown(str(parent.parameter))}.",
            )


def engine_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored `studyConfig` with proto3's implicit zeros made explicit, for the tuning engine
    (an omitted `minValue` is 0, but the engine reads an absent key as unset)."""

    def fill(spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        for key in ("doubleValueSpec", "integerValueSpec"):
            if key in spec:
                spec[key] = {"minValue": 0, "maxValue": 0, **spec[key]}
        if "childParameterSpecs" in spec:
            spec["childParameterSpecs"] = [fill(child) for child in spec["childParameterSpecs"]]
        return spec

    return {**config, "parameters": [fill(spec) for spec in config.get("parameters") or []]}


# ----- trials --------------------------------------------------------------------------------


def validate_suggest_request(request: SuggestTrialsRequest) -> tuple[str, int]:
    client_id = request.client_id or ""
    if not client_id:
        raise invalid_field("client_id", "A client id is required (it names who runs the trials).")
    _check_name(client_id, "client_id")
    count = request.suggestion_count or 0
    if not 1 <= count <= MAX_SUGGESTIONS:
        raise invalid_field(
            "suggestion_count",
            f"Ask for between 1 and {MAX_SUGGESTIONS} suggestions, not {count}.",
        )
    return client_id, count


def validate_measurement(measurement: Measurement, path: str) -> None:
    metrics = measurement.metrics or []
    if len(metrics) > MAX_METRICS_PER_MEASUREMENT:
        raise invalid_field(
            f"{path}.metrics", f"A measurement has at most {MAX_METRICS_PER_MEASUREMENT} metrics."
        )
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"{path}.metrics[{index}]"
        if not metric.metric:
            raise invalid_field(f"{where}.metric", "A metric name is required.")
        _check_name(metric.metric, f"{where}.metric")
        if metric.metric in seen:
            raise invalid_field(f"{where}.metric", f"Duplicate metric {shown(metric.metric)}.")
        seen.add(metric.metric)
        if metric.value is not None and not math.isfinite(metric.value):
            raise invalid_field(f"{where}.value", "The value must be a finite number.")
    if measurement.step_count is not None and measurement.step_count < 0:
        raise invalid_field(f"{path}.step_count", "The step count must not be negative.")
    if measurement.elapsed_time is not None and not _DURATION.fullmatch(measurement.elapsed_time):
        raise invalid_field(
            f"{path}.elapsed_time",
            f"{shown(measurement.elapsed_time)} is not a duration like '12.5s'.",
        )


def duration_seconds(text: str | None) -> float:
    """A validated proto3 duration (`'12.5s'`) in seconds; absent is zero."""
    return float(text.removesuffix("s")) if text else 0.0


def format_duration(seconds: float) -> str:
    """Seconds as a proto3 duration: `'3s'`, `'2.5s'` (at most nanosecond precision)."""
    text = f"{max(seconds, 0.0):.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def metric_value(measurement: dict[str, Any] | None, metric: str) -> float | None:
    """The value `measurement` (stored JSON) reports for `metric`, or None if it reports none.

    proto3 omits a zero `value`, so a named metric without one reads 0.0.
    """
    for entry in (measurement or {}).get("metrics") or []:
        if entry.get("metric") == metric:
            return float(entry.get("value", 0.0))
    return None
