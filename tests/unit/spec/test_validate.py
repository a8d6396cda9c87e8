"""The pure checks: schedules, time zones, templates, JSON schemas, providers, the dependency graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from supervisor_lib.spec import TaskSpec, TaskType, ValidateSpec, WorkflowSpec
from supervisor_lib.spec.graph import Node, cycles, graph_findings, nodes_from_raw, topological_order
from supervisor_lib.spec.translate import keys_at
from supervisor_lib.spec.validate import (
    Finding,
    check_dag_id,
    check_expression,
    check_foreach,
    check_json_schema,
    check_param,
    check_schedule,
    check_task_id,
    check_template,
    check_timezone,
    did_you_mean,
    model_mismatch,
    task_findings,
    template_variables,
)


def _message(check: Callable[[Any], object], value: Any) -> str:
    with pytest.raises(PydanticCustomError) as caught:
        check(value)
    return caught.value.message()


def test_did_you_mean() -> None:
    assert did_you_mean("antropic", ["anthropic", "openai", "auto"]) == " (did you mean 'anthropic'?)"
    assert did_you_mean("zzz", ["anthropic", "openai"]) == ""


@pytest.mark.parametrize(
    "schedule",
    [
        None,
        "@daily",
        "@hourly",
        "@weekly",
        "@monthly",
        "@quarterly",
        "@yearly",
        "@once",
        "@continuous",
        "0 2 * * *",
        "*/15 * * * *",
        "0 9-17/2 * * mon-fri",
        "0 0 1,15 jan,jul *",
        "30 3 * * 0",
        "0 0 L * *",
    ],
)
def test_valid_schedules(schedule: str | None) -> None:
    assert check_schedule(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@daly", "unknown schedule preset '@daly' (did you mean '@daily'?)"),
        ("0 2 * *", "expected 5 fields (minute hour day month weekday), got 4"),
        ("0 0 2 * * *", "got 6"),
        ("60 * * * *", "out of range"),
        ("0 0 * 13 *", "out of range"),
        ("*/0 * * * *", "step '0'"),
        ("0 0 * * funday", "invalid cron expression"),
    ],
)
def test_invalid_schedules(schedule: str, expected: str) -> None:
    assert expected in _message(check_schedule, schedule)


def test_timezones() -> None:
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("UTC") == "UTC"
    assert _message(check_timezone, "Europe/Berln") == "unknown timezone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"
    assert "unknown timezone" in _message(check_timezone, "../etc/passwd")


@pytest.mark.parametrize("value", ["nightly", "a.b-c_1", "x" * 250])
def test_valid_ids(value: str) -> None:
    assert check_dag_id(value) == value and check_task_id(value) == value


@pytest.mark.parametrize("value", ["", "a b", "x" * 251, "ünï", "a/b"])
def test_invalid_ids(value: str) -> None:
    assert "invalid task id" in _message(check_task_id, value)
    assert "invalid dag_id" in _message(check_dag_id, value)


# --- templates ------------------------------------------------------------------------------------------------------


def test_template_variables() -> None:
    assert template_variables("plain text") == frozenset()
    assert template_variables("Document {{ item }} on {{ params.branch }}") == {"item", "params"}
    assert template_variables("{% for item in xs %}{{ item }}{% endfor %}") == {"xs"}
    assert template_variables('{{ "}}" ~ x }}') == {"x"}  # a "}}" inside a string literal


@pytest.mark.parametrize("bad", ["x {{ y", "{{ ( }}", "a {% if x %} b", "{{ x | }}", "text {% endfor %}"])
def test_templates_that_do_not_compile(bad: str) -> None:
    assert "template does not compile" in _message(check_template, bad)


def test_syntax_errors_report_the_template_line() -> None:
    assert "(template line 3)" in _message(check_template, "one\ntwo\n{{ ( }}")


def test_expressions_and_foreach() -> None:
    assert check_expression("{{ params.go }}") == "{{ params.go }}"
    assert "expected a Jinja expression" in _message(check_expression, "always")
    assert check_foreach(["a", "b"]) == ["a", "b"]
    assert check_foreach("{{ params.items }}") == "{{ params.items }}"
    assert "must not be an empty list" in _message(check_foreach, [])
    assert "got a mapping" in _message(check_foreach, {"a": 1})


# --- JSON schemas ---------------------------------------------------------------------------------------------------


def test_json_schemas() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert check_json_schema(schema) is schema
    assert "unknown type 'strng' (did you mean 'string'?)" in _message(check_json_schema, {"type": "strng"})
    assert "invalid JSON schema at minimum" in _message(check_json_schema, {"minimum": "one"})


def test_params_check_their_default() -> None:
    assert check_param({"type": "string", "default": "main"})
    assert check_param({"type": "integer"})  # no default: a required conf key
    message = _message(check_param, {"type": "string", "enum": ["a", "b"], "default": "c"})
    assert message.startswith("default 'c' does not match its own schema")


# --- providers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "clash"),
    [
        ("anthropic", "claude-sonnet-4-6", False),
        ("anthropic", "gpt-5.4-mini", True),
        ("openai", "o3-mini", False),
        ("openai", "claude-opus-4-1", True),
        ("auto", "gpt-5.4", False),
        ("anthropic", None, False),
        ("openai", "my-finetune", False),
    ],
)
def test_model_mismatch(provider: str, model: str | None, clash: bool) -> None:
    assert (model_mismatch(provider, model) is not None) is clash


def test_task_findings_are_relative_to_the_task() -> None:
    # model_construct skips validation, so the findings can be checked alone.
    task = TaskSpec.model_construct(
        id="x", type=TaskType.CODE_ANALYSIS, validation=ValidateSpec(command="x"), prompt="p", instructions="{{ item }}"
    )
    assert [f.loc for f in task_findings(task)] == [("prompt",), ("validate",), ("instructions",)]


def test_a_foreach_task_may_use_item() -> None:
    task = TaskSpec(id="d", type="documentation", foreach=["a"], instructions="Doc {{ item }}")
    assert task_findings(task) == []


# --- graph ----------------------------------------------------------------------------------------------------------


def _nodes(*pairs: tuple[str, tuple[str, ...]]) -> list[Node]:
    return [Node(i, task_id, deps) for i, (task_id, deps) in enumerate(pairs)]


def test_cycles_are_named_in_run_order_from_the_first_declared_task() -> None:
    nodes = _nodes(("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ("d",)), ("e", ()))
    assert cycles(nodes) == [
        Finding(("tasks", 0, "depends_on"), "dependency cycle: a -> b -> c -> a"),
        Finding(("tasks", 3, "depends_on"), "dependency cycle: d -> d"),
    ]
    # The walk order changes which cycle is found first, never how a cycle is named.
    assert {f.message for f in cycles(list(reversed(nodes)))} == {f.message for f in cycles(nodes)}


def test_graph_findings_duplicates_and_unknown_upstreams() -> None:
    nodes = _nodes(("analyze", ()), ("fix", ("analyse", "analyze")), ("analyze", ()))
    assert graph_findings(nodes) == [
        Finding(("tasks", 2, "id"), "duplicate task id 'analyze' (also tasks[0])"),
        Finding(("tasks", 1, "depends_on", 0), "unknown task 'analyse' in depends_on (did you mean 'analyze'?)"),
    ]


def test_topological_order_keeps_file_order_for_ties() -> None:
    nodes = _nodes(("report", ("b", "a")), ("b", ("a",)), ("a", ()), ("z", ()))
    assert topological_order(nodes) == ["a", "b", "report", "z"]


def test_nodes_from_raw_skips_malformed_entries() -> None:
    raw = [{"id": "a", "depends_on": "b"}, "junk", {"id": 3}, {"id": "b", "depends_on": [1, "a"]}]
    assert nodes_from_raw(raw) == [Node(0, "a", ("b",)), Node(3, "b", ("a",))]
    assert nodes_from_raw({"not": "a list"}) == []


def test_keys_at_walks_the_models() -> None:
    assert "depends_on" in keys_at(WorkflowSpec, ("tasks", 0))
    assert keys_at(WorkflowSpec, ("tasks", 0, "validate")) == ["command", "timeout"]
    assert "provider" in keys_at(WorkflowSpec, ("defaults",))
    assert keys_at(WorkflowSpec, ("params", "branch")) == []


def test_the_template_context_is_airflows() -> None:
    # A template variable the spec layer does not know is an error; the list must follow Airflow's task context.
    from airflow.sdk.definitions.context import Context

    from supervisor_lib.spec.validate import TEMPLATE_CONTEXT

    assert set(Context.__annotations__) == set(TEMPLATE_CONTEXT)
