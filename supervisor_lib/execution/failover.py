"""Failover: walk a plan's candidates, honouring breakers and budgets, until one answers.

The loop is one generator (:func:`failover_steps`) that yields the I/O it needs — ``Io`` (a blocking store
operation) or ``Call`` (send the call to a candidate) — so the sync operator path (:func:`run_routed`) and the async
trigger path (:func:`arun_routed`, store work in a thread) share every decision. Per candidate, in plan order:

1. a half-open breaker: claim its probe atomically (another worker holds it: skip the candidate);
2. reserve the call's worst-case cost against every budget that applies (it does not fit: skip the candidate);
3. call; settle the reservation with the actual cost (or release it);
4. success: close the breakers it probed, log the decision, return. A ``RetryableError`` (past the candidate's own
   attempts): hold a probed breaker open again and fail over to the next candidate — the remaining candidates of
   the failed provider move behind the other providers' (an overloaded provider usually fails all its models).
   Any other error (auth, bad request, invalid output): no failover — it fails the task as it is.

When no candidate answers: a ``RetryableError`` if a breaker or a transient failure was in the way (Airflow's
retry will route again), else ``BudgetExceededError`` if budgets were, else ``NoRouteError``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from supervisor_lib.exceptions import BudgetExceededError, NoRouteError, RetryableError
from supervisor_lib.execution.router import Router, RouteScope
from supervisor_lib.routing.budgets import exceeded_message
from supervisor_lib.routing.policy import Candidate, RoutePlan
from supervisor_lib.store.routing_state import Blocked, Reservation


@dataclass(frozen=True)
class Attempt:
    """One candidate to call. With ``probe`` the caller should make a single HTTP attempt (no retries)."""

    candidate: Candidate
    probe: bool
    number: int


@dataclass(frozen=True)
class Routed:
    """The answer, who gave it, the plan and every candidate tried or skipped before."""

    result: dict[str, Any]
    candidate: Candidate
    plan: RoutePlan
    failovers: tuple[dict[str, str], ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """The ``routed`` entry of the XCom result."""
        rejected = [f"{r.name}: [{r.rule}] {r.reason}" for r in self.plan.rejected]
        return {
            "provider": self.candidate.provider,
            "model": self.candidate.model,
            "reasons": [f"chosen {self.candidate.name}: {self.candidate.reason}", *rejected],
            "failovers": list(self.failovers),
        }


class Io(NamedTuple):
    """A blocking store operation; its result (or exception) is sent back."""

    fn: Callable[[], Any]


class Call(NamedTuple):
    """Send the call to ``attempt.candidate``; its result dict or exception is sent back."""

    attempt: Attempt


Step = Io | Call
#: the actual USD a call spent, from its result dict or its exception
SpentOf = Callable[[Any], float]


def default_spent(outcome: Any) -> float:
    """``spent_usd`` (all sends of the call) or ``cost_usd`` of a result; ``spent_usd`` of an error, else 0."""
    if isinstance(outcome, dict):
        value = outcome.get("spent_usd", outcome.get("cost_usd"))
    else:
        value = getattr(outcome, "spent_usd", 0.0)
    return float(value or 0.0)


def failover_steps(
    router: Router, plan: RoutePlan, scope: RouteScope, *, spent_of: SpentOf = default_spent,
    reservation_ttl_s: float | None = None,
) -> Generator[Step, Any, Routed]:  # fmt: skip
    """The failover loop of the module docstring, as steps for :func:`run_routed` / :func:`arun_routed`."""
    loop = _Loop(router, plan, scope, spent_of, reservation_ttl_s or router.catalog.settings.reservation_ttl_s)
    router.log.info("%s: %s", scope.describe(), plan.explain())
    queue, number = list(plan.candidates), 0
    while queue:
        candidate, number = queue.pop(0), number + 1
        outcome = yield from loop.attempt(candidate, number)
        if isinstance(outcome, dict):
            routed = Routed(outcome, candidate, plan, tuple(loop.tried))
            if loop.tried:
                router.log.warning("%s: answered by %s after %d failover(s)", scope.describe(), candidate.name,
                                   len(loop.tried))  # fmt: skip
            yield Io(partial(loop.record, "success", candidate))
            return routed
        if loop.tried and loop.tried[-1]["outcome"] == "failed":
            # an overloaded or failing provider usually fails all its models: try the other providers first
            queue.sort(key=lambda c: c.provider == candidate.provider)
    error = loop.exhausted()
    yield Io(partial(loop.record, _outcome_of(error), None))
    raise error


@dataclass
class _Loop:
    router: Router
    plan: RoutePlan
    scope: RouteScope
    spent_of: SpentOf
    ttl_s: float
    tried: list[dict[str, str]] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    transient: bool = False
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def attempt(self, candidate: Candidate, number: int) -> Generator[Step, Any, dict[str, Any] | None]:
        """Claim, reserve, call, settle; the result dict, or ``None`` to go on to the next candidate."""
        state, now = self.router.state, self.router.clock()
        probing = bool(candidate.probe_keys) and state is not None
        if probing and state is not None:
            ttl = self.router.catalog.settings.health.probe_ttl_s
            try:
                won = yield Io(partial(state.claim_probe, candidate.probe_keys, self._owner(), now, ttl))
            except Exception as exc:
                raise RetryableError(f"{self.scope.describe()}: breaker probe cannot be claimed: {exc}") from exc
            if not won:
                self.transient = True
                self._skip(candidate, "probe", "another worker is probing its breaker")
                return None
        held = yield from self._reserve(candidate, now)
        if held is None:
            yield from self._unclaim(candidate, probing)
            return None
        outcome = yield Call(Attempt(candidate, probing, number))
        yield Io(partial(self._settle, held, self.spent_of(outcome)))
        if isinstance(outcome, BaseException):
            yield from self._failed(candidate, probing, outcome)
            return None
        if probing and state is not None:
            yield Io(partial(self._quiet, state.close_breakers, candidate.probe_keys, self.router.clock()))
        return dict(outcome)

    def _reserve(self, candidate: Candidate, now: datetime) -> Generator[Step, Any, Reservation | None]:
        charges = tuple(c for c in self.plan.charges if c.applies_to(candidate.provider))
        state = self.router.state
        if not charges or state is None:
            return Reservation("", candidate.estimate_usd, ())
        owner = (self.scope.dag_id, self.scope.run_id, self.scope.task_id)
        try:
            held = yield Io(partial(state.reserve, charges, candidate.estimate_usd, reservation_id=uuid.uuid4().hex,
                                    owner=owner, now=now, ttl_s=self.ttl_s))  # fmt: skip
        except Exception as exc:
            raise RetryableError(f"{self.scope.describe()}: budgets cannot be checked: {exc}") from exc
        if isinstance(held, Blocked):
            self.blocked.append(held)
            self._skip(candidate, "budget", exceeded_message(held.charge, held.usage, held.amount_usd, candidate.name))
            return None
        assert isinstance(held, Reservation)
        return held

    def _failed(self, candidate: Candidate, probing: bool, error: BaseException) -> Generator[Step, Any, None]:
        state, now = self.router.state, self.router.clock()
        if not isinstance(error, RetryableError):
            yield from self._unclaim(candidate, probing)
            self.tried.append(_entry(candidate, "fatal", str(error)))
            yield Io(partial(self.record, _outcome_of(error), candidate))
            raise error
        self.transient = True
        if probing and state is not None:
            until = now + timedelta(seconds=self.router.catalog.settings.health.cooldown_s)
            reopen = partial(state.open_breakers, candidate.probe_keys, now, until, f"probe failed: {error}")
            yield Io(partial(self._quiet, reopen))
        self._skip(candidate, "failed", str(error))

    def _unclaim(self, candidate: Candidate, probing: bool) -> Generator[Step, Any, None]:
        if probing and self.router.state is not None:
            release = partial(self.router.state.release_probe, candidate.probe_keys, self._owner(), self.router.clock())
            yield Io(partial(self._quiet, release))

    def _skip(self, candidate: Candidate, what: str, reason: str) -> None:
        self.tried.append(_entry(candidate, what, reason))
        self.router.log.warning("%s: %s skipped (%s): %s", self.scope.describe(), candidate.name, what, reason)

    def _settle(self, held: Reservation, spent: float) -> None:
        if held.charges and self.router.state is not None:
            self._quiet(self.router.state.settle, held, spent, self.router.clock())

    def _quiet(self, fn: Callable[..., Any], *args: Any) -> None:
        """Bookkeeping after the call must not fail a call that was made: log and go on."""
        try:
            fn(*args)
        except Exception as exc:
            self.router.log.warning("%s: routing bookkeeping failed (%s); continuing", self.scope.describe(), exc)

    def _owner(self) -> str:
        s = self.scope
        return f"{s.dag_id}/{s.run_id}/{s.task_id}/{s.map_index}/{s.try_number}/{self.owner[:8]}"

    def exhausted(self) -> Exception:
        """The error when no candidate answered (see the module docstring)."""
        where = self.scope.describe()
        health = [r for r in self.plan.rejected if r.rule == "health"]
        if self.transient or health:
            retry_at = min((r.retry_at for r in health if r.retry_at), default=None)
            wait = max(0.0, (retry_at - self.router.clock()).total_seconds()) if retry_at else None
            why = "; ".join([*(f"{t['model']}: {t['reason']}" for t in self.tried),
                             *(f"{r.name}: {r.reason}" for r in health)])  # fmt: skip
            return RetryableError(f"{where}: no provider could take the call now ({why})", retry_after=wait)
        if self.blocked:
            b = self.blocked[0]
            return BudgetExceededError(exceeded_message(b.charge, b.usage, b.amount_usd, where))
        if self.plan.request.pinned and self.plan.rejected and self.plan.rejected[0].rule == "price":
            return BudgetExceededError(f"{where}: no call was sent: {self.plan.rejected[0].reason}")
        if budget := [r for r in self.plan.rejected if r.rule == "budget"]:
            cheapest = budget[0]
            return BudgetExceededError(
                f"{where}: no call was sent: every model that could answer would exceed a budget, e.g. "
                f"{cheapest.name}: {cheapest.reason}. Raise the limit, lower max_tokens, or wait for the next window"
            )
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in self.plan.rejected) or "the catalogue has no models"
        needs = ", ".join(sorted(self.plan.required)) or "nothing special"
        return NoRouteError(
            f"{where}: no model in the catalogue ({self.router.catalog.source}) can serve "
            f"{self.plan.request.task_type!r} (needs {needs}): {reasons}"
        )

    def record(self, outcome: str, candidate: Candidate | None) -> None:
        """Log the decision in the analytics store (best effort)."""
        if self.router.state is None:
            return
        s = self.scope
        row = {
            "decision_id": uuid.uuid4().hex, "dag_id": s.dag_id, "run_id": s.run_id, "task_id": s.task_id,
            "map_index": s.map_index, "try_number": s.try_number, "task_type": s.task_type,
            "decided_at": self.router.clock(), "outcome": outcome,
            "provider": candidate.provider if candidate else None, "model": candidate.model if candidate else None,
            "failovers": len(self.tried), "detail": {**self.plan.as_dict(), "tried": self.tried},
        }  # fmt: skip
        self._quiet(self.router.state.log_decision, row)


def _entry(candidate: Candidate, what: str, reason: str) -> dict[str, str]:
    return {"provider": candidate.provider, "model": candidate.model, "outcome": what, "reason": reason}


def _outcome_of(error: BaseException) -> str:
    names = {BudgetExceededError: "budget_exceeded", NoRouteError: "no_route", RetryableError: "unavailable"}
    return next((name for cls, name in names.items() if isinstance(error, cls)), "failed")


# -- the two ways to execute the loop -------------------------------------------------------------------------------
def _advance(steps: Generator[Step, Any, Routed], value: Any, error: BaseException | None) -> Step | Routed:
    """The loop's next step after ``value`` (or ``error``, thrown in); the :class:`Routed` once it returns."""
    try:
        return steps.throw(error) if error is not None else steps.send(value)
    except StopIteration as done:
        return done.value


def run_routed(steps: Generator[Step, Any, Routed], call: Callable[[Attempt], dict[str, Any]]) -> Routed:
    """Execute the loop synchronously (the worker path); ``call`` raises on failure."""
    outcome: tuple[Any, BaseException | None] = (None, None)
    while not isinstance(step := _advance(steps, *outcome), Routed):
        try:
            outcome = (call(step.attempt) if isinstance(step, Call) else step.fn(), None)
        except Exception as exc:  # a failed call is an outcome the loop decides about; a failed store step is thrown
            outcome = (exc, None) if isinstance(step, Call) else (None, exc)
    return step


async def arun_routed(
    steps: Generator[Step, Any, Routed], call: Callable[[Attempt], Awaitable[dict[str, Any]]]
) -> Routed:
    """Execute the loop on an event loop (the trigger path): store work runs in a thread, never on the loop."""
    outcome: tuple[Any, BaseException | None] = (None, None)
    while not isinstance(step := _advance(steps, *outcome), Routed):
        try:
            outcome = (await call(step.attempt) if isinstance(step, Call) else await asyncio.to_thread(step.fn), None)
        except Exception as exc:
            outcome = (exc, None) if isinstance(step, Call) else (None, exc)
    return step
