"""``CallExecutor``: the one place that decides how a model call runs (plain, budgeted, routed), on the sync path
and the async path alike, through the real SDKs against the fake provider and a fresh SQLite store per test."""

from __future__ import annotations

import asyncio
import json
import traceback
import uuid
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.exceptions import BudgetExceededError, FatalError, NoRouteError, RetryableError
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


def test_every_attempt_of_a_failover_has_its_own_row(fake: FakeProviderServer, store: tuple[str, Path]) -> None:
    # The next model's attempts used to be numbered from 1 again: its answer had the call id of the first model's
    # first attempt, and the store (idempotent on call ids) dropped it: an answer paid for and never recorded.
    fake.add_rule(Rule(provider="anthropic", fault=OVERLOADED))
    fake.add_rule(Rule(provider="openai", text="openai answers"))
    routed = settings(store, route=RouteOptions(tier="economy"), model="claude-haiku-4-5")
    both_paths(routed, scope())
    rows = Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")
    assert len(rows) == fake.count() == 2 * (FAST.max_attempts + 1)
    for run_id in ("r1", "r1-async"):
        mine = sorted((r["attempt"], r["provider"], r["status"]) for r in rows if r["run_id"] == run_id)
        assert mine == [(1, "anthropic", "error"), (2, "anthropic", "error"), (3, "openai", "success")]


def test_two_triggerers_running_one_deferred_call_at_once_record_both_requests(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    # A triggerer taken for dead while busy: the other one runs the same trigger at the same time. Both number
    # their attempts from 1; their call ids used to be the same, so two provider requests left one row.
    fake.add_rule(Rule(match="Q: hello", text="hi", latency=0.5))
    where = CallScope(dag_id="d", run_id="r1", task_id="t", deferred=True)

    async def twice() -> list[dict[str, Any]]:
        return list(await asyncio.gather(CallExecutor(settings(store), where).arun(),
                                         CallExecutor(settings(store), where).arun()))  # fmt: skip

    assert [r["text"] for r in asyncio.run(twice())] == ["hi", "hi"]
    rows = Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")
    assert fake.count(path="/v1/messages") == len(rows) == 2 and len({r["call_id"] for r in rows}) == 2


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


@pytest.mark.parametrize("fault", ["wrong_shape", "malformed", "truncated"])
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_broken_200_answer_is_the_same_retryable_error_on_both_paths(
    fake: FakeProviderServer, store: tuple[str, Path], fault: str, provider: str
) -> None:
    fake.add_rule(Rule(match="Q: hello", fault=fault))
    model = "claude-haiku-4-5" if provider == "anthropic" else "gpt-4.1-mini"
    call = settings(store, provider=provider, conn_id=f"{provider}_default", model=model)
    errors = []
    for run in (
        lambda: CallExecutor(call, scope("s")).run(),
        lambda: asyncio.run(CallExecutor(call, scope("a")).arun()),
    ):
        with pytest.raises(RetryableError) as raised:
            run()
        errors.append(raised.value)
    assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1])
    rows = Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"error"}  # two attempts per path, none a success


def test_a_key_the_provider_echoes_is_scrubbed_from_errors_and_routing_decisions(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    from urllib.parse import quote

    from tests.support.connections import CANARY_KEY

    echo = "invalid x-api-key {api_key} (also " + quote(CANARY_KEY, safe="") + ")"
    fake.add_rule(Rule(provider="anthropic", fault="server_error", message=echo))
    fake.add_rule(Rule(provider="openai", fault="auth", message=echo))
    routed = settings(store, route=RouteOptions(tier="economy"), model="claude-haiku-4-5")
    with pytest.raises(FatalError) as raised:
        CallExecutor(routed, scope()).run()
    assert "***" in str(raised.value) and CANARY_KEY not in str(raised.value)
    # the SDK's error stays the cause, and Airflow prints the whole chain when the task fails
    printed = "".join(traceback.format_exception(raised.value))
    assert "AuthenticationError" in printed and "***" in printed and CANARY_KEY not in printed
    assert CANARY_KEY not in json.dumps(getattr(raised.value.__cause__, "body", None))
    database = store[1].read_bytes()
    assert CANARY_KEY.encode() not in database and quote(CANARY_KEY, safe="").encode() not in database
    import sqlite3

    with sqlite3.connect(store[1]) as conn:
        rows = conn.execute("SELECT detail_json FROM routing_decisions").fetchall()
    assert rows and all(CANARY_KEY not in row[0] for row in rows) and any("***" in row[0] for row in rows)


@pytest.mark.postgres
def test_a_store_that_freezes_after_connecting_never_holds_up_a_call(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    from supervisor_lib.store import deadline
    from tests.support.databases import PG_HOST, PG_PORT, PG_USER, admin_sql
    from tests.support.freezer import FreezingProxy

    monkeypatch.setattr(deadline, "STORE_DEADLINE_S", 1.0)
    monkeypatch.setattr("supervisor_lib.store.db.STORE_DEADLINE_S", 1.0)
    monkeypatch.setenv("SUPERVISOR_SPOOL_DIR", str(tmp_path / "spool"))
    name = f"supervisor_freeze_{uuid.uuid4().hex[:8]}"
    try:
        admin_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: skip, saying why
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    fake.add_rule(Rule(text="answered"))
    with FreezingProxy((PG_HOST, PG_PORT)) as proxy:
        conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": proxy.port, "login": PG_USER, "schema": name}
        monkeypatch.setenv("AIRFLOW_CONN_FROZEN_STORE", json.dumps(conn))
        call = settings(("frozen_store", tmp_path), budget_usd=None)
        assert CallExecutor(call, scope("before")).run()["text"] == "answered"  # connected, migrated, recorded
        proxy.freeze()
        started = time.monotonic()
        sync = CallExecutor(call, scope("sync")).run()
        deferred = asyncio.run(CallExecutor(call, scope("deferred")).arun())
        elapsed = time.monotonic() - started
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert sync["text"] == deferred["text"] == "answered"
    assert elapsed < 10, f"two calls took {elapsed:.1f}s against a frozen store"
    spooled = [line for path in (tmp_path / "spool").glob("*") for line in path.read_text().splitlines()]
    assert {json.loads(line)["run_id"] for line in spooled} >= {"sync", "deferred"}  # recorded later, not lost


def _transcripts(path: Path) -> dict[str, dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT a.run_id, t.content_json FROM call_transcripts t JOIN call_attempts a"
                            " ON a.call_id = t.call_id").fetchall()  # fmt: skip
    return {run: json.loads(content) for run, content in rows}


def test_an_answer_that_fails_its_schema_is_recorded_as_rejected_and_billed(
    fake: FakeProviderServer, store: tuple[str, Path]
) -> None:
    fake.add_rule(Rule(match="Q: hello", json={"ok": "not a boolean"}))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    call = settings(store, output_schema=schema)
    for run in (
        lambda: CallExecutor(call, scope("s")).run(),
        lambda: asyncio.run(CallExecutor(call, scope("a")).arun()),
    ):
        with pytest.raises(FatalError, match="output_schema"):
            run()
    rows = Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")
    assert len(rows) == 4  # the answer and the corrective retry, on each path
    assert {r["outcome"] for r in rows} == {"rejected"} and all(r["cost_usd"] > 0 for r in rows)
    assert all("output_schema" in r["error_message"] and "boolean" in r["error_message"] for r in rows)


def test_the_transcript_is_kept_masked_and_not_at_all_when_switched_off(
    fake: FakeProviderServer, store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("hunter2-very-secret")
    fake.add_rule(Rule(match="Q: hello", text="hi there"))
    call = settings(store, prompt="Q: hello, the password is hunter2-very-secret", system="Be brief.")
    CallExecutor(call, scope("kept")).run()
    asyncio.run(CallExecutor(call, scope("kept-async")).arun())
    monkeypatch.setenv("SUPERVISOR_RECORD_CONTENT", "off")
    CallExecutor(call, scope("off")).run()
    kept = _transcripts(store[1])
    assert set(kept) == {"kept", "kept-async"}  # the "off" call is recorded, its content is not
    for content in kept.values():
        assert content["request"]["system"] == "Be brief." and content["response"]["text"] == "hi there"
        assert "***" in json.dumps(content["request"]["messages"])
    assert b"hunter2-very-secret" not in store[1].read_bytes()
    assert len(Store.from_url(f"sqlite:///{store[1]}").attempts(dag_id="d")) == 3
