"""The value types of spec fields: pydantic ``Annotated`` types that carry their checks and their JSON Schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, BeforeValidator, Strict, StringConstraints, WithJsonSchema

from supervisor_lib.spec import validate

Text = Annotated[str, StringConstraints(min_length=1)]
Template = Annotated[str, AfterValidator(validate.check_template)]
Expression = Annotated[str, AfterValidator(validate.check_expression)]
#: the longest duration a spec may give (ten years): more is a mistake, and ``timedelta`` and Airflow overflow
#: on values past ~10^13 s (and on ``.inf``)
MAX_SECONDS = 10 * 365 * 24 * 3600
Seconds = Annotated[float, Strict(), Gt(0), Le(MAX_SECONDS)]
Usd = Annotated[float, Strict(), Ge(0)]
#: a share of a limit: more than 0, at most 1
Share = Annotated[float, Strict(), Gt(0), Le(1)]
Count = Annotated[int, Strict(), Ge(0), Le(100)]
Flag = Annotated[bool, Strict()]
JsonSchema = Annotated[dict[str, Any], AfterValidator(validate.check_json_schema)]
Param = Annotated[dict[str, Any], AfterValidator(validate.check_param)]
TaskId = Annotated[str, AfterValidator(validate.check_task_id)]
Foreach = Annotated[
    Any,
    AfterValidator(validate.check_foreach),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1}]}),
]


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


_STRINGS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
DependsOn = Annotated[tuple[str, ...], BeforeValidator(_as_tuple), WithJsonSchema(_STRINGS_SCHEMA)]
Paths = Annotated[tuple[Text, ...], BeforeValidator(_as_tuple), WithJsonSchema(_STRINGS_SCHEMA)]
Capabilities = Annotated[tuple[Text, ...], BeforeValidator(_as_tuple), WithJsonSchema(_STRINGS_SCHEMA)]


def _non_empty(value: tuple[Any, ...]) -> tuple[Any, ...]:
    # Not MinLen: pydantic also reports "too short" when items are merely invalid.
    if not value:
        validate.fail("must not be empty")
    return value


NonEmpty = AfterValidator(_non_empty)
DEFAULT_START_DATE = date(2026, 1, 1)


def _start_date(value: Any) -> date | datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            validate.fail(f"expected a date (YYYY-MM-DD) or a date-time, got {validate.describe(value)}")
    if not isinstance(value, date):
        validate.fail(f"expected a date (YYYY-MM-DD) or a date-time, got {validate.describe(value)}")
    return value


StartDate = Annotated[
    datetime | date,
    BeforeValidator(_start_date),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}),
]


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, int | float) and not isinstance(value, bool) else value


#: one share or a list of them (each more than 0, at most 1; at least one)
Shares = Annotated[
    tuple[Share, ...],
    BeforeValidator(_one_or_many),
    NonEmpty,
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                              {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                               "minItems": 1}]}),
]  # fmt: skip
