"""proto3 JSON conventions shared by every ml v1 message.

camelCase names (snake_case accepted too), int64 as JSON strings (numbers accepted),
RFC 3339 `Z` timestamps, default values omitted, unknown fields refused with Google's wording.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic.alias_generators import to_camel, to_snake

from cairn.domain.errors import ApiError, Code, FieldViolation, shown


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"{shown(value)} is not an integer") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not an integer")
        return int(value)
    return value


def _in_range(bits: int) -> Any:
    """A parser of whole numbers that fit a signed integer of `bits` bits, like proto's."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def parse(value: Any) -> Any:
        number = _whole_number(value)
        # A larger number could never be stored or rendered (JSON encoders stop at 64 bits).
        if isinstance(number, int) and not low <= number <= high:
            raise ValueError(f"{number} is out of range for int{bits}")
        return number

    return parse


# int64 travels as a JSON string; int32 as a number (both accept either on input).
Int64 = Annotated[int, BeforeValidator(_in_range(64)), PlainSerializer(str, when_used="json")]
Int32 = Annotated[int, BeforeValidator(_in_range(32))]


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, with microseconds only when present."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'{value}' is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise ValueError(f"'{value}' has no time zone; use e.g. 2024-01-01T00:00:00Z")
        return parsed
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    PlainSerializer(format_timestamp, when_used="json"),
]


def now() -> datetime:
    return datetime.now(UTC)


def _is_default(value: Any) -> bool:
    # proto3 omits fields holding their default value.
    return value is None or value is False or value == 0 or value in ("", [], {})


class Message(BaseModel):
    """Base of every ml v1 message."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
    )

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name, info in type(self).model_fields.items():
            key = info.serialization_alias or info.alias or name
            if key not in data:
                key = name
            # A set sub-message stays, even when empty (proto3 keeps message presence).
            if (
                key in data
                and _is_default(data[key])
                and not isinstance(getattr(self, name), Message)
            ):
                del data[key]
        return data

    def to_json(self) -> dict[str, Any]:
        """The proto3 JSON form of this message, as the API renders it."""
        result: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return result

    @classmethod
    def parse(cls, data: Any, root: str) -> Any:
        """Validate JSON into this message; errors become INVALID_ARGUMENT naming the field.

        `root` is the request field the payload sits in (`job`, `model`, `version`), used in
        messages exactly as Google words them.
        """
        if not isinstance(data, dict):
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"Invalid JSON payload received. Expected an object for '{root}'.",
                [FieldViolation(root, "Expected a JSON object.")],
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc, root) from None


def field_path(root: str, location: tuple[Any, ...]) -> str:
    """Google's spelling of a field path: snake_case names, `[i]` for list items.

    An empty `root` is a request whose fields are the body's own (HTTP body `*`).
    """
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + to_snake(str(part))
    return path


def validation_error(exc: ValidationError, root: str) -> ApiError:
    violations: list[FieldViolation] = []
    messages: list[str] = []
    for error in exc.errors():
        field = field_path(root, tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            name = str(error["loc"][-1])
            where = field_path(root, tuple(error["loc"][:-1]))
            at = f" at '{where}'" if where else ""
            text = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
            violations.append(FieldViolation(field, f'Unknown name "{name}".'))
        else:
            detail = error["msg"].removeprefix("Value error, ")
            if "input" in error and error["type"].endswith(("literal_error", "enum")):
                detail = f"Invalid value {shown(str(error['input']))}. {detail}"
            text = f"Invalid value at '{field}': {detail}"
            violations.append(FieldViolation(field, detail))
        messages.append(text)
    return ApiError(Code.INVALID_ARGUMENT, "; ".join(messages), violations)
