"""Turn pydantic's validation errors into spec findings a person can act on.

``Input should be 'anthropic', 'openai' or 'auto'`` becomes ``unknown provider 'antropic' (did you mean
'anthropic'?)``; ``Extra inputs are not permitted`` becomes ``unknown key 'modle' (did you mean 'model'?)``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from supervisor_lib.spec.errors import SpecError, SpecProblem, format_path
from supervisor_lib.spec.validate import Finding, Loc, describe, did_you_mean, findings_error

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "enum": "one of",
}
_LABELS = {"type": "task type", "trigger_rule": "trigger rule", "keep_workspace": "keep_workspace value"}
_BOUNDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


#: the most problems listed for one spec: past that a file is no spec, and naming each costs time (a did-you-mean
#: per unknown key: a second for 10,000) and a screen per problem
MAX_FINDINGS = 1_000


def findings_from_error(err: ValidationError, root: type[BaseModel]) -> list[Finding]:
    """Every problem in ``err`` (at most about :data:`MAX_FINDINGS`, then how many more), located relative to
    ``root`` (the model that was validated)."""
    findings: list[Finding] = []
    errors = err.errors()
    more = 0
    for index, error in enumerate(errors):
        if len(findings) >= MAX_FINDINGS:  # the rest is not translated: that is where the time goes
            more = sum(len(e["ctx"]["findings"]) if e["type"] == "spec_findings" else 1 for e in errors[index:])
            break
        findings.extend(_translate(error, root))
    more += max(0, len(findings) - MAX_FINDINGS)
    if more:
        message = f"{more:,} more problems not listed (only the first {MAX_FINDINGS:,} are): fix those first"
        findings = [*findings[:MAX_FINDINGS], Finding((), message)]
    return findings


def spec_error_from(err: ValidationError, model: type[BaseModel], *, dag_id: Any = None) -> SpecError:
    """A ``SpecError`` for a model built in Python (no file, so no lines)."""
    dag = dag_id if isinstance(dag_id, str) else None
    return SpecError(
        SpecProblem(None, None, format_path(f.loc), f.message, dag) for f in findings_from_error(err, model)
    )


def _translate(error: ErrorDetails, root: type[BaseModel]) -> list[Finding]:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "spec_findings":
        return [Finding(loc + finding.loc, finding.message) for finding in ctx["findings"]]
    if kind == "spec":
        return [Finding(loc, ctx["message"])]
    return [Finding(loc, _message(kind, loc, error, root))]


def _message(kind: str, loc: Loc, error: ErrorDetails, root: type[BaseModel]) -> str:
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc, root)
    if kind == "missing":
        return f"missing required key '{loc[-1]}'" if loc else "missing required key"
    if kind == "enum":
        return _unknown_choice(loc, value, ctx.get("expected", ""))
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {describe(ctx.get(_BOUND_KEYS[kind]))}, got {describe(value)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    msg = error["msg"]
    return f"{msg[:1].lower()}{msg[1:]}"


def _unknown_key(loc: Loc, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    allowed = keys_at(root, loc[:-1])
    hint = did_you_mean(key, allowed)
    if not hint and len(loc) == 1 and key in keys_at(root, ("defaults",)):
        hint = f" (per-task settings go under defaults: did you mean 'defaults.{key}'?)"
    return f"unknown key '{key}'{hint}"


def _unknown_choice(loc: Loc, value: Any, expected: str) -> str:
    choices = re.findall(r"'([^']*)'", expected)
    field = str(loc[-1]) if loc and isinstance(loc[-1], str) else "value"
    label = _LABELS.get(field, field)
    if isinstance(value, str):
        hint = did_you_mean(value, choices) or f" (expected one of: {', '.join(choices)})"
        return f"unknown {label} '{value}'{hint}"
    return f"expected a {label} ({', '.join(choices)}), got {describe(value)}"


def keys_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` under ``root``; empty when ``loc`` is not a model."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = _field(model, part)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def reraise_with(err: ValidationError, findings: list[Finding]) -> None:
    """Raise ``err`` plus ``findings`` as one ``ValidationError``; return when there is nothing to add."""
    if not findings:
        return
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(e["type"], "{message}", {**(e.get("ctx") or {}), "message": e["msg"]}),
            "loc": e["loc"],
            "input": e["input"],
        }
        for e in err.errors()
    ]
    details.append({"type": findings_error(findings), "loc": (), "input": None})
    raise ValidationError.from_exception_data(err.title, details) from None
