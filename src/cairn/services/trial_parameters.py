"""A trial's parameters: Vizier's `Trial_Parameter` JSON and the tuning engine's assignments.

A parameter's value is a proto oneof: `floatValue` for DOUBLE and DISCRETE, `intValue`
(int64, a string) for INTEGER, `stringValue` for CATEGORICAL, kept even when it is zero.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.errors import invalid_field
from cairn.domain.studies import TrialParameter
from cairn.tuning.space import Assignment, Parameter, SearchSpace, Value


def assignment_of(trial: dict[str, Any]) -> Assignment:
    """A stored trial's parameters as the tuning engine's assignment."""
    assignment: Assignment = {}
    for parameter in trial.get("parameters") or []:
        name = str(parameter["parameter"])
        if "intValue" in parameter:
            assignment[name] = int(parameter["intValue"])
        elif "floatValue" in parameter:
            assignment[name] = float(parameter["floatValue"])
        else:
            assignment[name] = str(parameter.get("stringValue", ""))
    return assignment


def parameters_json(space: SearchSpace, assignment: Assignment) -> list[dict[str, Any]]:
    """An assignment as Trial_Parameter JSON, in the study's parameter order."""
    rendered: list[dict[str, Any]] = []
    for parameter in space:
        if parameter.name not in assignment:
            continue
        value = assignment[parameter.name]
        if parameter.kind == "INTEGER":
            field = TrialParameter(parameter=parameter.name, int_value=int(value))
        elif parameter.kind == "CATEGORICAL":
            field = TrialParameter(parameter=parameter.name, string_value=str(value))
        else:
            field = TrialParameter(parameter=parameter.name, float_value=float(value))
        rendered.append(field.to_json())
    return rendered


_VALUE_FIELD = {
    "DOUBLE": "float_value",
    "DISCRETE": "float_value",
    "INTEGER": "int_value",
    "CATEGORICAL": "string_value",
}


def client_parameters(given: list[TrialParameter], space: SearchSpace) -> list[dict[str, Any]]:
    """A client's trial parameters checked against the study's space (every active parameter
    once, each within its range, no inactive one), as stored JSON in the space's order."""
    by_name: dict[str, tuple[int, TrialParameter]] = {}
    known = {parameter.name for parameter in space}
    for index, parameter in enumerate(given):
        where = f"trial.parameters[{index}]"
        if not parameter.parameter:
            raise invalid_field(f"{where}.parameter", "A parameter name is required.")
        if parameter.parameter not in known:
            raise invalid_field(
                f"{where}.parameter", f"'{parameter.parameter}' is not a parameter of the study."
            )
        if parameter.parameter in by_name:
            raise invalid_field(
                f"{where}.parameter", f"Duplicate parameter '{parameter.parameter}'."
            )
        set_fields = [
            name
            for name in ("float_value", "int_value", "string_value")
            if getattr(parameter, name) is not None
        ]
        if len(set_fields) != 1:
            raise invalid_field(where, "Set exactly one of floatValue, intValue and stringValue.")
        by_name[parameter.parameter] = (index, parameter)
    assignment: Assignment = {}
    for spec in space:
        found = by_name.get(spec.name)
        if not spec.is_active(assignment):
            if found is not None:
                raise invalid_field(
                    f"trial.parameters[{found[0]}]",
                    f"'{spec.name}' does not apply: its parent '{spec.parent}' has another value.",
                )
            continue
        if found is None:
            raise invalid_field("trial.parameters", f"The parameter '{spec.name}' needs a value.")
        index, parameter = found
        assignment[spec.name] = _value_of(spec, parameter, f"trial.parameters[{index}]")
    return parameters_json(space, assignment)


def _value_of(spec: Parameter, parameter: TrialParameter, where: str) -> Value:
    field = _VALUE_FIELD[spec.kind]
    value = getattr(parameter, field)
    if value is None:
        camel = {
            "float_value": "floatValue",
            "int_value": "intValue",
            "string_value": "stringValue",
        }
        raise invalid_field(where, f"A {spec.kind} parameter's value goes in {camel[field]}.")
    if spec.kind in ("DOUBLE", "INTEGER"):
        assert spec.low is not None and spec.high is not None
        fits = spec.low <= value <= spec.high
        allowed = f"from {spec.low:g} to {spec.high:g}"
    else:
        fits = value in spec.values
        allowed = "one of " + ", ".join(repr(v) for v in spec.values[:20])
    if not fits:
        raise invalid_field(
            f"{where}.{field}", f"{value!r} is not a value of '{spec.name}' ({allowed})."
        )
    result: Value = value
    return result
