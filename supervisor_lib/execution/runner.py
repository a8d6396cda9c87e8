"""One supervised model call: response cache, budget check, attempts with back-off, output validation, recording.

The decisions live in one generator (:meth:`CallRunner.plan`) that yields the I/O it needs — send this request,
sleep this long, record this attempt — so the sync operator path and the async trigger path run exactly the
same logic and differ only in how they perform each step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from supervisor_lib.exceptions import BudgetExceededError, FatalError, OutputValidationError, SupervisorError
from supervisor_lib.execution.content import prompt_cache_saving, transcript
from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.base import BaseLLMHook, ClientConfig
from supervisor_lib.providers.policy import (
    AttemptPolicy,
    budget_problem,
    cache_key,
    corrective_request,
    estimate_input_tokens,
    output_problem,
    worst_case_cost,
)
from supervisor_lib.providers.scrub import scrub
from supervisor_lib.providers.types import LLMRequest, LLMResponse, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallScope:
    """Where a call happens: the task instance try it belongs to, for recording, caching and budgets."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1
    task_type: str = "llm"
    tags: tuple[str, ...] = ()
    deferred: bool = False
    #: tells apart the logical calls of one task try (e.g. "iteration-2", "review"); part of each attempt's id
    step: str = ""

    @classmethod
    def from_ti(
        cls, ti: Any, *, task_type: str = "llm", tags: tuple[str, ...] = (), deferred: bool = False
    ) -> CallScope:
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if map_index is None else map_index,
            try_number=getattr(ti, "try_number", 1) or 1,
            task_type=task_type,
            tags=tags,
            deferred=deferred,
        )

    @property
    def cache_scope(self) -> tuple[str, ...]:
        """Responses are shared within one DAG run and task (map index included), across tries and clears."""
        return (self.dag_id, self.run_id, self.task_id, str(self.map_index))

    def describe(self) -> str:
        return f"task {self.task_id!r}" + (f" [{self.map_index}]" if self.map_index >= 0 else "")


class CallStore(Protocol):
    """What the call runner needs from the analytics store (see :mod:`supervisor_lib.store`)."""

    def record_attempt(self, row: dict[str, Any]) -> None: ...

    def intend(self, row: dict[str, Any]) -> Any: ...

    def adopt_lost(self, scope: CallScope) -> int: ...

    def cached_response(self, key: str) -> dict[str, Any] | None: ...

    def cache_response(self, key: str, scope: CallScope, result: dict[str, Any]) -> None: ...

    def task_spend_usd(self, scope: CallScope) -> float: ...


class Send(NamedTuple):
    request: LLMRequest


class Sleep(NamedTuple):
    seconds: float


class Record(NamedTuple):
    row: dict[str, Any]


class Intend(NamedTuple):
    """An attempt is about to be sent: its intent, recorded without waiting (``supervisor_lib.store.intents``)."""

    row: dict[str, Any]


Action = Send | Sleep | Record | Intend


@dataclass
class CallRunner:
    """Runs one logical call for a task; see the module docstring.

    :param budget_usd: the most this task may spend on model calls, all tries together; ``None`` for no limit.
    :param use_cache: re-use a response already paid for in this DAG run (task retries and clears).
    """

    hook_class: type[BaseLLMHook]
    config: ClientConfig
    scope: CallScope
    store: CallStore | None
    policy: AttemptPolicy = field(default_factory=AttemptPolicy)
    budget_usd: float | None = None
    use_cache: bool = True
    #: attempts of this try already recorded: lost ones (a deferred call run again by another triggerer) or, for
    #: a routed call, those of the models tried before this one; this runner numbers its attempts after them
    attempts_lost: int = 0
    #: the number of the last attempt this runner made (``attempts_lost`` before the first)
    last_attempt: int = field(default=0, init=False)
    #: tells one run of a deferred call from another (``<step>~<tag>`` in its attempts' call ids): two triggerers
    #: running the same trigger at once (one taken for dead while it was busy) number their attempts alike
    run_tag: str = field(default="", init=False)

    # -- the shared decisions ---------------------------------------------------------------------------------
    def plan(self, request: LLMRequest) -> Generator[Action, Any, dict[str, Any]]:
        """Yield the steps of the call; receives ``(LLMResponse, latency)`` or a ``SupervisorError`` per Send."""
        price = load_prices().models.get(request.model)
        if price is not None and price.deprecated:
            log.warning("%s: model %r is deprecated; choose a current one", self.scope.describe(), request.model)
        attempt, corrected = self.attempts_lost, False
        while True:
            attempt += 1
            self.last_attempt = attempt
            started = datetime.now(UTC)
            yield Intend(self._intent(attempt, started, request.model))
            outcome = yield Send(request)
            if isinstance(outcome, SupervisorError):
                yield Record(self._row(attempt, started, request.model, error=outcome, request=request))
                delay = (
                    None
                    if isinstance(outcome, FatalError)
                    else self.policy.delay_before(attempt, getattr(outcome, "retry_after", None))
                )
                if delay is None:
                    raise outcome
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.1fs", self.scope.describe(), attempt, outcome, delay
                )
                yield Sleep(delay)
                continue
            response, latency = outcome
            problem = output_problem(response.output, request.output_schema) if request.output_schema else None
            yield Record(self._row(attempt, started, response.model, response=response, latency=latency,
                                   request=request, rejected=problem))  # fmt: skip
            if problem is None:
                return self.result(response, latency, attempt)
            if corrected:
                raise OutputValidationError(
                    f"{self.scope.describe()}: {response.provider} model {response.model!r} returned output that "
                    f"does not match output_schema even after a corrective retry ({problem}); simplify the schema "
                    "or choose a stronger model"
                )
            log.warning("%s: structured output invalid (%s); asking once more", self.scope.describe(), problem)
            request, corrected = corrective_request(request, response.text, problem), True

    def result(self, response: LLMResponse, latency: float, attempts: int) -> dict[str, Any]:
        """The XCom result of a call. It never holds the API key."""
        return {
            "text": response.text,
            "output": response.output,
            "provider": response.provider,
            "model": response.model,
            "usage": _usage_dict(response.usage),
            "cost_usd": load_prices().cost_usd(response.model, response.usage),
            "latency_s": round(latency, 4),
            "request_id": response.request_id,
            "attempts": attempts,
        }

    def _row(
        self,
        attempt: int,
        started: datetime,
        model: str,
        *,
        response: LLMResponse | None = None,
        latency: float | None = None,
        error: SupervisorError | None = None,
        status: str | None = None,
        request: LLMRequest | None = None,
        rejected: str | None = None,
    ) -> dict[str, Any]:
        """One ``call_attempts`` row: what happened (``outcome``; a rejected answer was billed but failed its
        output check), what it cost and saved, a short scrubbed error, and the transcript when content is kept."""
        usage = response.usage if response else Usage()
        s = self.scope
        reason = f"the output does not match output_schema: {rejected}" if rejected else None
        return {
            "dag_id": s.dag_id,
            "run_id": s.run_id,
            "task_id": s.task_id,
            "map_index": s.map_index,
            "try_number": s.try_number,
            "attempt": attempt,
            "provider": self.hook_class.provider,
            "model": model,
            "task_type": s.task_type,
            "started_at": started,
            "duration_s": latency if latency is not None else (datetime.now(UTC) - started).total_seconds(),
            **_usage_dict(usage),
            "cost_usd": load_prices().cost_usd(model, usage) if response else 0.0,
            "status": status or ("error" if error else "success"),
            "error_type": type(error).__name__ if error else None,
            "request_id": response.request_id if response else None,
            "tags": ",".join(s.tags) or None,
            "step": self.step,
            "deferred": s.deferred,
            "outcome": "rejected" if rejected else None,  # else the recorder derives it from the status
            "error_message": scrub(str(error)) if error else reason,
            "saved_usd": prompt_cache_saving(model, usage) if response else None,
            "transcript": transcript(request, response, error, rejected) if request is not None else None,
        }

    @property
    def step(self) -> str:
        """The step part of this runner's call ids: the scope's step, tagged with the run of a deferred call."""
        return f"{self.scope.step}~{self.run_tag}" if self.run_tag else self.scope.step

    def _intent(self, attempt: int, started: datetime, model: str) -> dict[str, Any]:
        """What the intent of an attempt needs (the fields of its row known before it is sent)."""
        s = self.scope
        return {"dag_id": s.dag_id, "run_id": s.run_id, "task_id": s.task_id, "map_index": s.map_index,
                "try_number": s.try_number, "attempt": attempt, "provider": self.hook_class.provider, "model": model,
                "task_type": s.task_type, "started_at": started, "tags": ",".join(s.tags) or None, "step": self.step,
                "deferred": s.deferred}  # fmt: skip

    # -- pre-flight: cache and budget -------------------------------------------------------------------------
    def cached(self, request: LLMRequest) -> dict[str, Any] | None:
        """A result already paid for in this DAG run (recorded as a ``cached`` attempt), or ``None``."""
        if not (self.use_cache and self.store):
            return None
        hit = self.store.cached_response(cache_key(self.hook_class.provider, request, self.scope.cache_scope))
        if hit is None:
            return None
        row = self._row(0, datetime.now(UTC), hit.get("model", request.model), status="cached")
        row["duration_s"], row["saved_usd"] = 0.0, hit.get("cost_usd")  # what it would have cost again
        self.store.record_attempt(row)
        log.info("%s: re-using the response already paid for in this DAG run (no new call)", self.scope.describe())
        return {**hit, "attempts": 0, "cached": True, "cost_usd": 0.0}

    def check_budget(self, request: LLMRequest, input_tokens: int | None = None) -> None:
        """Raise :class:`BudgetExceededError` when the call could push the task over ``budget_usd``."""
        if self.budget_usd is None:
            return
        price = load_prices().models.get(request.model)
        if price is None:
            raise BudgetExceededError(
                f"{self.scope.describe()}: budget_usd is set but no price is known for model {request.model!r}, so "
                "the budget cannot be enforced; add the model to supervisor_lib/data/models.yaml"
            )
        spent = self.store.task_spend_usd(self.scope) if self.store else 0.0
        tokens = input_tokens if input_tokens is not None else estimate_input_tokens(request)
        problem = budget_problem(
            self.budget_usd, spent, worst_case_cost(price, tokens, request.max_tokens), self.scope.describe()
        )
        if problem:
            raise BudgetExceededError(problem)

    def remember(self, request: LLMRequest, result: dict[str, Any]) -> None:
        if self.use_cache and self.store:
            self.store.cache_response(
                cache_key(self.hook_class.provider, request, self.scope.cache_scope), self.scope, result
            )

    # -- the two ways to execute the plan ---------------------------------------------------------------------
    def run(self, request: LLMRequest, client: Any, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Execute synchronously (the worker path)."""
        if self.store and self.scope.try_number > 1:  # an earlier try's calls that never came back
            self.attempts_lost = max(self.attempts_lost, self.store.adopt_lost(self.scope))
        if (hit := self.cached(request)) is not None:
            return hit
        if self.budget_usd is not None:
            self.check_budget(request, self.hook_class.count_input_tokens(client, request))
        plan, value, intent = self.plan(request), None, None
        while True:
            try:
                action = plan.send(value)
            except StopIteration as done:
                self.remember(request, done.value)
                return dict(done.value)
            value = None
            if isinstance(action, Send):
                value = self._send_sync(client, action.request)
            elif isinstance(action, Sleep):
                sleep(action.seconds)
            elif isinstance(action, Intend):
                intent = self.store.intend(action.row) if self.store else None
            elif self.store:
                if intent is not None:
                    intent.cancel()  # the answer is back: an intent not written yet is not needed
                self.store.record_attempt(action.row)

    async def arun(self, request: LLMRequest, client: Any) -> dict[str, Any]:
        """Execute asynchronously (the trigger path); store access runs in a thread, never on the event loop."""
        if self.store and (self.scope.try_number > 1 or self.scope.deferred):
            self.attempts_lost = max(self.attempts_lost, await asyncio.to_thread(self.store.adopt_lost, self.scope))
        if self.scope.deferred:
            self.run_tag = uuid.uuid4().hex[:8]
        if (hit := await asyncio.to_thread(self.cached, request)) is not None:
            return hit
        if self.budget_usd is not None:
            tokens = await self.hook_class.acount_input_tokens(client, request)
            await asyncio.to_thread(self.check_budget, request, tokens)
        plan, value, intent = self.plan(request), None, None
        while True:
            try:
                action = plan.send(value)
            except StopIteration as done:
                await asyncio.to_thread(self.remember, request, done.value)
                return dict(done.value)
            value = None
            if isinstance(action, Send):
                value = await self._send_async(client, action.request)
            elif isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
            elif isinstance(action, Intend):  # queued on the store's worker: it does not block the loop
                intent = self.store.intend(action.row) if self.store else None
            elif self.store:
                if intent is not None:
                    intent.cancel()
                await asyncio.to_thread(self.store.record_attempt, action.row)

    def _send_sync(self, client: Any, request: LLMRequest) -> tuple[LLMResponse, float] | SupervisorError:
        hook = self.hook_class
        try:
            return hook.call_once(lambda: hook.send(client, hook.request_params(request)), request, hook.provider)
        except SupervisorError as err:
            return err

    async def _send_async(self, client: Any, request: LLMRequest) -> tuple[LLMResponse, float] | SupervisorError:
        hook = self.hook_class
        started = time.monotonic()
        try:
            raw = await hook.asend(client, hook.request_params(request))
            return hook.parse_response(raw, request), time.monotonic() - started
        except SupervisorError as err:
            return err
        except Exception as exc:
            mapped = hook.map_error(exc, request.model)
            mapped.__cause__ = exc
            return mapped


def result_summary(result: dict[str, Any]) -> str:
    """The one log line a finished call leaves in the task log."""
    cached = " from the response cache" if result.get("cached") else ""
    return (
        f"{result['provider']} {result['model']} answered{cached} ({result['attempts']} attempt(s), "
        f"cost {result['cost_usd']} USD, request id {result['request_id']})"
    )


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }
