"""``CallExecutor``: the one place that decides how a model call runs (plain, budgeted, routed), on the sync path
and the async path alike, through the real SDKs against the fake provider and a fresh SQLite store per test."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.exceptions import BudgetExceededError, FatalError, NoRouteError
from supervisor_lib.execution.calls import CallExecutor
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.execution.settings import CallSettings, RouteOptions
from supervisor_lib.providers.policy import AttemptPolicy
from supervisor_lib.store import Store
from supervisor_lib.testing import OVERLOADED, FakeProviderServer, Rule
from supervisor_lib.triggers.events import error_event, raise_from_event
from tests.support.connections import use_fake_provider

FAST = AttemptPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, Path]:
    conn_id = f"calls_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "store.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.delenv("SUPERVISOR_BUDGETS", raising=False)
    return conn_id, path


@pytest.fixture
def fake(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    return fake_provider


def settings(store: tuple[str, Path], **values: Any) -> CallSettings:
    base: dict[str, Any] = {
        "provider": "anthropic",
        "conn_id": "anthropic_default",
        "model": "claude-haiku-4-5",
        "prompt": "Q: hello",
        "max_tokens": 64,
        "policy": FAST,
        "analytics_conn_id": store[0],
    }
    return CallSettings(**{**base, **values})


def scope(run: str = "r1") -> CallScope:
    return CallScope(dag_id="d", run_id=run, task_id="t")


def both_paths(call: CallSettings, where: CallScope) -> list[dict[str, Any]]:
    """The same call through :meth:`CallExecutor.run` and :meth:`CallExecutor.arun` (different runs: no cache)."""
    sync = CallExecutor(call, where).run()
    async_ = asyncio.run(CallExecutor(call, CallScope(**{**where.__dict__, "run_id": where.run_id + "-async"})).arun())
    return [sync, async_]


def test_a_plain_call_answers_the_same_on_both_paths_and_records_each_attempt(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    fake.add_rule(Rule(match="Q: hello", text="hi"))
    results = both_paths(settings(store), scope())
    assert [r["text"] for r in results] == ["hi", "hi"] and all("routed" not in r for r in results)
    rows = Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")
    assert sorted(r["run_id"] for r in rows) == ["r1", "r1-async"] and {r["status"] for r in rows} == {"success"}


def test_a_repeated_call_in_one_run_comes_from_the_response_cache(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    fake.add_rule(Rule(match="Q: hello", text="hi"))
    first = CallExecutor(settings(store), scope()).run()
    again = asyncio.run(CallExecutor(settings(store), scope()).arun())
    assert again["text"] == first["text"] and again["cached"] and fake.count(path="/v1/messages") == 1


def test_a_budget_that_cannot_hold_the_call_stops_it_before_it_is_sent(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    tight = settings(store, budget={"per_run_usd": 0.000001}, max_tokens=4000)
    for run in (lambda: CallExecutor(tight, scope()).run(), lambda: asyncio.run(CallExecutor(tight, scope()).arun())):
        with pytest.raises(BudgetExceededError, match=r"does not fit the per-run budget of DAG .d."):
            run()
    assert fake.count(path="/v1/messages") == 0
    assert (
        CallExecutor(tight, scope()).kind() == "budgeted" and CallExecutor(settings(store), scope()).kind() == "plain"
    )


def test_a_routed_call_fails_over_on_both_paths(fake: FakeProviderServer, store: tuple[str, Path]) -> None:
    fake.add_rule(Rule(provider="anthropic", fault=OVERLOADED))
    fake.add_rule(Rule(provider="openai", text="openai answers"))
    routed = settings(store, route=RouteOptions(tier="economy"), model="claude-haiku-4-5")
    results = both_paths(routed, scope())
    assert [r["provider"] for r in results] == ["openai", "openai"]
    assert all(r["routed"]["failovers"][0]["model"] == "claude-haiku-4-5" for r in results)


def test_a_prompt_that_renders_empty_is_fatal_on_both_paths(fake: FakeProviderServer, store: tuple[str, Path]) -> None:
    empty = settings(store, prompt="  ")
    with pytest.raises(FatalError, match="prompt rendered empty"):
        CallExecutor(empty, scope()).run()
    with pytest.raises(FatalError, match="prompt rendered empty"):
        asyncio.run(CallExecutor(empty, scope()).arun())


@pytest.mark.parametrize("error", [NoRouteError("no model fits"), BudgetExceededError("over"), FatalError("bad")])
def test_errors_keep_their_class_across_the_trigger_boundary(error: Exception) -> None:
    event = error_event(error)  # type: ignore[arg-type]
    with pytest.raises(type(error)) as raised:
        raise_from_event(json.loads(json.dumps(event)))
    assert type(raised.value) is type(error) and str(raised.value) == str(error)


def test_settings_travel_as_json_and_tolerate_unknown_keys() -> None:
    call = CallSettings(provider="openai", model="gpt-5-mini", prompt="p", tags=("a",), budget={"per_run_usd": 1},
                        route=RouteOptions(capabilities=("vision",), tier="economy"), policy=FAST)  # fmt: skip
    data = json.loads(json.dumps(call.to_dict()))
    again, unknown = CallSettings.from_dict({**data, "from_the_future": 1})
    assert again == call and unknown == ["from_the_future"]
