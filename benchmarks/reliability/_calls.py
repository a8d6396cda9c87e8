"""One model call through each path Supervisor has, for the parts that try to break them: the executor a task try
uses (sync on a worker, async in the triggerer), a coding task's chat, a routed call, and a batch.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor_lib.execution.calls import CallExecutor
    from supervisor_lib.providers.batch_items import ItemResult

#: the call paths :func:`send` knows
PATHS = ("sync", "deferred", "coding", "routed sync", "routed deferred")
MODEL = "claude-haiku-4-5"
#: attempts within a try, with back-offs short enough for thousands of calls
MAX_ATTEMPTS = 3


def executor(
    store_conn: str, dag_id: str, *, task_id: str = "t", deferred: bool = False, **values: Any
) -> CallExecutor:
    """The executor of one task try recording in ``store_conn``; ``values`` override the call settings (a
    ``provider`` brings its default connection)."""
    from supervisor_lib.execution.calls import CallExecutor
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.execution.settings import CallSettings
    from supervisor_lib.providers.policy import AttemptPolicy

    provider = values.get("provider", "anthropic")
    base: dict[str, Any] = {
        "provider": provider, "conn_id": f"{provider}_default", "model": MODEL, "prompt": "Q: reliability",
        "max_tokens": 64, "policy": AttemptPolicy(max_attempts=MAX_ATTEMPTS, base_delay_s=0.01, max_delay_s=0.02),
        "analytics_conn_id": store_conn,
    }  # fmt: skip
    scope = CallScope(dag_id=dag_id, run_id="r", task_id=task_id, deferred=deferred)
    return CallExecutor(CallSettings(**{**base, **values}), scope)


def send(path: str, store_conn: str, dag_id: str, **values: Any) -> Any:
    """One call through ``path`` (one of :data:`PATHS`); a routed call routes within the economy tier and takes the
    ``budget`` as its route's."""
    from supervisor_lib.execution.settings import RouteOptions

    if path.startswith("routed"):
        values["route"] = RouteOptions(tier="economy", budget=values.pop("budget", None))
    if path == "coding":
        from supervisor_lib.coding.chat import Chat

        chat = executor(store_conn, dag_id, task_type="bug_fix", **values)
        message = {"role": "user", "content": chat.settings.prompt}
        return Chat(chat, chat.settings)("iteration-1", [message], system="fix it")
    call = executor(store_conn, dag_id, **values)
    return asyncio.run(call.arun()) if path.endswith("deferred") else call.run()


def outcome(error: BaseException | None, answered: str = "answered") -> str:
    """How a call ended, by the error it raised (``None``: ``answered``)."""
    from supervisor_lib.exceptions import BudgetExceededError, FatalError, RetryableError

    if error is None:
        return answered
    for kind, name in ((BudgetExceededError, "refused by budget"), (FatalError, "fatal"), (RetryableError, "retry")):
        if isinstance(error, kind):
            return name
    return f"escaped {type(error).__name__}"  # anything else escaped error mapping: a finding


def run_batch(prompts: list[str]) -> list[ItemResult]:
    """An Anthropic message batch of ``prompts``, waited for (the fake provider's batches end in moments)."""
    from supervisor_lib.providers.anthropic_batches import AnthropicBatches
    from supervisor_lib.providers.batch_items import parse_item
    from supervisor_lib.providers.batches import build_requests, poll_plan, wait_for_batch

    adapter = AnthropicBatches(AnthropicBatches.hook_class().client, MODEL)
    requests = build_requests(model=MODEL, default_model=None, prompts=prompts)
    submitted = adapter.submit(requests)
    plan = poll_plan(submitted.batch_id, poll_interval_s=0.05, deadline_at=time.time() + 10)
    raws = adapter.results(wait_for_batch(adapter, submitted.batch_id, plan), len(requests))
    hook = AnthropicBatches.hook_class
    return [parse_item(hook, req, raw, i) for i, (req, raw) in enumerate(zip(requests, raws, strict=True))]


def record_batch(store_conn: str, dag_id: str, items: list[ItemResult]) -> None:
    """Record a batch's items the way the batch operator does."""
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.providers.batch_items import item_row
    from supervisor_lib.store.ledger import ledger_for

    scope = CallScope(dag_id=dag_id, run_id="r", task_id="t", task_type="batch")
    ledger = ledger_for(store_conn)
    for item in items:
        ledger.record_attempt(item_row(scope, "anthropic", item, started_at=datetime.now(UTC), duration_s=0.1))
