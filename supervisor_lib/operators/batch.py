"""``AnthropicBatchOperator`` and ``OpenAIBatchOperator``: many prompts as one provider batch, at the batch price.

One task instance submits at most one batch for a given list of requests. The batch id is stored in the
analytics store (``batches`` table) right after submitting, and every try first looks there: a retry (after a
crash, a deadline, a lost worker) re-attaches to the batch an earlier try submitted instead of paying twice.

Waiting: ``deferrable`` tasks defer to :class:`~supervisor_lib.triggers.batch.BatchPollTrigger`, which only polls
(async client) and fires one small event when the batch ends; the worker then fetches and parses the results in
``execute_complete``. Results can be megabytes, so they never travel through the trigger event table, and the
sync and deferrable paths share one collect step. Without ``deferrable`` the worker polls itself.

Cancelling: killing the task (mark failed/success, clear, SIGTERM) cancels the batch — :meth:`on_kill` on the
worker, the trigger's ``on_kill`` while deferred. A triggerer restart does not: the trigger's ``cleanup`` leaves
the batch alone, and the restarted trigger resumes polling the same batch.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from airflow.sdk import BaseOperator, conf

from supervisor_lib.exceptions import FatalError, ProviderConfigError, RetryableError, SupervisorError
from supervisor_lib.operators.flow import parse_items
from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.anthropic_batches import AnthropicBatches
from supervisor_lib.providers.batch_items import ItemResult, item_row, parse_item, summarize
from supervisor_lib.providers.batches import (
    BatchAdapter,
    BatchStatus,
    batch_worst_case,
    build_requests,
    check_batch_budget,
    fingerprint,
    poll_plan,
    wait_for_batch,
)
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.openai_batches import OpenAIBatches
from supervisor_lib.providers.types import LLMRequest

if TYPE_CHECKING:
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.providers.base import BaseLLMHook
    from supervisor_lib.store.ledger import CallLedger

ANALYTICS_CONN_ID = "supervisor_analytics"
#: batches end within 24 hours at both providers; the extra hour covers queueing and result files
DEFAULT_TIMEOUT_S = 25 * 3600.0
#: batch states after which a retry submits a new batch instead of re-attaching
_DEAD_STATES = frozenset({"canceled", "failed"})


class BatchItemsFailedError(FatalError):
    """Some items of a batch failed and ``fail_on_item_error`` is set. No retry can help: a retry re-attaches to
    the same batch and would read the same results. The full result is pushed to XCom before this is raised."""


class SubmittedBatch(NamedTuple):
    """A batch this task instance owns, and the try that submitted it (its items are recorded under that try)."""

    batch_id: str
    try_number: int


class BaseBatchOperator(BaseOperator):
    """Send many prompts as one provider batch; return per-item results via XCom.

    The result: ``batch_id``, ``provider``, ``model``, ``items`` (per item ``custom_id``, ``index``, ``status``
    ``succeeded``/``errored``/``canceled``/``expired``, ``text``, ``output``, ``usage``, ``cost_usd``, ``error``),
    ``succeeded``, ``failed``, ``cost_usd`` (at the batch price; ``None`` when the model's price is unknown) and
    ``usage`` totals. Never the API key. Each item is recorded in the analytics store (``task_type`` ``batch``).

    :param prompts: the user prompts, one item each (templated; a list, an upstream ``.output``, or a template
        that renders a JSON/Python list). Give either ``prompts`` or ``messages_list``.
    :param messages_list: one chat message list per item (templated).
    :param system: the system prompt of every item (templated).
    :param model: the model (templated); defaults to the connection's ``default_model`` extra.
    :param conn_id: the provider connection.
    :param max_tokens: each answer's token limit.
    :param temperature: sampling temperature; ``None`` leaves the provider's default.
    :param output_schema: a JSON schema: structured output is requested for every item and each answer is
        validated; an invalid answer makes that item ``errored`` (type ``invalid_output``), not the task.
    :param budget_usd: the most this task may spend, all tries together. The whole batch's worst case (every
        answer ``max_tokens`` long, at the batch price) is checked before submitting; nothing is sent if it may
        not fit. Re-attaching costs nothing and is not checked again.
    :param poll_interval_s: seconds between status polls.
    :param timeout_s: wall-clock limit of one try's wait; at the limit the try fails (retryable) and the batch
        keeps running: the next try re-attaches to it.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param fail_on_item_error: fail the task (after recording every item and pushing the result to XCom) when
        any item did not succeed; by default the task succeeds and reports the failures per item.
    :param reattach: look for a batch an earlier try of this task instance submitted with the same requests and
        re-attach to it (default). ``False`` always submits a new batch.
    :param task_kind: recorded as ``task_type`` with every item; default ``batch``.
    :param analytics_conn_id: the analytics store connection (it also remembers submitted batches).
    :param budget: the DAG's spend limits across runs (as for :class:`~supervisor_lib.operators.llm.AnthropicOperator`).
        When it, or a global budget, applies, the whole batch's worst case is reserved against every such limit
        before submitting (nothing is submitted if it may not fit); the reservation is kept with the batch and
        settled with the actual cost when its results are collected, by whichever try collects them.
    :param team: the team this task's spend counts for (default: the budget's ``team``).
    """

    hook_class: ClassVar[type[BaseLLMHook]]
    adapter_class: ClassVar[type[BatchAdapter]]
    template_fields: Sequence[str] = ("prompts", "messages_list", "system", "model")
    template_fields_renderers = {"prompts": "json", "messages_list": "json", "system": "md"}
    ui_color = "#d9cdf2"

    def __init__(
        self,
        *,
        prompts: Any = None,
        messages_list: Any = None,
        system: str | None = None,
        model: str | None = None,
        conn_id: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output_schema: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        poll_interval_s: float = 60.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deferrable: bool | None = None,
        fail_on_item_error: bool = False,
        reattach: bool = True,
        task_kind: str = "batch",
        analytics_conn_id: str = ANALYTICS_CONN_ID,
        budget: Mapping[str, Any] | None = None,
        team: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.budget, self.team = (dict(budget) if budget else None), team
        where = f"{type(self).__name__}({self.task_id!r})"
        if (prompts is None) == (messages_list is None):
            raise ValueError(f"{where}: give exactly one of prompts or messages_list")
        if budget_usd is not None and budget_usd < 0:
            raise ValueError(f"{where}: budget_usd must be >= 0, got {budget_usd}")
        if poll_interval_s <= 0 or timeout_s <= 0:
            raise ValueError(f"{where}: poll_interval_s and timeout_s must be > 0")
        self.prompts, self.messages_list, self.system, self.model = prompts, messages_list, system, model
        self.conn_id = conn_id or self.hook_class.default_conn_name
        self.max_tokens, self.temperature, self.output_schema = max_tokens, temperature, output_schema
        self.budget_usd, self.poll_interval_s, self.timeout_s = budget_usd, poll_interval_s, timeout_s
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable, self.fail_on_item_error, self.reattach = deferrable, fail_on_item_error, reattach
        self.task_kind, self.analytics_conn_id = task_kind, analytics_conn_id
        self._batch: SubmittedBatch | None = None

    @cached_property
    def hook(self) -> BaseLLMHook:
        return self.hook_class(conn_id=self.conn_id)

    @cached_property
    def ledger(self) -> CallLedger:
        from supervisor_lib.store.ledger import ledger_for

        return ledger_for(self.analytics_conn_id)

    def adapter(self, model: str = "-") -> BatchAdapter:
        """The batch API over the hook's sync client."""
        return self.adapter_class(self.hook.client, model)

    def build_requests(self) -> list[LLMRequest]:
        """One request per rendered prompt (or message list)."""
        prompts = None if self.prompts is None else parse_items(self.prompts, self.task_id)
        messages = None if self.messages_list is None else parse_items(self.messages_list, self.task_id)
        return build_requests(
            model=self.model,
            default_model=self.hook.config.default_model,
            prompts=prompts,
            messages_list=messages,
            system=self.system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            output_schema=self.output_schema,
            where=f"task {self.task_id!r}",
        )

    # -- execution -----------------------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        requests = self.build_requests()
        batch = self._batch = self.attach_or_submit(context, requests)
        deadline_at = time.time() + self.timeout_s
        if self.deferrable:
            self._defer(batch, requests[0].model, deadline_at)
        plan = poll_plan(batch.batch_id, poll_interval_s=self.poll_interval_s, deadline_at=deadline_at)
        status = wait_for_batch(self.adapter(requests[0].model), batch.batch_id, plan)
        return self.collect(context, batch, status, requests)

    def _defer(self, batch: SubmittedBatch, model: str, deadline_at: float) -> None:
        from supervisor_lib.triggers.batch import BatchPollTrigger

        trigger = BatchPollTrigger(
            provider=self.hook_class.provider,
            conn_id=self.conn_id,
            model=model,
            batch_id=batch.batch_id,
            submit_try=batch.try_number,
            poll_interval_s=self.poll_interval_s,
            deadline_at=deadline_at,
            analytics_conn_id=self.analytics_conn_id,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: re-raise its error, or read the ended batch's results."""
        from supervisor_lib.triggers.events import raise_from_event

        if not event or event.get("status") != "ended":
            raise_from_event(event or {"error_class": "RetryableError", "message": "the trigger sent no event"})
            raise AssertionError("unreachable")
        batch = self._batch = SubmittedBatch(str(event["batch_id"]), int(event["submit_try"]))
        requests = self.build_requests()
        # A fresh look: the results' location (OpenAI's output files) is on the batch object, not in the event.
        status = self.adapter(requests[0].model).poll(batch.batch_id)
        return self.collect(context, batch, status, requests)

    def on_kill(self) -> None:
        """The task is being killed: cancel its batch, so the provider stops working (and billing) for it."""
        if self._batch is None:
            return
        try:
            self.adapter().cancel(self._batch.batch_id)
        except SupervisorError as err:  # e.g. it ended meanwhile: its results stay available to a retry
            self.log.warning("could not cancel batch %s: %s", self._batch.batch_id, err)
            return
        self.log.info("canceled batch %s; a retry will submit a new one", self._batch.batch_id)
        self._set_state(self._batch.batch_id, "canceled")

    # -- submit or re-attach -------------------------------------------------------------------------------------
    def attach_or_submit(self, context: Any, requests: list[LLMRequest]) -> SubmittedBatch:
        """The batch an earlier try submitted for these requests, else a newly submitted one."""
        scope = self.call_scope(context)
        params = [self.hook_class.request_params(request) for request in requests]
        mark = fingerprint(self.hook_class.provider, params)
        if self.reattach and (earlier := self._earlier_batch(scope, mark)) is not None:
            self.log.info("re-attaching to batch %s, submitted by try %d: nothing is submitted or paid twice", *earlier)
            return earlier
        if self.budget_usd is not None:
            spent = self.ledger.task_spend_usd(scope)
            worst = check_batch_budget(requests, self.budget_usd, spent, scope.describe())
            self.log.info("batch worst case %.4f USD fits budget_usd %.4f (spent %.4f)", worst, self.budget_usd, spent)
        held = self._reserve(scope, requests)
        try:
            status = self.adapter(requests[0].model).submit(requests)
        except BaseException:
            self._settle(held, 0.0)  # nothing was submitted: release the reservation
            raise
        self.log.info("submitted batch %s with %d items (%s)", status.batch_id, len(requests), status.state)
        self._remember(scope, status.batch_id, requests[0].model, len(requests), mark, held)
        return SubmittedBatch(status.batch_id, scope.try_number)

    # -- budgets across runs: a batch holds its worst case from submit until its results are in -----------------
    def _reserve(self, scope: CallScope, requests: list[LLMRequest]) -> dict[str, Any] | None:
        """Hold the batch's worst case against every budget that applies (:mod:`supervisor_lib.execution.holds`)."""
        from supervisor_lib.execution.holds import hold_budget
        from supervisor_lib.execution.routed import RouteOptions

        options = RouteOptions.pinned_to(self.hook_class.provider, requests[0].model, self.conn_id, self.budget,
                                         self.team)  # fmt: skip
        what = f"{scope.describe()} (batch of {len(requests)})"
        return hold_budget(options, scope, batch_worst_case(requests), what, analytics_conn_id=self.analytics_conn_id,
                           ttl_s=self.timeout_s + 3600, logger=self.log)  # fmt: skip

    def _settle(self, held: dict[str, Any] | None, actual_usd: float) -> None:
        """Replace the batch's hold by what it cost (best effort: the results are in either way)."""
        if not held:
            return
        from supervisor_lib.execution.holds import settle_hold

        try:
            settle_hold(self.ledger.store, held, actual_usd)
        except Exception as exc:
            self.log.warning("could not settle the batch's budget reservation (%s); it lapses on its own", exc)

    def _earlier_batch(self, scope: CallScope, mark: str) -> SubmittedBatch | None:
        try:
            row = self.ledger.store.batch_get(scope.dag_id, scope.run_id, scope.task_id, scope.map_index)
        except Exception as exc:  # submitting blind could pay for the same batch twice: let a later try look
            raise RetryableError(
                f"{scope.describe()}: cannot look up a batch an earlier try may have submitted (analytics store "
                f"error: {exc}); not submitting, so nothing is paid twice"
            ) from exc
        if row is None or row["provider"] != self.hook_class.provider or row["fingerprint"] != mark:
            return None
        if row["state"] in _DEAD_STATES:
            self.log.info("batch %s of try %d was %s: submitting a new one", row["batch_id"], row["try_number"],
                          row["state"])  # fmt: skip
            return None
        return SubmittedBatch(str(row["batch_id"]), int(row["try_number"]))

    def _remember(
        self, scope: CallScope, batch_id: str, model: str, count: int, mark: str, held: dict[str, Any] | None
    ) -> None:
        try:
            self.ledger.store.batch_put(
                provider=self.hook_class.provider,
                batch_id=batch_id,
                dag_id=scope.dag_id,
                run_id=scope.run_id,
                task_id=scope.task_id,
                map_index=scope.map_index,
                try_number=scope.try_number,
                model=model,
                item_count=count,
                fingerprint=mark,
                reservation_json=json.dumps(held) if held else None,
            )
        except Exception as exc:  # the batch is submitted and paid for: collect it; only re-attaching is lost
            self.log.warning("could not store batch %s (a retry would not find it): %s", batch_id, exc)

    def _set_state(self, batch_id: str, state: str) -> None:
        try:
            self.ledger.store.batch_update(self.hook_class.provider, batch_id, state=state)
        except Exception as exc:
            self.log.warning("could not mark batch %s %s in the analytics store: %s", batch_id, state, exc)

    # -- results -------------------------------------------------------------------------------------------------
    def collect(
        self, context: Any, batch: SubmittedBatch, status: BatchStatus, requests: list[LLMRequest]
    ) -> dict[str, Any]:
        """Read an ended batch's results, record one analytics row per item, and return the XCom result."""
        if status.problem:
            self._set_state(batch.batch_id, "failed")
            raise ProviderConfigError(f"batch {batch.batch_id} failed as a whole, no item ran: {status.problem}")
        if not status.ended:
            raise RetryableError(f"batch {batch.batch_id} is still {status.state}; the next try re-attaches to it")
        model = requests[0].model
        raws = self.adapter(model).results(status, len(requests))
        items = [
            parse_item(self.hook_class, req, raw, i) for i, (req, raw) in enumerate(zip(requests, raws, strict=True))
        ]
        self._record(context, batch, status, items)
        result = summarize(batch_id=batch.batch_id, provider=self.hook_class.provider, model=model, items=items)
        self._settle(self._held_by(context, batch), float(result["cost_usd"] or 0.0))
        self._set_state(batch.batch_id, "ended")
        self.log.info(
            "batch %s: %d succeeded, %d failed, cost %s USD (batch price)",
            batch.batch_id, result["succeeded"], result["failed"], result["cost_usd"],
        )  # fmt: skip
        if self.fail_on_item_error and result["failed"]:
            context["ti"].xcom_push(key="return_value", value=result)
            raise BatchItemsFailedError(_failure_summary(batch.batch_id, items))
        return result

    def _held_by(self, context: Any, batch: SubmittedBatch) -> dict[str, Any] | None:
        """The reservation ``batch`` still holds: none once it was collected (``ended``) by an earlier try."""
        scope = self.call_scope(context)
        try:
            row = self.ledger.store.batch_get(scope.dag_id, scope.run_id, scope.task_id, scope.map_index)
        except Exception as exc:
            self.log.warning("could not read batch %s's reservation (%s); it lapses on its own", batch.batch_id, exc)
            return None
        if row is None or row["batch_id"] != batch.batch_id or row["state"] == "ended":
            return None
        return json.loads(row["reservation_json"]) if row.get("reservation_json") else None

    def _record(self, context: Any, batch: SubmittedBatch, status: BatchStatus, items: list[ItemResult]) -> None:
        # Recorded under the submitting try: a re-attached retry writes the same call ids, which the store ignores.
        scope = dataclasses.replace(self.call_scope(context), try_number=batch.try_number)
        started = status.created_at or datetime.now(UTC)
        duration = ((status.ended_at or datetime.now(UTC)) - started).total_seconds()
        for item in items:
            row = item_row(scope, self.hook_class.provider, item, started_at=started, duration_s=max(0.0, duration))
            self.ledger.record_attempt(row)

    def call_scope(self, context: Any) -> CallScope:
        """Where this batch runs, for recording and budgets."""
        from supervisor_lib.execution.runner import CallScope

        tags = tuple(sorted(self.dag.tags or ())) if self.has_dag() else ()
        return CallScope.from_ti(context["ti"], task_type=self.task_kind, tags=tags, deferred=self.deferrable)


def _failure_summary(batch_id: str, items: list[ItemResult]) -> str:
    failed = [item for item in items if item.status != "succeeded"]
    shown = ", ".join(f"{i.custom_id} ({i.status}: {(i.error or {}).get('message', '')[:120]})" for i in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return (
        f"batch {batch_id}: {len(failed)} of {len(items)} items did not succeed: {shown}{more}; "
        "the full result is in XCom (return_value)"
    )


class AnthropicBatchOperator(BaseBatchOperator):
    """Many prompts as one Anthropic Message Batch (connection type ``anthropic``, default ``anthropic_default``)."""

    hook_class = AnthropicHook
    adapter_class = AnthropicBatches


class OpenAIBatchOperator(BaseBatchOperator):
    """Many prompts as one OpenAI batch (connection type ``openai``, default ``openai_default``)."""

    hook_class = OpenAIHook
    adapter_class = OpenAIBatches
