"""Batch mode, provider-neutral: per-item requests, the batch budget, polling decisions and the adapter contract.

A batch (Anthropic Message Batches, OpenAI Batch API) answers many requests at about half the price, within
hours. A :class:`BatchAdapter` (one per provider: :mod:`~supervisor_lib.providers.anthropic_batches`,
:mod:`~supervisor_lib.providers.openai_batches`) submits, polls, cancels and reads results with the hook's
client: the sync client on workers, the async one in the trigger. Poll and cancel are written once for both
kinds of client (the SDK call returns a value or an awaitable); submitting and reading results happen only on
workers. Per-item results are parsed by :mod:`~supervisor_lib.providers.batch_items`.

Items are named ``item-<index>`` (the ``custom_id``), so results map back to the prompt list whatever their
order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from supervisor_lib.exceptions import BudgetExceededError, FatalError, RetryableError, SupervisorError
from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.base import BaseLLMHook
from supervisor_lib.providers.errors import map_sdk_error
from supervisor_lib.providers.policy import budget_problem, estimate_input_tokens, worst_case_cost
from supervisor_lib.providers.types import LLMRequest

log = logging.getLogger(__name__)

ItemStatus = Literal["succeeded", "errored", "canceled", "expired"]
#: consecutive failed polls tolerated before the wait gives up (the task's retry then re-attaches)
MAX_POLL_ERRORS = 5


def custom_id(index: int) -> str:
    """The id of item ``index`` inside its batch (both providers accept ``[a-zA-Z0-9_-]{1,64}``)."""
    return f"item-{index}"


def build_requests(
    *,
    model: str | None,
    default_model: str | None,
    prompts: list[str] | None = None,
    messages_list: list[list[dict[str, Any]]] | None = None,
    system: str | None = None,
    max_tokens: int = 1024,
    temperature: float | None = None,
    output_schema: dict[str, Any] | None = None,
    where: str = "task",
) -> list[LLMRequest]:
    """One :class:`LLMRequest` per prompt (or per message list); ``ValueError`` says what is wrong."""
    items: list[Any] = prompts if prompts is not None else (messages_list or [])
    if isinstance(items, str | dict) or not isinstance(items, list | tuple):
        raise ValueError(
            f"{where}: prompts/messages_list must render to a list, got {type(items).__name__}; pass a list, an "
            "upstream task's output, or set render_template_as_native_obj=True on the DAG"
        )
    if not items:
        raise ValueError(f"{where}: the batch is empty: give at least one prompt")
    common: dict[str, Any] = {"model": model, "default_model": default_model, "system": system}
    common |= {"max_tokens": max_tokens, "temperature": temperature, "output_schema": output_schema}
    key = "prompt" if prompts is not None else "messages"
    return [LLMRequest.build(**common, **{key: item}, where=f"{where} item {i}") for i, item in enumerate(items)]


def fingerprint(provider: str, params: Iterable[dict[str, Any]]) -> str:
    """Identifies a batch's requests: a retry re-attaches only to a batch of the very same requests."""
    payload = json.dumps([provider, list(params)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def batch_worst_case(requests: list[LLMRequest]) -> float | None:
    """The most a batch can cost: every item at the batch price, its input uncached (estimated from the text),
    an answer of ``max_tokens``; ``None`` when a model's price is unknown."""
    prices = load_prices()
    worst = 0.0
    for request in requests:
        price = prices.models.get(request.model)
        if price is None:
            return None
        worst += worst_case_cost(price, estimate_input_tokens(request), request.max_tokens) * prices.batch_discount
    return worst


def check_batch_budget(requests: list[LLMRequest], budget_usd: float, spent_usd: float, what: str) -> float:
    """Raise :class:`BudgetExceededError` unless the worst case of the whole batch fits; return that worst case.

    The worst case prices every item at the batch price with every input token uncached (estimated from the
    text, about 3 characters a token) and an answer of ``max_tokens``.
    """
    worst = batch_worst_case(requests)
    if worst is None:
        raise BudgetExceededError(
            f"{what}: budget_usd is set but no price is known for model {requests[0].model!r}, so the budget "
            "cannot be enforced; add the model to supervisor_lib/data/models.yaml"
        )
    problem = budget_problem(budget_usd, spent_usd, worst, f"{what} (batch of {len(requests)})")
    if problem:
        raise BudgetExceededError(problem)
    return worst


@dataclass(frozen=True)
class BatchStatus:
    """A batch as last seen at the provider.

    :param state: the provider's own word (``in_progress``, ``ended``, ``completed``, ``cancelled``, ...).
    :param ended: no item will change any more; results can be read.
    :param problem: why the batch failed as a whole (no item was processed), or ``None``.
    :param raw: the SDK object, for the adapter that reads the results.
    """

    batch_id: str
    state: str
    ended: bool
    created_at: datetime | None = None
    ended_at: datetime | None = None
    problem: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class RawItem:
    """One item as the provider reported it, before parsing: the SDK response object or the error."""

    custom_id: str
    status: ItemStatus
    message: Any = None
    error_type: str | None = None
    error_message: str | None = None
    request_id: str | None = None


class BatchAdapter:
    """One provider's batch API over one SDK client (sync or async); subclasses supply the SDK calls.

    :param client: the hook's client: sync on workers (submit, poll, results, cancel), async in the trigger
        (:meth:`apoll`, :meth:`acancel`).
    :param model: named in error messages.
    """

    provider: ClassVar[str]
    hook_class: ClassVar[type[BaseLLMHook]]

    def __init__(self, client: Any, model: str = "-") -> None:
        self.client = client
        self.model = model

    # -- provider specifics ---------------------------------------------------------------------------------
    def _create(self, requests: list[LLMRequest]) -> Any:
        raise NotImplementedError

    def _retrieve(self, batch_id: str) -> Any:
        """The SDK's retrieve call: the batch object (sync client) or an awaitable of it (async client)."""
        raise NotImplementedError

    def _cancel(self, batch_id: str) -> Any:
        raise NotImplementedError

    def status_of(self, raw: Any) -> BatchStatus:
        raise NotImplementedError

    def _items(self, status: BatchStatus) -> Iterable[RawItem]:
        raise NotImplementedError

    def _missing(self, status: BatchStatus, item_id: str) -> RawItem:
        """What an item absent from the results is (e.g. canceled, when the batch was canceled)."""
        return RawItem(
            item_id, "errored", error_type="missing", error_message=f"not in batch {status.batch_id}'s results"
        )

    # -- the operations -------------------------------------------------------------------------------------
    def submit(self, requests: list[LLMRequest]) -> BatchStatus:
        """Create the batch (sync client)."""
        with self._sdk_errors():
            return self.status_of(self._create(requests))

    def poll(self, batch_id: str) -> BatchStatus:
        with self._sdk_errors():
            return self.status_of(self._retrieve(batch_id))

    async def apoll(self, batch_id: str) -> BatchStatus:
        with self._sdk_errors():
            return self.status_of(await self._retrieve(batch_id))

    def cancel(self, batch_id: str) -> None:
        """Ask the provider to stop the batch (items already answered are still billed)."""
        with self._sdk_errors():
            self._cancel(batch_id)

    async def acancel(self, batch_id: str) -> None:
        with self._sdk_errors():
            await self._cancel(batch_id)

    def results(self, status: BatchStatus, count: int) -> list[RawItem]:
        """The ``count`` items of an ended batch, in submission order (sync client)."""
        with self._sdk_errors():
            found = {item.custom_id: item for item in self._items(status)}
        return [found.get(item_id) or self._missing(status, item_id) for item_id in map(custom_id, range(count))]

    @contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        """SDK errors become retryable or fatal Supervisor errors, the SDK error kept as ``__cause__``."""
        try:
            yield
        except SupervisorError:
            raise
        except Exception as exc:
            raise map_sdk_error(exc, self.provider, self.model) from exc


PollPlan = Generator[float, "BatchStatus | SupervisorError", BatchStatus]


def poll_plan(
    batch_id: str, *, poll_interval_s: float, deadline_at: float, max_errors: int = MAX_POLL_ERRORS
) -> PollPlan:
    """The polling decisions, shared by the sync wait and the trigger.

    Yields the seconds to wait before the next poll (0 first) and receives the poll's outcome: a
    :class:`BatchStatus` or the poll's error. Returns the ended status. Raises a fatal error at once, and a
    :class:`RetryableError` after ``max_errors`` failed polls in a row or at ``deadline_at`` (epoch seconds,
    a wall-clock deadline that survives triggerer restarts); the task's retry then re-attaches to the batch.
    """
    errors, delay = 0, 0.0
    while True:
        outcome = yield delay
        if isinstance(outcome, FatalError):
            raise outcome
        if isinstance(outcome, SupervisorError):
            errors += 1
            if errors > max_errors:
                raise RetryableError(f"batch {batch_id}: {errors} polls in a row failed; last: {outcome}") from outcome
            log.warning("batch %s: poll failed (%s); polling again", batch_id, outcome)
        elif outcome.ended:
            return outcome
        else:
            errors = 0
        remaining = deadline_at - time.time()
        if remaining <= 0:
            raise RetryableError(
                f"batch {batch_id} has not ended by the task's deadline (timeout_s); it keeps running at the "
                "provider and the task's next try re-attaches to it"
            )
        delay = min(poll_interval_s, remaining)


def advance(plan: PollPlan, outcome: BatchStatus | SupervisorError) -> float | BatchStatus:
    """Hand a poll's outcome to the plan: the seconds until the next poll, or the ended status."""
    try:
        return plan.send(outcome)
    except StopIteration as done:
        return done.value


def wait_for_batch(
    adapter: BatchAdapter, batch_id: str, plan: PollPlan, sleep: Callable[[float], None] = time.sleep
) -> BatchStatus:
    """Run a :func:`poll_plan` with the sync client (the worker path; the trigger runs it with the async one)."""
    step: float | BatchStatus = next(plan)
    while not isinstance(step, BatchStatus):
        sleep(step)
        try:
            outcome: BatchStatus | SupervisorError = adapter.poll(batch_id)
        except SupervisorError as err:
            outcome = err
        step = advance(plan, outcome)
    return step
