"""Load with faults: many concurrent calls across both providers, 5% of them hit by a fault, under one daily budget
that runs out part-way.

Half the calls go to Anthropic and half to OpenAI; half run on the sync path (worker threads) and half on the
deferred path (one event loop, as in the triggerer). One call in twenty meets a fault: a transient one (429, 500,
529, reset, malformed or wrong-shape answer) that the call's next attempt gets past, or, for one in five of those,
a fatal one (401, 400). All calls share one DAG's per-day budget, set to about 60% of what they would cost: the
later calls are refused before they are sent. The guarantees:

* nothing lost: every request the provider received has exactly one analytics row (after the spool is flushed);
* every call ends (answered, refused by the budget, or failed) before its deadline: no call is stuck;
* the budget is never overrun by more than one call's worst case, and money is charged only for answers;
* a refused call sends nothing, and a fatal fault is never retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchmarks.reliability import Section, timed
from benchmarks.reliability._calls import executor, outcome
from benchmarks.reliability._world import World, provider_world
from supervisor_lib.testing import (
    AUTH,
    BAD_REQUEST,
    MALFORMED,
    OVERLOADED,
    RATE_LIMIT,
    RESET,
    SERVER_ERROR,
    WRONG_SHAPE,
    Rule,
)

TRANSIENT = (RATE_LIMIT, SERVER_ERROR, OVERLOADED, RESET, MALFORMED, WRONG_SHAPE)
FATAL = (AUTH, BAD_REQUEST)
FAULT_SHARE = 0.05
BUDGET_SHARE = 0.6
DAG_ID = "load"
#: a call that has not ended after this long is stuck
DEADLINE_S = 60.0
MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-5-nano"}
ANSWER = "a load answer"


@dataclass(frozen=True)
class Plan:
    """One call of the load: its provider, path and fault (``None``: none)."""

    index: int
    provider: str
    deferred: bool
    fault: str | None

    @property
    def prompt(self) -> str:
        return f"load call {self.index:05d}"


def plans(n: int, seed: int = 7) -> list[Plan]:
    """``n`` calls, alternating providers and paths, 5% with a fault (a fifth of those fatal)."""
    rng = random.Random(seed)
    out = []
    for index in range(n):
        fault = None
        if rng.random() < FAULT_SHARE:
            fault = rng.choice(FATAL) if rng.random() < 0.2 else rng.choice(TRANSIENT)
        out.append(Plan(index, ("anthropic", "openai")[index % 2], bool(index // 2 % 2), fault))
    return out


def run(quick: bool) -> Section:
    """Run 1,000 calls (quick: 200) and check the guarantees."""
    section = Section(key="load_faults", title="Load with faults: concurrent calls, 5% faults, a budget running out")
    calls = plans(200 if quick else 1000)
    with timed(section), provider_world(timeout_s=2.0) as world:
        limit = BUDGET_SHARE * len(calls) * _cost_of_one(world)
        world.new_store()
        _script(world, calls)
        started = time.perf_counter()
        outcomes = _run_all(world, calls, limit)
        wall = time.perf_counter() - started
        _check(section, world, calls, outcomes, limit, wall)
    return section


def _cost_of_one(world: World) -> float:
    """What a call costs on average (a probe call per provider, in a throw-away store; the load alternates them)."""
    world.fake.add_rule(Rule(text=ANSWER, usage={"output_tokens": 64}))  # answers as dear as the worst case
    costs = [_executor(world, Plan(-1, provider, False, None), None).run()["cost_usd"] for provider in MODELS]
    return sum(costs) / len(costs)


def _script(world: World, calls: list[Plan]) -> None:
    world.fake.reset()
    for plan in calls:
        if plan.fault is not None:
            times = None if plan.fault in FATAL else 1
            world.fake.add_rule(Rule(match=plan.prompt, fault=plan.fault, times=times, retry_after=0.05))
    world.fake.add_rule(Rule(text=ANSWER, usage={"output_tokens": 64}))  # answers as dear as the worst case


def _executor(world: World, plan: Plan, limit: float | None) -> Any:
    budget = {"per_day_usd": limit} if limit is not None else None
    return executor(world.store_conn, DAG_ID, task_id=f"call_{plan.index}", deferred=plan.deferred,
                    provider=plan.provider, model=MODELS[plan.provider], prompt=plan.prompt, budget=budget)  # fmt: skip


def _run_all(world: World, calls: list[Plan], limit: float) -> dict[int, str]:
    """Run the sync calls on 16 threads while one event loop runs the deferred ones, 50 at a time."""
    outcomes: dict[int, str] = {}

    def sync_call(plan: Plan) -> None:
        try:
            _executor(world, plan, limit).run()
            outcomes[plan.index] = outcome(None)
        except Exception as error:
            outcomes[plan.index] = outcome(error)

    async def deferred_calls() -> None:
        gate = asyncio.Semaphore(50)

        async def one(plan: Plan) -> None:
            async with gate:
                try:
                    await asyncio.wait_for(_executor(world, plan, limit).arun(), DEADLINE_S)
                    outcomes[plan.index] = outcome(None)
                except TimeoutError:
                    outcomes[plan.index] = "stuck"
                except Exception as error:
                    outcomes[plan.index] = outcome(error)

        await asyncio.gather(*(one(plan) for plan in calls if plan.deferred))

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(sync_call, plan) for plan in calls if not plan.deferred]
        asyncio.run(deferred_calls())
        for future in futures:
            future.result(timeout=DEADLINE_S)
    return outcomes


def _check(
    section: Section, world: World, calls: list[Plan], outcomes: dict[int, str], limit: float, wall: float
) -> None:
    from supervisor_lib.store.recorder import get_recorder

    get_recorder(world.store_conn).flush_spool()
    store = world.store()
    rows = store.attempts(dag_id=DAG_ID)
    requests = world.requests()
    spent = sum(float(row["cost_usd"] or 0) for row in rows if row["status"] == "success")
    charged = world.charged(DAG_ID)
    per_call = {plan.index: 0 for plan in calls}
    for call in world.fake.calls:
        text = str(call.body)
        for token in text.split("load call ")[1:2]:
            per_call[int(token[:5])] += 1
    tally = Counter(outcomes.get(plan.index, "stuck") for plan in calls)
    section.check(len(outcomes) == len(calls) and tally["stuck"] == 0, f"{tally['stuck']} calls never ended")
    section.check(not any(o.startswith("escaped") for o in tally), f"errors escaped error mapping: {dict(tally)}")
    section.check(len(rows) == requests, f"{requests} requests reached the provider but {len(rows)} rows were recorded")
    worst = max(worst_cases())
    section.check(charged <= limit + worst, f"budget overrun: {charged:.6f} USD charged, limit {limit:.6f} USD")
    section.check(abs(charged - spent) < 1e-9, f"budget charged {charged:.6f} USD for answers costing {spent:.6f} USD")
    refused = [p for p in calls if outcomes.get(p.index) == "refused by budget"]
    section.check(all(per_call[p.index] == 0 for p in refused), "a call refused by the budget was sent")
    fatal_sent = [per_call[p.index] for p in calls if p.fault in FATAL and outcomes.get(p.index) == "fatal"]
    section.check(all(n == 1 for n in fatal_sent), f"a fatal fault was retried: requests {fatal_sent}")
    _table(section, calls, outcomes, tally, requests, rows, charged, limit, wall)


def worst_cases() -> list[float]:
    """One call's worst-case cost per provider (what a reservation holds)."""
    from supervisor_lib.model_facts import load_prices
    from supervisor_lib.providers.types import Usage

    prices, usage = load_prices(), Usage(input_tokens=64, output_tokens=64)
    return [prices.cost_usd(model, usage) or 0.0 for model in MODELS.values()]


def _table(section: Section, calls: list[Plan], outcomes: dict[int, str], tally: Counter[str], requests: int,
           rows: list[dict[str, Any]], charged: float, limit: float, wall: float) -> None:  # fmt: skip
    faults = Counter(plan.fault for plan in calls if plan.fault)
    section.headers = ["what", "count"]
    sync = sum(not plan.deferred for plan in calls)
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(faults.items()))
    section.rows = [
        ["calls (Anthropic / OpenAI; sync / deferred)", f"{len(calls)} ({len(calls) - len(calls) // 2} / "
         f"{len(calls) // 2}; {sync} / {len(calls) - sync})"],
        ["calls with an injected fault", f"{sum(faults.values())} ({kinds})"],
        *([f"ended: {name}", count] for name, count in sorted(tally.items())),
        ["requests the provider received", requests],
        ["analytics rows recorded", len(rows)],
        ["budget limit / charged (USD)", f"{limit:.6f} / {charged:.6f}"],
        ["wall time", f"{wall:.1f} s ({len(calls) / wall:.0f} calls/s)"],
    ]  # fmt: skip
    section.summary = (
        f"{len(calls)} calls in {wall:.0f} s; {sum(faults.values())} met a fault; "
        f"{tally['answered']} were answered and {tally['refused by budget']} refused by the budget before being sent; "
        f"{requests} requests reached the provider and {len(rows)} rows were recorded.\n\n"
        + __doc__.split("\n\n", 1)[1]
    )
