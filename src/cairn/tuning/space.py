"""Search spaces: the parameters a study tunes, read from either of AI Platform's two shapes.

A training job's `trainingInput.hyperparameters.params` (ParameterSpec) and a Vizier study's
`studyConfig.parameters` (StudyConfig_ParameterSpec, with conditional children) both become
one `SearchSpace`, so every strategy, the job runner's trials and the studies API share one
engine. Inputs are camelCase proto3-JSON dicts that the domain layer has already validated.

An assignment maps parameter names to values: INTEGER → int, DOUBLE and DISCRETE → float,
CATEGORICAL → str. A conditional parameter appears in an assignment only while its parent's
value is one of `parent_values`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["DOUBLE", "INTEGER", "CATEGORICAL", "DISCRETE"]
Scale = Literal["LINEAR", "LOG", "REVERSE_LOG"]
Value = float | int | str
Assignment = dict[str, Value]
Goal = Literal["MAXIMIZE", "MINIMIZE"]

_SCALES: dict[str | None, Scale] = {
    None: "LINEAR",
    "NONE": "LINEAR",
    "SCALE_TYPE_UNSPECIFIED": "LINEAR",
    "UNIT_LINEAR_SCALE": "LINEAR",
    "UNIT_LOG_SCALE": "LOG",
    "UNIT_REVERSE_LOG_SCALE": "REVERSE_LOG",
}


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: Kind
    low: float | None = None  # DOUBLE and INTEGER
    high: float | None = None
    scale: Scale = "LINEAR"
    values: tuple[Value, ...] = ()  # DISCRETE (ascending floats) or CATEGORICAL (strings)
    parent: str | None = None  # conditional: active only while parent's value is one of
    parent_values: tuple[Value, ...] = ()

    def choices(self) -> tuple[Value, ...] | None:
        """Every value the parameter can take, when there are finitely many (not DOUBLE)."""
        if self.kind in ("CATEGORICAL", "DISCRETE"):
            return self.values
        if self.kind == "INTEGER":
            assert self.low is not None and self.high is not None
            return tuple(range(int(self.low), int(self.high) + 1))
        return None

    def is_active(self, assignment: Mapping[str, Value]) -> bool:
        if self.parent is None:
            return True
        return self.parent in assignment and assignment[self.parent] in self.parent_values


@dataclass(frozen=True)
class SearchSpace:
    """The parameters, parents before their children."""

    parameters: tuple[Parameter, ...]

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    @property
    def is_conditional(self) -> bool:
        return any(p.parent is not None for p in self.parameters)

    def active(self, assignment: Mapping[str, Value]) -> list[Parameter]:
        """The parameters that belong in `assignment`, given its parents' values."""
        return [p for p in self.parameters if p.is_active(assignment)]

    def grid_size(self) -> int | None:
        """How many distinct assignments exist (None: a DOUBLE makes it infinite)."""
        if any(p.kind == "DOUBLE" for p in self.parameters):
            return None
        return len(list(self.grid()))

    def grid(self) -> Iterator[Assignment]:
        """Every assignment in a fixed order (the first parameter varies slowest)."""

        def expand(index: int, partial: Assignment) -> Iterator[Assignment]:
            if index == len(self.parameters):
                yield dict(partial)
                return
            parameter = self.parameters[index]
            if not parameter.is_active(partial):
                yield from expand(index + 1, partial)
                return
            choices = parameter.choices()
            if choices is None:
                raise ValueError(f"{parameter.name} is a DOUBLE: a grid cannot cover it.")
            for value in choices:
                partial[parameter.name] = value
                yield from expand(index + 1, partial)
                del partial[parameter.name]

        return expand(0, {})

    def contains(self, assignment: Mapping[str, Value]) -> bool:
        """Whether `assignment` gives exactly the active parameters values within range."""
        active = self.active(assignment)
        if set(assignment) != {p.name for p in active}:
            return False
        return all(_in_range(p, assignment[p.name]) for p in active)

    @classmethod
    def from_hyperparameter_spec(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """From a training job's `hyperparameters` (HyperparameterSpec, camelCase)."""
        return cls(tuple(_job_parameter(p) for p in spec.get("params") or []))

    @classmethod
    def from_study_config(cls, config: Mapping[str, Any]) -> SearchSpace:
        """From a Vizier `studyConfig` (its `parameters`, children flattened after parents)."""
        found: list[Parameter] = []

        def visit(spec: Mapping[str, Any], parent: Parameter | None) -> None:
            parameter = _study_parameter(spec, parent)
            found.append(parameter)
            for child in spec.get("childParameterSpecs") or []:
                visit(child, parameter)

        for spec in config.get("parameters") or []:
            visit(spec, None)
        return cls(tuple(found))


def _job_parameter(spec: Mapping[str, Any]) -> Parameter:
    kind: Kind = spec["type"]
    return Parameter(
        name=str(spec["parameterName"]),
        kind=kind,
        low=_number(spec.get("minValue")),
        high=_number(spec.get("maxValue")),
        scale=_SCALES.get(spec.get("scaleType"), "LINEAR"),
        values=_values(kind, spec.get("categoricalValues"), spec.get("discreteValues")),
    )


def _study_parameter(spec: Mapping[str, Any], parent: Parameter | None) -> Parameter:
    kind: Kind = spec["type"]
    ranges = spec.get("doubleValueSpec") or spec.get("integerValueSpec") or {}
    categorical = (spec.get("categoricalValueSpec") or {}).get("values")
    discrete = (spec.get("discreteValueSpec") or {}).get("values")
    parent_values: tuple[Value, ...] = ()
    if parent is not None:
        matching = (
            spec.get("parentCategoricalValues")
            or spec.get("parentDiscreteValues")
            or spec.get("parentIntValues")
            or {}
        )
        parent_values = tuple(_coerce(parent.kind, value) for value in matching.get("values") or [])
    return Parameter(
        name=str(spec["parameter"]),
        kind=kind,
        low=_number(ranges.get("minValue")),
        high=_number(ranges.get("maxValue")),
        scale=_SCALES.get(spec.get("scaleType"), "LINEAR"),
        values=_values(kind, categorical, discrete),
        parent=parent.name if parent is not None else None,
        parent_values=parent_values,
    )


def _values(
    kind: Kind, categorical: Sequence[Any] | None, discrete: Sequence[Any] | None
) -> tuple[Value, ...]:
    if kind == "CATEGORICAL":
        return tuple(str(v) for v in categorical or [])
    if kind == "DISCRETE":
        return tuple(sorted(float(v) for v in discrete or []))
    return ()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)  # int64 fields arrive as strings


def _coerce(kind: Kind, value: Any) -> Value:
    if kind == "CATEGORICAL":
        return str(value)
    if kind == "INTEGER":
        return int(value)
    return float(value)


def _in_range(parameter: Parameter, value: Value) -> bool:
    if parameter.kind in ("DOUBLE", "INTEGER"):
        assert parameter.low is not None and parameter.high is not None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        whole = parameter.kind == "DOUBLE" or float(value).is_integer()
        return whole and parameter.low <= float(value) <= parameter.high
    return value in parameter.values


def format_value(parameter: Parameter, value: Value) -> str:
    """A value as a trainer flag and in `trainingOutput.trials[].hyperparameters` (strings):
    whole numbers without a decimal point (`--batch_size=64`), others in shortest form."""
    if parameter.kind == "CATEGORICAL":
        return str(value)
    number = float(value)
    if parameter.kind == "INTEGER" or (number.is_integer() and parameter.kind == "DISCRETE"):
        return str(int(number))
    return repr(number)


def trainer_flags(space: SearchSpace, assignment: Mapping[str, Value]) -> list[str]:
    """`--name=value` for each parameter, appended to the trainer's arguments."""
    return [
        f"--{p.name}={format_value(p, assignment[p.name])}"
        for p in space.parameters
        if p.name in assignment
    ]


def is_better(goal: Goal, candidate: float, incumbent: float) -> bool:
    return candidate > incumbent if goal == "MAXIMIZE" else candidate < incumbent


def goal_of(value: str | None) -> Goal:
    """AI Platform's default goal is MAXIMIZE (GOAL_TYPE_UNSPECIFIED included)."""
    return "MINIMIZE" if value == "MINIMIZE" else "MAXIMIZE"


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
