"""An experiment maps a supervised coding task over its arms: one map index per arm, named after it, each arm with
the operator arguments it changes; the operator applies them when Airflow unmaps the task."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor_lib import build_dag
from supervisor_lib.operators.coding import CodingTaskOperator, ReportOperator
from supervisor_lib.spec import SpecError, WorkflowSpec

FIX: dict[str, Any] = {"id": "fix", "type": "bug_fix", "instructions": "Fix {{ params.bug }}.",
                       "validate": {"command": "python -m pytest -q"}}  # fmt: skip
ARMS = [
    {"name": "sonnet"},
    {"name": "haiku", "model": "claude-haiku-4-5", "max_iterations": 5},
    {"name": "gpt", "provider": "openai", "temperature": 0.2},
    {"name": "terse", "system": "Keep the change minimal."},
]


def _spec(**changes: Any) -> WorkflowSpec:
    values: dict[str, Any] = {"dag_id": "exp", "repo": "include/repos/payments", "params": {"bug": {"default": "x"}},
                              "defaults": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
                              "tasks": [{**FIX, "experiment": {"name": "fee-models", "arms": ARMS}}]}  # fmt: skip
    return WorkflowSpec(**{**values, **changes})


def test_the_task_is_mapped_over_its_arms_with_what_each_changes() -> None:
    fix = build_dag(_spec()).get_task("fix")

    assert fix.operator_class is CodingTaskOperator  # type: ignore[attr-defined]
    assert fix.partial_kwargs["experiment"] == "fee-models"  # type: ignore[attr-defined]
    assert fix.partial_kwargs["model"] == "claude-sonnet-4-6"  # type: ignore[attr-defined]
    assert fix.map_index_template == "{{ task.arm.name }}"
    arms = fix.expand_input.value["arm"]  # type: ignore[attr-defined]
    assert [(a["name"], a["index"]) for a in arms] == [("sonnet", 0), ("haiku", 1), ("gpt", 2), ("terse", 3)]
    assert [a["settings"] for a in arms] == [
        {},
        {"model": "claude-haiku-4-5", "max_iterations": 5},
        {"provider": "openai", "model": None, "temperature": 0.2},  # the provider's default model, not sonnet
        {"system": "Keep the change minimal."},
    ]


def test_the_operator_applies_its_arm_when_airflow_unmaps_it() -> None:
    fix = build_dag(_spec()).get_task("fix")
    kwargs = {**fix.partial_kwargs}  # type: ignore[attr-defined]
    arms = fix.expand_input.value["arm"]  # type: ignore[attr-defined]

    gpt = CodingTaskOperator(task_id="fix_gpt", arm=arms[2], **{k: v for k, v in kwargs.items() if k != "task_id"})
    haiku = CodingTaskOperator(task_id="fix_h", arm=arms[1], **{k: v for k, v in kwargs.items() if k != "task_id"})

    assert (gpt.provider, gpt.model, gpt.temperature, gpt.max_iterations) == ("openai", None, 0.2, 3)
    assert (haiku.provider, haiku.model, haiku.max_iterations) == ("anthropic", "claude-haiku-4-5", 5)
    assert gpt.experiment == "fee-models" and gpt.arm == arms[2]


def test_a_workflow_experiment_runs_in_every_coding_task_and_crosses_foreach() -> None:
    spec = _spec(experiment={"name": "wide", "arms": [{"name": "a"}, {"name": "b", "model": "claude-haiku-4-5"}]},
                 tasks=[{**FIX, "foreach": ["x", "y"]},
                        {"id": "review", "type": "pr_review", "depends_on": ["fix"]},
                        {"id": "note", "type": "llm", "prompt": "hi", "depends_on": ["review"]}])  # fmt: skip
    dag = build_dag(spec)
    fix, review, note = dag.get_task("fix"), dag.get_task("review"), dag.get_task("note")

    assert set(fix.expand_input.value) == {"item", "arm"}  # type: ignore[attr-defined]  # every item in every arm
    assert fix.map_index_template == "{{ task.arm.name }}: {{ task.item }}"
    assert review.operator_class is ReportOperator  # type: ignore[attr-defined]
    assert review.partial_kwargs["experiment"] == "wide"  # type: ignore[attr-defined]
    assert not hasattr(note, "expand_input")  # an llm task runs no experiment
    assert spec.experiment_of(spec.task("note")) is None


def test_routed_tasks_keep_routing_in_arms_that_do_not_pick_a_provider() -> None:
    spec = _spec(defaults={}, tasks=[{**FIX, "experiment": {"name": "r", "arms": [
        {"name": "routed"}, {"name": "pinned", "provider": "anthropic", "model": "claude-haiku-4-5"}]}}])  # fmt: skip
    fix = build_dag(spec).get_task("fix")

    assert fix.partial_kwargs["provider"] == "auto"  # type: ignore[attr-defined]
    routed, pinned = fix.expand_input.value["arm"]  # type: ignore[attr-defined]
    assert routed["settings"] == {}
    assert pinned["settings"]["provider"] == "anthropic" and pinned["settings"]["route"] is None


@pytest.mark.parametrize(
    ("task", "experiment", "message"),
    [
        ({**FIX, "experiment": {"name": "e", "arms": [{"name": "a"}]}}, None, "needs two arms or more"),
        ({**FIX, "experiment": {"name": "e", "arms": [{"name": "a"}, {"name": "a"}]}}, None, "named twice"),
        ({**FIX, "experiment": {"name": "e", "arms": [{"name": "a"}, {"name": "b", "provider": "openai",
                                                                     "model": "claude-haiku-4-5"}]}},
         None, "is an Anthropic model but provider is 'openai'"),
        ({"id": "n", "type": "llm", "prompt": "p", "experiment": {"name": "e", "arms": [{"name": "a"}, {"name": "b"}]}},
         None, "'experiment' does not apply to llm tasks"),
        ({"id": "r", "type": "code_analysis", "instructions": "look",
          "experiment": {"name": "e", "arms": [{"name": "a"}, {"name": "b", "max_iterations": 4}]}},
         None, "applies only to tasks that change code"),
        ({"id": "n", "type": "llm", "prompt": "p"}, {"name": "e", "arms": [{"name": "a"}, {"name": "b"}]},
         "no task runs it"),
        ({**FIX, "experiment": {"name": "e", "arms": [{"name": "a b"}, {"name": "b"}]}}, None, "arms[0].name"),
    ],
)  # fmt: skip
def test_bad_experiments_say_where(task: dict[str, Any], experiment: dict[str, Any] | None, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        _spec(tasks=[task], **({"experiment": experiment} if experiment else {}))
    assert message in str(caught.value)
