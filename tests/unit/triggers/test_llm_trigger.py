"""``LLMCallTrigger`` on its own event loop: it always builds, and a bad one fails its task with a reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.triggers.llm import LLMCallTrigger
from tests.support.connections import use_fake_provider


async def _events(trigger: LLMCallTrigger) -> list[dict[str, Any]]:
    return [dict(event.payload) async for event in trigger.run()]


def test_a_trigger_without_arguments_builds_and_fails_its_task_fatally() -> None:
    # A trigger that cannot be built in Airflow 3.3.2's triggerer blocks the next trigger given its id (SQLite).
    trigger = LLMCallTrigger(scope={"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 1, "map_index": -1})
    [event] = asyncio.run(_events(trigger))
    assert event["status"] == "error" and event["error_class"] == "FatalError"
    assert "no call settings" in event["message"] and "clear the task" in event["message"]


def test_unknown_arguments_from_another_version_are_ignored_not_fatal_to_the_triggerer() -> None:
    trigger = LLMCallTrigger(settings={"provider": "anthropic", "conn_id": "c"}, prompt="x", some_future_option=3)
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("LLMCallTrigger") and "some_future_option" not in kwargs
    assert LLMCallTrigger(**kwargs).serialize() == (classpath, kwargs)


SCOPE = {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 1, "map_index": -1}


def _trigger(store_conn: str, **values: Any) -> LLMCallTrigger:
    from supervisor_lib.execution.settings import CallSettings
    from supervisor_lib.providers.policy import AttemptPolicy
    from supervisor_lib.triggers.llm import trigger_kwargs

    call = CallSettings(provider="anthropic", conn_id="anthropic_default", model="claude-haiku-4-5", max_tokens=64,
                        policy=AttemptPolicy(max_attempts=1), analytics_conn_id=store_conn)  # fmt: skip
    kwargs = trigger_kwargs(call.with_values(**values), end_from_trigger=False)
    return LLMCallTrigger(**kwargs, scope=SCOPE)


@pytest.fixture
def store_conn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_TRIGGER_STORE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s")}))
    return "trigger_store"


def test_a_call_resumes_its_task_with_the_result(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, store_conn: str
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rule(Rule(match="Q: trigger", text="from the trigger"))
    trigger = _trigger(store_conn, prompt="Q: trigger")
    [event] = asyncio.run(_events(LLMCallTrigger(**trigger.serialize()[1])))  # as the triggerer rebuilds it
    assert event["status"] == "success" and event["result"]["text"] == "from the trigger"


def test_a_false_condition_skips_the_task_without_a_call(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, store_conn: str
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    events = asyncio.run(_events_raw(_trigger(store_conn, prompt="x", when="False")))
    assert [type(e).__name__ for e in events] == ["TaskSkippedEvent"] and fake_provider.count() == 0


def test_a_call_past_its_deadline_is_a_retryable_error(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, store_conn: str
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rule(Rule(match="Q: slow", text="late", latency=5))
    [event] = asyncio.run(_events(_trigger(store_conn, prompt="Q: slow", deadline_s=0.5)))
    assert event["error_class"] == "RetryableError" and "did not finish within" in event["message"]


async def _events_raw(trigger: LLMCallTrigger) -> list[Any]:
    return [event async for event in trigger.run()]
