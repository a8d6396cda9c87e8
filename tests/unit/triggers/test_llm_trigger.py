"""``LLMCallTrigger`` on its own event loop: it always builds, and a bad one fails its task with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

from supervisor_lib.triggers.llm import LLMCallTrigger


async def _events(trigger: LLMCallTrigger) -> list[dict[str, Any]]:
    return [dict(event.payload) async for event in trigger.run()]


def test_a_trigger_without_arguments_builds_and_fails_its_task_fatally() -> None:
    # A trigger that cannot be built in Airflow 3.3.2's triggerer blocks the next trigger given its id (SQLite).
    trigger = LLMCallTrigger(scope={"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 1, "map_index": -1})
    [event] = asyncio.run(_events(trigger))
    assert event["status"] == "error" and event["error_class"] == "FatalError"
    assert "no provider or connection" in event["message"]


def test_unknown_arguments_from_another_version_are_ignored_not_fatal_to_the_triggerer() -> None:
    trigger = LLMCallTrigger(provider="anthropic", conn_id="c", prompt="x", some_future_option=3)
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("LLMCallTrigger") and "some_future_option" not in kwargs
    assert LLMCallTrigger(**kwargs).serialize() == (classpath, kwargs)
