"""Batch helpers drive the real SDKs against the fake provider: submit, poll, partial failures, cancel, re-attach
bookkeeping in the analytics store, and the poll trigger."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.exceptions import BudgetExceededError, ProviderConfigError, RetryableError
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.anthropic_batches import AnthropicBatches
from supervisor_lib.providers.batch_items import ItemResult, item_row, parse_item, summarize
from supervisor_lib.providers.batches import (
    BatchAdapter,
    BatchStatus,
    build_requests,
    check_batch_budget,
    fingerprint,
    poll_plan,
    wait_for_batch,
)
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.openai_batches import OpenAIBatches
from supervisor_lib.providers.types import LLMRequest
from supervisor_lib.store import CallRecord, Store, call_id
from supervisor_lib.store.ledger import ledger_for
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.triggers.batch import BatchPollTrigger
from tests.support.connections import use_fake_provider

MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}
ADAPTERS = [pytest.param(AnthropicBatches, id="anthropic"), pytest.param(OpenAIBatches, id="openai")]
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}


@pytest.fixture
def server(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.batch_delay = 0.1
    return fake_provider


def adapter_for(adapter_class: type[BatchAdapter]) -> BatchAdapter:
    return adapter_class(adapter_class.hook_class().client, MODELS[adapter_class.provider])


def requests_for(adapter_class: type[BatchAdapter], prompts: list[str], **kw: Any) -> list[LLMRequest]:
    return build_requests(model=MODELS[adapter_class.provider], default_model=None, prompts=prompts, **kw)


def run_to_end(adapter: BatchAdapter, requests: list[LLMRequest]) -> tuple[BatchStatus, list[Any]]:
    submitted = adapter.submit(requests)
    plan = poll_plan(submitted.batch_id, poll_interval_s=0.05, deadline_at=time.time() + 10)
    status = wait_for_batch(adapter, submitted.batch_id, plan)
    hook = type(adapter).hook_class
    raws = adapter.results(status, len(requests))
    return status, [parse_item(hook, req, raw, i) for i, (req, raw) in enumerate(zip(requests, raws, strict=True))]


# -- requests, fingerprint, budget: pure ------------------------------------------------------------------------
def test_build_requests_from_prompts_or_message_lists() -> None:
    by_prompt = build_requests(model="m", default_model=None, prompts=["a", "b"], system="s", max_tokens=9)
    assert [r.messages for r in by_prompt] == [({"role": "user", "content": "a"},), ({"role": "user", "content": "b"},)]
    assert {(r.system, r.max_tokens) for r in by_prompt} == {("s", 9)}
    convo = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "user", "content": "z"}]
    by_messages = build_requests(model=None, default_model="dm", messages_list=[convo])
    assert by_messages[0].messages == tuple(convo) and by_messages[0].model == "dm"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"prompts": []}, "empty"),
        ({"prompts": "one string"}, "must render to a list"),
        ({"prompts": ["ok", " "]}, "item 1"),
    ],
)
def test_build_requests_says_what_is_wrong(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build_requests(model="m", default_model=None, **kwargs)


def test_fingerprint_changes_with_the_requests() -> None:
    params = [{"model": "m", "messages": [{"role": "user", "content": "a"}]}]
    assert fingerprint("anthropic", params) == fingerprint("anthropic", json.loads(json.dumps(params)))
    assert fingerprint("anthropic", params) != fingerprint("openai", params)
    assert fingerprint("anthropic", params) != fingerprint("anthropic", [*params, *params])


def test_budget_is_the_whole_batch_at_the_batch_price() -> None:
    requests = build_requests(model="claude-haiku-4-5", default_model=None, prompts=["x" * 300] * 10, max_tokens=1000)
    worst = check_batch_budget(requests, budget_usd=1.0, spent_usd=0.0, what="t")
    # 10 items x (~100 input tokens x $1 + 1000 output tokens x $5) / 1M, halved
    assert 0.025 < worst < 0.03
    with pytest.raises(BudgetExceededError, match="batch of 10"):
        check_batch_budget(requests, budget_usd=worst * 1.5, spent_usd=worst, what="t")
    unknown = build_requests(model="no-such-model", default_model=None, prompts=["x"])
    with pytest.raises(BudgetExceededError, match="no price is known"):
        check_batch_budget(unknown, budget_usd=1.0, spent_usd=0.0, what="t")


# -- polling decisions: pure ------------------------------------------------------------------------------------
def _status(ended: bool) -> BatchStatus:
    return BatchStatus("b1", "ended" if ended else "in_progress", ended)


def test_poll_plan_tolerates_a_few_transient_errors_in_a_row() -> None:
    plan = poll_plan("b1", poll_interval_s=5, deadline_at=time.time() + 60, max_errors=2)
    assert next(plan) == 0.0
    assert plan.send(RetryableError("blip")) == 5
    assert plan.send(RetryableError("blip")) == 5
    assert plan.send(_status(False)) == 5  # a good poll resets the count
    plan.send(RetryableError("blip"))
    plan.send(RetryableError("blip"))
    with pytest.raises(RetryableError, match="3 polls in a row failed"):
        plan.send(RetryableError("blip"))


def test_poll_plan_ends_fatal_deadline() -> None:
    plan = poll_plan("b1", poll_interval_s=5, deadline_at=time.time() + 60)
    next(plan)
    with pytest.raises(StopIteration) as done:
        plan.send(_status(True))
    assert done.value.value.ended
    fatal = poll_plan("b1", poll_interval_s=5, deadline_at=time.time() + 60)
    next(fatal)
    with pytest.raises(ProviderConfigError):
        fatal.send(ProviderConfigError("gone"))
    late = poll_plan("b1", poll_interval_s=5, deadline_at=time.time() + 0.5)
    next(late)
    assert late.send(_status(False)) <= 0.5  # never sleeps past the deadline
    time.sleep(0.55)
    with pytest.raises(RetryableError, match="re-attaches"):
        late.send(_status(False))


# -- against the fake provider ----------------------------------------------------------------------------------
@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_batch_with_partial_failure(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    server.add_rule(Rule(match="poison", fault="overloaded"))
    server.add_rule(Rule(match="summarise", text="a summary", usage={"input_tokens": 1000, "output_tokens": 2000}))
    adapter = adapter_for(adapter_class)
    requests = requests_for(adapter_class, ["summarise A", "poison B", "hello C"], system="be brief")

    status, items = run_to_end(adapter, requests)

    assert status.ended and status.problem is None and status.created_at and status.ended_at
    assert [(i.custom_id, i.index, i.status) for i in items] == [
        ("item-0", 0, "succeeded"),
        ("item-1", 1, "errored"),
        ("item-2", 2, "succeeded"),
    ]
    assert items[0].text == "a summary" and items[0].error is None
    model = MODELS[adapter_class.provider]
    full_price = load_prices().cost_usd(model, items[0].usage)
    assert items[0].cost_usd == pytest.approx(full_price * 0.5) and items[0].cost_usd > 0
    assert items[1].error is not None and items[1].error["message"] and items[1].cost_usd == 0.0
    assert items[1].error["type"] in ("overloaded_error", "overloaded")
    result = summarize(batch_id=status.batch_id, provider=adapter.provider, model=model, items=items)
    assert (result["succeeded"], result["failed"]) == (2, 1)
    assert result["cost_usd"] == pytest.approx(items[0].cost_usd + items[2].cost_usd)
    assert result["usage"]["output_tokens"] == items[0].usage.output_tokens + items[2].usage.output_tokens


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_a_key_echoed_in_an_item_error_is_scrubbed(
    server: FakeProviderServer, adapter_class: type[BatchAdapter]
) -> None:
    from tests.support.connections import CANARY_KEY

    server.add_rule(Rule(match="poison", fault="auth", message=f"gateway: bad key {CANARY_KEY}"))
    adapter = adapter_for(adapter_class)
    _, items = run_to_end(adapter, requests_for(adapter_class, ["poison A", "hello B"]))
    assert items[0].status == "errored" and "bad key ***" in items[0].error["message"]
    assert CANARY_KEY not in json.dumps([item.to_dict() for item in items])


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_structured_output_is_validated_per_item(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    server.add_rule(Rule(match="good", json={"score": 3}))
    server.add_rule(Rule(match="bad", json={"score": "high"}))
    server.add_rule(Rule(match="prose", text="not json at all"))
    requests = requests_for(adapter_class, ["good", "bad", "prose"], output_schema=SCHEMA)

    _, items = run_to_end(adapter_for(adapter_class), requests)

    assert items[0].status == "succeeded" and items[0].output == {"score": 3}
    assert [(i.status, i.error and i.error["type"]) for i in items[1:]] == [("errored", "invalid_output")] * 2
    assert items[1].cost_usd and items[1].cost_usd > 0  # paid for, even though invalid
    assert "score" in items[1].error["message"] and "not JSON" in items[2].error["message"]  # type: ignore[index]


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_cancel_makes_every_item_canceled(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    server.batch_delay = 30
    adapter = adapter_for(adapter_class)
    requests = requests_for(adapter_class, ["one", "two"])
    submitted = adapter.submit(requests)
    assert not submitted.ended

    adapter.cancel(submitted.batch_id)
    status = adapter.poll(submitted.batch_id)

    assert status.ended
    items = adapter.results(status, len(requests))
    assert [(i.custom_id, i.status) for i in items] == [("item-0", "canceled"), ("item-1", "canceled")]


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_async_poll_and_cancel(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    server.batch_delay = 30
    hook = adapter_class.hook_class()
    submitted = adapter_class(hook.client).submit(requests_for(adapter_class, ["one"]))

    async def poll_then_cancel() -> tuple[BatchStatus, BatchStatus]:
        client = hook.build_client(hook.config, use_async=True)
        try:
            adapter = adapter_class(client)
            before = await adapter.apoll(submitted.batch_id)
            await adapter.acancel(submitted.batch_id)
            return before, await adapter.apoll(submitted.batch_id)
        finally:
            await client.close()

    before, after = asyncio.run(poll_then_cancel())
    assert not before.ended and after.ended


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_unknown_batch_is_fatal(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    with pytest.raises(ProviderConfigError, match="404"):
        adapter_for(adapter_class).poll("batch_does_not_exist")


def test_openai_batch_that_fails_as_a_whole(server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # a line the Batch API rejects (no messages): the whole batch fails and no item runs
    monkeypatch.setattr(OpenAIHook, "request_params", classmethod(lambda cls, request: {"model": request.model}))
    request = LLMRequest(model="gpt-4.1-mini", messages=({"role": "user", "content": "x"},))

    status = adapter_for(OpenAIBatches).submit([request])

    assert status.ended and status.state == "failed" and status.problem and "line 1" in status.problem


# -- analytics rows and the batches table ------------------------------------------------------------------------
def test_item_rows_are_unique_per_item_and_stable_across_tries() -> None:
    scope = CallScope("d", "r", "t", try_number=1, task_type="batch", tags=("a",), deferred=True)
    items = [ItemResult(i, f"item-{i}", "succeeded", "claude-haiku-4-5", text="x") for i in range(2)]
    rows = [item_row(scope, "anthropic", item, started_at=datetime.now(UTC), duration_s=1.0) for item in items]
    ids = {call_id("d", "r", "t", -1, 1, 1, row["step"]) for row in rows}
    assert len(ids) == 2 and {row["task_type"] for row in rows} == {"batch"}
    assert {row["status"] for row in rows} == {"success"}
    CallRecord(call_id="x", **{k: v for k, v in rows[0].items() if k not in ("step", "tags")})  # a valid row


def test_batches_table_remembers_the_newest_batch(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'a.db'}", name="batches-test")
    ti = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": 2}
    assert store.batch_get(**ti) is None
    common = {"provider": "openai", "try_number": 1, "model": "m", "item_count": 3, "fingerprint": "f1"}
    assert store.batch_put(batch_id="b1", **ti, **common)
    assert not store.batch_put(batch_id="b1", **ti, **common)  # idempotent
    time.sleep(0.01)
    store.batch_put(batch_id="b2", **ti, **{**common, "try_number": 2})

    newest = store.batch_get(**ti)
    assert newest is not None and newest["batch_id"] == "b2" and newest["try_number"] == 2
    assert newest["state"] == "submitted" and newest["created_at"].tzinfo is not None
    assert store.batch_update("openai", "b2", state="canceled")
    assert not store.batch_update("openai", "nope", state="canceled")
    assert store.batch_get(**ti)["state"] == "canceled"  # type: ignore[index]
    assert store.batch_get("d", "r", "t", -1) is None


# -- the trigger --------------------------------------------------------------------------------------------------
def _trigger(batch_id: str, provider: str = "anthropic", **kw: Any) -> BatchPollTrigger:
    args: dict[str, Any] = {"provider": provider, "conn_id": f"{provider}_default", "batch_id": batch_id}
    args |= {"submit_try": 1, "deadline_at": time.time() + 10, "poll_interval_s": 0.05}
    return BatchPollTrigger(**{**args, **kw})


async def _first_event(trigger: BatchPollTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("no event")


@pytest.mark.parametrize("adapter_class", ADAPTERS)
def test_trigger_fires_once_the_batch_ends(server: FakeProviderServer, adapter_class: type[BatchAdapter]) -> None:
    submitted = adapter_for(adapter_class).submit(requests_for(adapter_class, ["a", "b"]))
    trigger = _trigger(submitted.batch_id, adapter_class.provider, submit_try=3)
    classpath, kwargs = trigger.serialize()
    assert classpath == "supervisor_lib.triggers.batch.BatchPollTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain values only

    event = asyncio.run(_first_event(BatchPollTrigger(**kwargs)))

    assert event == {"status": "ended", "batch_id": submitted.batch_id, "submit_try": 3, "state": event["state"]}
    assert event["state"] in ("ended", "completed")


def test_trigger_deadline_and_missing_batch_are_error_events(server: FakeProviderServer) -> None:
    server.batch_delay = 30
    submitted = adapter_for(AnthropicBatches).submit(requests_for(AnthropicBatches, ["a"]))

    late = asyncio.run(_first_event(_trigger(submitted.batch_id, deadline_at=time.time() + 0.2)))
    missing = asyncio.run(_first_event(_trigger("msgbatch_missing")))

    assert late["status"] == "error" and late["error_class"] == "RetryableError" and "re-attaches" in late["message"]
    assert missing["status"] == "error" and missing["error_class"] == "ProviderConfigError"


def test_trigger_on_kill_cancels_but_cleanup_does_not(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = f"batch_store_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s.db")})
    )
    server.batch_delay = 30
    adapter = adapter_for(AnthropicBatches)
    submitted = adapter.submit(requests_for(AnthropicBatches, ["a"]))
    store = ledger_for(conn_id).store
    store.batch_put(provider="anthropic", batch_id=submitted.batch_id, dag_id="d", run_id="r", task_id="t",
                    map_index=-1, try_number=1, model="m", item_count=1, fingerprint="f")  # fmt: skip
    trigger = _trigger(submitted.batch_id, analytics_conn_id=conn_id)

    asyncio.run(trigger.cleanup())  # what a triggerer restart runs
    assert adapter.poll(submitted.batch_id).state == "in_progress"
    asyncio.run(trigger.on_kill())  # what a user's kill runs

    assert adapter.poll(submitted.batch_id).state == "ended"
    assert store.batch_get("d", "r", "t")["state"] == "canceled"  # type: ignore[index]
