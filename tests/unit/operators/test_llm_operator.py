"""Operator construction decisions: where a deferrable task starts, its pool, argument checks, the request it builds."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG, Param

from supervisor_lib import AnthropicOperator, OpenAIOperator
from supervisor_lib.routing import pools


def _dag(**params: Param) -> DAG:
    return DAG("d", schedule=None, start_date=pendulum.datetime(2026, 1, 1), params=params)


def test_plain_deferrable_task_starts_in_the_triggerer() -> None:
    with _dag(n=Param(3, type="integer")):
        op = AnthropicOperator(task_id="a", model="m", prompt="hi {{ params.n }}", deferrable=True, pool="default_pool")
    assert op.start_from_trigger is True
    assert op.start_trigger_args.trigger_kwargs["prompt"] == "hi {{ params.n }}"


def test_a_task_in_a_bounded_pool_starts_on_a_worker_so_the_pool_admits_it() -> None:
    # Airflow 3.3 defers a start-from-trigger task without checking its pool: only a worker start is bounded
    with _dag():
        op = AnthropicOperator(task_id="a", model="m", prompt="hi", deferrable=True)
        mine = OpenAIOperator(task_id="b", model="m", prompt="hi", deferrable=True, pool="mine")
    assert (op.pool, op.deferrable, op.start_from_trigger) == ("anthropic", True, False)
    assert (mine.pool, mine.start_from_trigger) == ("mine", False)


@pytest.mark.parametrize(
    "prompt", ["{{ ti.xcom_pull(task_ids='x') }}", "{{ task_instance.xcom_pull('x') }}", "{{ ti.run_id }}"]
)
def test_a_task_reading_xcoms_starts_on_a_worker(prompt: str) -> None:
    with _dag():
        op = OpenAIOperator(task_id="a", model="m", prompt=prompt, deferrable=True)
    assert op.deferrable is True and op.start_from_trigger is False


def test_a_required_dag_param_keeps_the_task_off_the_triggerer() -> None:
    with _dag(version=Param(type="string")):
        op = AnthropicOperator(task_id="a", model="m", prompt="v {{ params.version }}", deferrable=True)
    assert op.start_from_trigger is False


def test_sync_task_never_starts_in_the_triggerer() -> None:
    with _dag():
        op = AnthropicOperator(task_id="a", model="m", prompt="x", deferrable=False)
    assert op.start_from_trigger is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one of prompt or messages"),
        ({"prompt": "a", "messages": []}, "give exactly one of prompt or messages"),
        ({"prompt": "a", "budget_usd": -1}, "budget_usd must be >= 0"),
    ],
)
def test_bad_arguments_say_which_task(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=rf"AnthropicOperator\('t'\): {message}"):
        AnthropicOperator(task_id="t", model="m", **kwargs)  # type: ignore[arg-type]


def test_provider_operators_queue_in_their_providers_pool() -> None:
    assert AnthropicOperator(task_id="a", prompt="x").pool == "anthropic"
    assert OpenAIOperator(task_id="o", prompt="x").pool == "openai"
    assert AnthropicOperator(task_id="p", prompt="x", pool="mine").pool == "mine"  # an explicit pool wins


def test_the_pool_comes_from_the_file_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "catalog.yaml"
    override.write_text("providers:\n  anthropic: {pool: claude_calls}\n")
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(override))
    assert AnthropicOperator(task_id="a", prompt="x").pool == "claude_calls"
    monkeypatch.setattr(pools, "default_pool", lambda *args, **kwargs: None)  # a provider the catalogue lacks
    assert AnthropicOperator(task_id="b", prompt="x").pool == "default_pool"


def test_a_dags_default_args_pool_reaches_the_operator() -> None:
    # Airflow fills only the parameters an operator names from default_args: `pool` must be one of ours
    from supervisor_lib import CodingTaskOperator

    with DAG("d", schedule=None, start_date=pendulum.datetime(2026, 1, 1), default_args={"pool": "default_pool"}):
        llm = AnthropicOperator(task_id="a", prompt="x", deferrable=True)
        coding = CodingTaskOperator(task_id="c", task_kind="bug_fix", repo="r", instructions="fix it")
        mine = OpenAIOperator(task_id="b", prompt="x", pool="mine")
    assert (llm.pool, coding.pool, mine.pool) == ("default_pool", "default_pool", "mine")
    assert llm.start_from_trigger is True  # in default_pool, as the DAG asked: it starts in the triggerer
