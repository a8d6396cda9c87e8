"""Checks on spec values: each a small pure function.

Field checks (``check_*``) run as pydantic ``AfterValidator``\\ s, so their errors sit at the field's own location
and are reported together with pydantic's. Cross-field checks return ``Finding``\\ s (a location relative to the
object checked, and a message); the models raise them all at once. Heavy libraries (jinja2, jsonschema, croniter)
are imported on first use so importing the spec package stays cheap.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from pydantic_core import PydanticCustomError

from supervisor_lib.spec.errors import format_path

if TYPE_CHECKING:
    import jinja2

Loc = tuple[str | int, ...]

# Airflow's KEY_REGEX is ``^[\w.-]+$`` (Unicode word characters); we accept its ASCII subset.
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ID_MAX = 250
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class Finding(NamedTuple):
    """A problem found by a cross-field check: where (relative to the object checked) and what."""

    loc: Loc
    message: str


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or an empty string when none is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def fail(message: str) -> NoReturn:
    """Raise a pydantic error whose message is exactly ``message``."""
    raise PydanticCustomError("spec", "{message}", {"message": message})


def findings_error(findings: Sequence[Finding]) -> PydanticCustomError:
    """One pydantic error carrying several findings (``translate`` expands it back into one problem each)."""
    summary = "; ".join(f"[{format_path(f.loc)}] {f.message}" for f in findings)
    return PydanticCustomError("spec_findings", "{summary}", {"findings": tuple(findings), "summary": summary})


def raise_findings(findings: Sequence[Finding]) -> None:
    """Raise every finding at once, or return when there are none."""
    if findings:
        raise findings_error(findings)


# --- identifiers, schedule, timezone -------------------------------------------------------------------------------


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > _ID_MAX or not _ID_RE.match(value):
        fail(f"invalid {what} '{value}': use letters, digits, '_', '.' or '-' (1 to {_ID_MAX} characters)")
    return value


def check_dag_id(value: str) -> str:
    """A dag_id Airflow accepts."""
    return _check_id(value, "dag_id")


def check_task_id(value: str) -> str:
    """A task id Airflow accepts."""
    return _check_id(value, "task id")


def check_schedule(value: str | None) -> str | None:
    """A preset (``@daily``...), a 5-field cron expression, or ``None`` (manual and REST triggers only)."""
    if value is None or value in SCHEDULE_PRESETS:
        return value
    if value.startswith("@"):
        fail(f"unknown schedule preset '{value}'{did_you_mean(value, SCHEDULE_PRESETS)}")
    fields = value.split()
    if len(fields) != 5:
        fail(f"invalid cron expression '{value}': expected 5 fields (minute hour day month weekday), got {len(fields)}")
    from croniter import croniter

    try:
        croniter.expand(value)
    except ValueError as err:  # croniter's errors are ValueErrors that repeat the expression: "[expr] is not ..."
        detail = re.sub(r"^\[[^\]]*\]\s*", "", str(err)).removeprefix("is not acceptable").lstrip(", ")
        fail(f"invalid cron expression '{value}': {detail or 'not acceptable'}")
    return value


def check_timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Berlin``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long to be a file name
        fail(f"unknown timezone '{value}'{did_you_mean(value, sorted(available_timezones()))}")
    return value


# --- templates ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _jinja_env() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment()


_OPENER_RE = re.compile(r"\{[{%#]")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}


def template_variables(text: str) -> frozenset[str]:
    """The variables a Jinja template reads and never sets; raises ``jinja2.TemplateSyntaxError`` if it does not parse.

    Parsing costs ~0.2 ms, so we parse the template's tags without the text between them (text cannot hold a
    syntax error), which lets "Step 1 on {{ params.branch }}" and "Step 2 on {{ params.branch }}" share one parse.
    When the tags cannot be cut out cleanly, or that parse fails, the full text is parsed for the real error.
    """
    if not any(marker in text for marker in _TEMPLATE_MARKERS):
        return frozenset()
    tags = _tags(text)
    if tags is not None:
        from jinja2 import TemplateSyntaxError

        try:
            return _parsed_variables(" ".join(tags))
        except TemplateSyntaxError:
            pass
    return _parsed_variables(text)


def _tags(text: str) -> list[str] | None:
    """The template's tags in order, or ``None`` when one does not close or a marker is left between them.

    One pass over the text: a regex such as ``\\{\\{.*?\\}\\}`` rescans to the end from every unclosed ``{{``, which
    makes a string of braces quadratic (seconds for 100 kB).
    """
    tags, between, position = [], [], 0
    while (opener := _OPENER_RE.search(text, position)) is not None:
        end = text.find(_CLOSERS[opener.group()], opener.end())
        if end < 0:
            return None
        between.append(text[position : opener.start()])
        tags.append(text[opener.start() : end + 2])
        position = end + 2
    between.append(text[position:])
    rest = "".join(between)
    return None if any(marker in rest for marker in _TEMPLATE_MARKERS) else tags


@lru_cache(maxsize=4096)
def _parsed_variables(text: str) -> frozenset[str]:
    from jinja2 import nodes

    names = list(_jinja_env().parse(text).find_all(nodes.Name))
    stored = {name.name for name in names if name.ctx != "load"}
    return frozenset(name.name for name in names if name.ctx == "load" and name.name not in stored)


def check_template(value: str) -> str:
    """A string that compiles as a Jinja template."""
    from jinja2 import TemplateSyntaxError

    try:
        template_variables(value)
    except TemplateSyntaxError as err:
        fail(f"template does not compile: {err.message} (template line {err.lineno})")
    except RecursionError:  # e.g. thousands of nested brackets: Jinja's parser recurses once per level
        fail("template does not compile: it is nested too deeply")
    return value


def check_expression(value: str) -> str:
    """A template that computes a value (``when``, ``foreach``): it must contain ``{{ ... }}``."""
    check_template(value)
    if "{{" not in value:
        fail(f"expected a Jinja expression such as \"{{{{ params.flag }}}}\", got '{value}'")
    return value


def check_foreach(value: Any) -> str | list[Any] | None:
    """A Jinja expression that renders a list, or a non-empty literal list: one mapped task per item."""
    if isinstance(value, str) and "{{" not in value:
        fail(f'foreach must be a list or a Jinja expression such as "{{{{ params.items }}}}", got {describe(value)}')
    if value is None or isinstance(value, str):
        return value if value is None else check_expression(value)
    if isinstance(value, list | tuple):
        if not value:
            fail("foreach must not be an empty list: a mapped task needs at least one item")
        return list(value)
    fail(f"foreach must be a Jinja expression or a list of items, got {describe(value)}")


# --- JSON schemas -------------------------------------------------------------------------------------------------


def _schema_key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=repr)


@lru_cache(maxsize=512)
def _schema_problem(key: str) -> str | None:
    # Keyed by the schema's JSON text: checking against the meta-schema costs ~0.2 ms, and specs repeat schemas.
    from jsonschema import Draft202012Validator, SchemaError

    schema = json.loads(key)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        where = "/".join(map(str, err.path))
        message = err.message
        if err.path and err.path[-1] == "type" and isinstance(err.instance, str):
            types = ("array", "boolean", "integer", "null", "number", "object", "string")
            message = f"unknown type '{err.instance}'{did_you_mean(err.instance, types)}"
        return f"invalid JSON schema{f' at {where}' if where else ''}: {message}"
    return None


def check_json_schema(value: dict[str, Any]) -> dict[str, Any]:
    """A valid JSON Schema (Draft 2020-12)."""
    problem = _schema_problem(_schema_key(value))
    if problem:
        fail(problem)
    return value


def check_param(value: dict[str, Any]) -> dict[str, Any]:
    """A param: a JSON Schema whose ``default``, when given, satisfies the schema itself."""
    check_json_schema(value)
    if "default" in value:
        from jsonschema import Draft202012Validator, FormatChecker

        # with formats checked, as Airflow's Param does: else a scheduled DAG's constructor refuses the default
        checker = Draft202012Validator(value, format_checker=FormatChecker())
        error = next(checker.iter_errors(value["default"]), None)
        if error is not None:
            fail(f"default {describe(value['default'])} does not match its own schema: {error.message}")
    return value


# --- models and providers -----------------------------------------------------------------------------------------

_PROVIDER_NAMES = {"anthropic": "an Anthropic", "openai": "an OpenAI"}


def model_mismatch(provider: str | None, model: str | None) -> str | None:
    """A message when ``model`` plainly belongs to another provider than ``provider``; ``None`` otherwise."""
    from supervisor_lib.model_facts import provider_of

    if not provider or not model or provider not in _PROVIDER_NAMES:
        return None
    owner = provider_of(model)
    if owner is not None and owner != provider:
        return f"model '{model}' is {_PROVIDER_NAMES.get(owner, owner)} model but provider is '{provider}'"
    return None


def describe(value: Any) -> str:
    """A short description of a YAML value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# --- one task's fields together -----------------------------------------------------------------------------------

WRITE_TYPE_NAMES = ("bug_fix", "feature", "refactor", "testing")
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "prompt": ("llm",),
    "output_schema": ("llm",),
    "base_ref": ("pr_review",),
    "head_ref": ("pr_review",),
    "patch_file": ("pr_review",),
    "issue": ("issue_summary",),
    "issue_file": ("issue_summary",),
    "write": ("documentation",),
    "subject": ("human_approval",),
    "body": ("human_approval",),
    "options": ("human_approval",),
    "experiment": ("pr_review", "issue_summary", "code_analysis", "security_audit", "documentation", "bug_fix",
                   "feature", "refactor", "testing"),
}  # fmt: skip
_WRITE_ONLY = ("validate", "max_iterations", "reviewer", "keep_workspace")
_MODEL_ONLY = (
    "provider",
    "model",
    "budget_usd",
    "max_tokens",
    "temperature",
    "system",
    "cache",
    "instructions",
    "paths",
    "tier",
    "capabilities",
)
_EXCLUSIVE = (
    ("patch_file", "base_ref"),
    ("patch_file", "head_ref"),
    ("issue", "issue_file"),
    ("prompt", "instructions"),
)
TEMPLATE_FIELDS = ("instructions", "prompt", "system", "issue", "subject", "body", "when", "foreach")
_ATTRIBUTE = {"validate": "validation"}


def task_findings(task: Any) -> list[Finding]:
    """Problems between the fields of one validated task (a ``TaskSpec``); locations are relative to the task."""
    return [
        *_for_other_types(task),
        *_for_write_tasks(task),
        *_for_arms(task),
        *_for_model_calls(task),
        *_conflicts(task),
        *_missing_prompt(task),
        *_item_without_foreach(task),
        *_unknown_variables(task),
    ]


#: what a template may read: Airflow's task context (``airflow.sdk.definitions.context.Context``; a test keeps the
#: list equal to it), ``item`` in a ``foreach`` task, and Jinja's own names
TEMPLATE_CONTEXT = frozenset(
    {
        "asset_state_store", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds",
        "ds_nodash", "exception", "expanded_ti_count", "inlet_events", "inlets", "logical_date", "macros",
        "map_index_template", "outlet_events", "outlets", "params", "partition_date", "partition_key",
        "prev_data_interval_end_success", "prev_data_interval_start_success", "prev_end_date_success",
        "prev_start_date_success", "reason", "run_id", "task", "task_instance", "task_instance_key_str",
        "task_reschedule_count", "task_state_store", "templates_dict", "test_mode", "ti", "triggering_asset_events",
        "try_number", "ts", "ts_nodash", "ts_nodash_with_tz", "var",
    }
)  # fmt: skip
_JINJA_NAMES = frozenset({"item", "loop", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "caller"})


def _unknown_variables(task: Any) -> list[Finding]:
    known = TEMPLATE_CONTEXT | _JINJA_NAMES
    return [
        Finding((key,), f"unknown template variable '{name}'{did_you_mean(name, known)}: it would render empty")
        for key in TEMPLATE_FIELDS
        if isinstance(value := _value(task, key), str)
        for name in sorted(template_variables(value) - known)
    ]


def _value(task: Any, key: str) -> Any:
    return getattr(task, _ATTRIBUTE.get(key, key))


def _for_other_types(task: Any) -> list[Finding]:
    kind = str(task.type)
    return [
        Finding((key,), f"'{key}' does not apply to {kind} tasks (only to {', '.join(kinds)})")
        for key, kinds in _ONLY_FOR.items()
        if kind not in kinds and _value(task, key) is not None
    ]


def _for_arms(task: Any) -> list[Finding]:
    arms = task.experiment.arms if task.experiment is not None else ()
    return [
        Finding(("experiment", "arms", i, "max_iterations"), f"applies only to tasks that change code; {task.type} "
                "is read-only")
        for i, arm in enumerate(arms)
        if arm.max_iterations is not None and not task.writes
    ]  # fmt: skip


def _for_write_tasks(task: Any) -> list[Finding]:
    if task.writes:
        return []
    kind = str(task.type)
    why = "read-only unless it sets write: true" if kind == "documentation" else "read-only"
    writers = f"{', '.join(WRITE_TYPE_NAMES)}, or documentation with write: true"
    return [
        Finding((key,), f"'{key}' applies only to tasks that change code ({writers}); {kind} is {why}")
        for key in _WRITE_ONLY
        if _value(task, key) is not None
    ]


def _for_model_calls(task: Any) -> list[Finding]:
    if str(task.type) != "human_approval":
        return []
    return [
        Finding((key,), f"'{key}' does not apply to human_approval tasks: they call no model")
        for key in _MODEL_ONLY
        if _value(task, key) is not None
    ]


def _conflicts(task: Any) -> list[Finding]:
    # Only between fields that apply to the task's type: a misplaced field is reported once, by _misplaced.
    kind = str(task.type)
    return [
        Finding((second,), f"give either '{first}' or '{second}', not both")
        for first, second in _EXCLUSIVE
        if all(kind in _ONLY_FOR.get(key, (kind,)) and _value(task, key) is not None for key in (first, second))
    ]


def _missing_prompt(task: Any) -> list[Finding]:
    if str(task.type) == "llm" and task.prompt is None and task.instructions is None:
        return [Finding(("prompt",), "an llm task needs a prompt (or instructions, taken as the prompt)")]
    return []


def _item_without_foreach(task: Any) -> list[Finding]:
    if task.foreach is not None:
        return []
    return [
        Finding((key,), "uses {{ item }} but the task has no foreach")
        for key in TEMPLATE_FIELDS
        if isinstance(value := _value(task, key), str) and "item" in template_variables(value)
    ]
