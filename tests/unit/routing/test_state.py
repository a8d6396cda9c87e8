"""The router's shared state on SQLite and PostgreSQL: samples, breakers, probes, atomic budget reservations."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest

from supervisor_lib.routing.budgets import (
    BudgetDeclaration,
    BudgetScope,
    Charge,
    GlobalBudgets,
    charges_for,
    limits_for,
)
from supervisor_lib.store import Store
from supervisor_lib.store.routing_state import Blocked, Reservation, RoutingState
from tests.unit.routing.conftest import T0, FakeClock, RecordAttempt

SCOPE = BudgetScope("nightly", "run-1")
OWNER = ("nightly", "run-1", "fix")


def day_charge(limit: float = 5.0) -> tuple[Charge, ...]:
    return charges_for(limits_for(SCOPE, BudgetDeclaration(per_day_usd=limit), GlobalBudgets()), SCOPE, T0)


def reserve(state: RoutingState, amount: float, rid: str, charges: tuple[Charge, ...], **kw: object):  # type: ignore[no-untyped-def]
    return state.reserve(charges, amount, reservation_id=rid, owner=OWNER, now=kw.pop("now", T0), ttl_s=60, **kw)  # type: ignore[arg-type]


def test_samples_are_newest_first_without_cached_rows(state: RoutingState, record_attempt: RecordAttempt) -> None:
    record_attempt("anthropic", "claude-haiku-4-5", at=T0 - timedelta(seconds=400))  # outside the window
    record_attempt("anthropic", "claude-haiku-4-5", ok=False, at=T0 - timedelta(seconds=20))
    record_attempt("openai", "gpt-5-mini", at=T0 - timedelta(seconds=10), duration_s=2.5)
    samples = state.samples(T0 - timedelta(seconds=300), limit=100)
    assert [(s.provider, s.ok, s.duration_s) for s in samples] == [("openai", True, 2.5), ("anthropic", False, 0.5)]
    assert samples[0].started_at == T0 - timedelta(seconds=10)
    assert len(state.samples(T0 - timedelta(seconds=300), limit=1)) == 1


def test_breaker_rows_probe_claims_and_verdicts(state: RoutingState) -> None:
    keys = ("anthropic", "anthropic/claude-haiku-4-5")
    assert state.breakers() == {}
    assert state.claim_probe(keys, "worker-1", T0, ttl_s=30)
    assert not state.claim_probe(keys, "worker-2", T0 + timedelta(seconds=1), ttl_s=30)
    assert state.breakers()["anthropic"].probe_owner == "worker-1"
    assert state.claim_probe(keys, "worker-2", T0 + timedelta(seconds=31), ttl_s=30)  # the first claim lapsed

    state.open_breakers(keys, T0, T0 + timedelta(seconds=60), "probe failed")
    record = state.breakers()["anthropic/claude-haiku-4-5"]
    assert record.open_until == T0 + timedelta(seconds=60) and record.probe_owner is None
    assert not state.claim_probe(keys, "worker-3", T0 + timedelta(seconds=59), ttl_s=30)  # still open

    state.close_breakers(keys, T0 + timedelta(seconds=90))
    record = state.breakers()["anthropic"]
    assert record.reset_at == T0 + timedelta(seconds=90) and record.open_until is None


def test_a_partial_claim_is_rolled_back(state: RoutingState) -> None:
    assert state.claim_probe(["openai/gpt-5-mini"], "a", T0, ttl_s=30)
    assert not state.claim_probe(["openai", "openai/gpt-5-mini"], "b", T0, ttl_s=30)
    assert state.breakers()["openai"].probe_owner is None  # b's claim on "openai" was given back
    state.release_probe(["openai/gpt-5-mini"], "a", T0)
    assert state.claim_probe(["openai", "openai/gpt-5-mini"], "b", T0, ttl_s=30)


def test_reserve_settle_and_release(state: RoutingState) -> None:
    charges = day_charge(5.0)
    first = reserve(state, 3.0, "r1", charges)
    assert isinstance(first, Reservation)
    blocked = reserve(state, 2.5, "r2", charges)
    assert (
        isinstance(blocked, Blocked) and blocked.usage.reserved_usd == 3.0 and blocked.charge.key == "dag:nightly:day"
    )

    state.settle(first, 1.25, T0)  # the call cost less than its worst case
    assert state.spent("dag:nightly:day", "2026-11-05") == 1.25
    second = reserve(state, 2.5, "r2", charges)
    assert isinstance(second, Reservation)
    state.settle(second, 0.0, T0)  # released: nothing spent
    usage = state.usage(charges, T0)
    assert usage == {("dag:nightly:day", "2026-11-05"): usage[("dag:nightly:day", "2026-11-05")]}
    assert (
        usage[("dag:nightly:day", "2026-11-05")].spent_usd,
        usage[("dag:nightly:day", "2026-11-05")].reserved_usd,
    ) == (1.25, 0.0)


def test_a_lapsed_reservation_stops_counting(state: RoutingState) -> None:
    charges = day_charge(5.0)
    assert isinstance(reserve(state, 4.0, "killed-worker", charges), Reservation)
    assert isinstance(reserve(state, 4.0, "r2", charges, now=T0 + timedelta(seconds=30)), Blocked)
    assert isinstance(reserve(state, 4.0, "r2", charges, now=T0 + timedelta(seconds=61)), Reservation)


def test_no_budgets_means_no_store_work(state: RoutingState) -> None:
    held = reserve(state, 1.0, "r", ())
    assert isinstance(held, Reservation) and held.charges == ()
    state.settle(held, 1.0, T0)
    assert state.usage((), T0) == {}


def test_decisions_round_trip(state: RoutingState) -> None:
    row = {"decision_id": "d1", "dag_id": "nightly", "run_id": "run-1", "task_id": "fix", "map_index": -1,
           "try_number": 1, "task_type": "bug_fix", "decided_at": T0, "outcome": "success", "provider": "openai",
           "model": "gpt-5-mini", "failovers": 1, "detail": {"tried": [{"model": "claude-sonnet-4-6"}]}}  # fmt: skip
    state.log_decision(row)
    state.log_decision(row)  # a replay is ignored
    [stored] = state.decisions("nightly", "run-1")
    assert stored["detail"] == {"tried": [{"model": "claude-sonnet-4-6"}]} and stored["decided_at"] == T0
    assert state.decisions("other") == []


# -- concurrency: several processes race on one budget and one probe ------------------------------------------
WORKERS = 6


def _race_reserve(url: str, barrier: Barrier, results: Queue[object], worker: int) -> None:
    state = RoutingState(Store.from_url(url))
    barrier.wait()
    won = []
    for i in range(3):
        held = reserve(state, 1.0, f"w{worker}-{i}", day_charge(5.0))
        if isinstance(held, Reservation):
            state.settle(held, 1.0, T0)  # the call cost exactly its estimate
            won.append(i)
    results.put(len(won))


def _race_probe(url: str, barrier: Barrier, results: Queue[object], worker: int) -> None:
    state = RoutingState(Store.from_url(url))
    barrier.wait()
    results.put(state.claim_probe(["anthropic", "anthropic/claude-haiku-4-5"], f"w{worker}", T0, ttl_s=60))


def _race(target: object, url: str) -> list[object]:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    children = [context.Process(target=target, args=(url, barrier, results, n)) for n in range(WORKERS)]  # type: ignore[arg-type]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=10)
    return outcomes


def test_racing_workers_never_jointly_overshoot_a_budget(store: Store, store_url: str) -> None:
    store.migrate()  # the race is about budgets, not about who migrates
    outcomes = _race(_race_reserve, store_url)
    assert sum(outcomes) == 5, outcomes  # type: ignore[arg-type]  # 18 attempts, $1 each, a $5 limit
    assert RoutingState(store).spent("dag:nightly:day", "2026-11-05") == pytest.approx(5.0)


def test_racing_workers_claim_one_probe(store: Store, store_url: str) -> None:
    store.migrate()
    assert sorted(_race(_race_probe, store_url)) == [False] * (WORKERS - 1) + [True]  # type: ignore[type-var]


def test_clock_fixture_moves(clock: FakeClock) -> None:
    clock.advance(5)
    assert clock() == T0 + timedelta(seconds=5)
