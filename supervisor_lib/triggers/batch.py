"""``BatchPollTrigger``: wait for a provider batch on the triggerer's event loop, then wake the task.

It only polls — with the async client, every ``poll_interval_s``, until the batch ends or the wall-clock
``deadline_at`` — and fires one small event. The worker reads the results in ``execute_complete`` (they can be
megabytes; they stay out of the trigger event table). Transient poll failures are tolerated a few times in a row
(:func:`~supervisor_lib.providers.batches.poll_plan`, shared with the sync wait).

Killing versus restarting: :meth:`on_kill` (the user marked the deferred task failed or success, or cleared it)
cancels the batch. ``cleanup()`` is deliberately not overridden: it also runs when the triggerer restarts or hands
the trigger to another triggerer, and the batch must keep running then — the trigger is rebuilt from its
serialized arguments and resumes polling the same batch against the same deadline.

The SDKs are imported at module level: importing them inside ``run()`` would block the loop for about a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic  # noqa: F401 - imported here so the first poll does not block the event loop
import openai  # noqa: F401
from airflow.triggers.base import BaseTrigger, TriggerEvent

from supervisor_lib.exceptions import SupervisorError
from supervisor_lib.providers.anthropic_batches import AnthropicBatches
from supervisor_lib.providers.batches import MAX_POLL_ERRORS, BatchAdapter, BatchStatus, advance, poll_plan
from supervisor_lib.providers.openai_batches import OpenAIBatches
from supervisor_lib.triggers.events import error_event

CLASSPATH = "supervisor_lib.triggers.batch.BatchPollTrigger"
ADAPTERS: dict[str, type[BatchAdapter]] = {"anthropic": AnthropicBatches, "openai": OpenAIBatches}


class BatchPollTrigger(BaseTrigger):
    """Poll one batch until it ends; the event is ``{"status": "ended", "batch_id", "submit_try", "state"}`` or
    an error event (:func:`~supervisor_lib.triggers.events.error_event`).

    :param provider: ``anthropic`` or ``openai``.
    :param conn_id: the provider connection (read with Airflow's async connection API).
    :param batch_id: the provider's batch id.
    :param submit_try: the try that submitted the batch, echoed back so the worker records items under it.
    :param model: named in error messages.
    :param poll_interval_s: seconds between polls.
    :param deadline_at: epoch seconds; at this wall-clock time the trigger gives up (retryable: the next try
        re-attaches). Absolute, so a triggerer restart does not extend it.
    :param max_poll_errors: consecutive failed polls tolerated.
    :param analytics_conn_id: the analytics store, where :meth:`on_kill` marks the batch canceled.
    """

    def __init__(
        self,
        *,
        provider: str,
        conn_id: str,
        batch_id: str,
        submit_try: int,
        deadline_at: float,
        model: str = "-",
        poll_interval_s: float = 60.0,
        max_poll_errors: int = MAX_POLL_ERRORS,
        analytics_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        if provider not in ADAPTERS:
            raise ValueError(f"unknown batch provider {provider!r}; known: {', '.join(sorted(ADAPTERS))}")
        self.provider, self.conn_id, self.batch_id, self.submit_try = provider, conn_id, batch_id, submit_try
        self.deadline_at, self.model, self.poll_interval_s = deadline_at, model, poll_interval_s
        self.max_poll_errors, self.analytics_conn_id = max_poll_errors, analytics_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        keys = ("provider", "conn_id", "batch_id", "submit_try", "deadline_at", "model", "poll_interval_s",
                "max_poll_errors", "analytics_conn_id")  # fmt: skip
        return CLASSPATH, {key: getattr(self, key) for key in keys}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            status = await self._wait()
        except SupervisorError as err:
            yield TriggerEvent(error_event(err))
            return
        self.log.info("batch %s ended (%s)", self.batch_id, status.state)
        event = {"status": "ended", "batch_id": self.batch_id, "submit_try": self.submit_try, "state": status.state}
        yield TriggerEvent(event)

    async def _wait(self) -> BatchStatus:
        plan = poll_plan(
            self.batch_id,
            poll_interval_s=self.poll_interval_s,
            deadline_at=self.deadline_at,
            max_errors=self.max_poll_errors,
        )
        client = await self._client()
        try:
            adapter = ADAPTERS[self.provider](client, self.model)
            step: float | BatchStatus = next(plan)
            while not isinstance(step, BatchStatus):
                await asyncio.sleep(step)
                try:
                    outcome: BatchStatus | SupervisorError = await adapter.apoll(self.batch_id)
                except SupervisorError as err:
                    outcome = err
                step = advance(plan, outcome)
            return step
        finally:
            await client.close()

    async def on_kill(self) -> None:
        """The user killed the deferred task: cancel the batch and mark it canceled (a retry then submits anew)."""
        client = await self._client()
        try:
            await ADAPTERS[self.provider](client, self.model).acancel(self.batch_id)
            self.log.info("canceled batch %s", self.batch_id)
        finally:
            await client.close()
        await asyncio.to_thread(self._mark_canceled)

    async def _client(self) -> Any:
        hook_class = ADAPTERS[self.provider].hook_class
        config = await hook_class(conn_id=self.conn_id).aconfig()
        return hook_class.build_client(config, use_async=True)

    def _mark_canceled(self) -> None:
        from supervisor_lib.store.ledger import ledger_for

        try:
            ledger_for(self.analytics_conn_id).store.batch_update(self.provider, self.batch_id, state="canceled")
        except Exception as exc:  # the cancel itself went through; only the bookkeeping is missing
            self.log.warning("could not mark batch %s canceled in the analytics store: %s", self.batch_id, exc)
