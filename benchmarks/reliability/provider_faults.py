"""Provider faults × call paths: every fault the fake provider can script, through every path a model call takes.

Paths: a task's own call on a worker (**sync**) and in the triggerer (**deferred**), a coding task's call
(**coding**: a step of a supervised task, through the same executor), a routed call whose first model fails
(**routed**, sync and deferred: the fault hits Anthropic, OpenAI answers) and a **batch** item. Every call is
budgeted (a per-day budget), so the money charged can be checked.

Each fault is sent **once** (then the provider answers) and **always**. For each cell: the outcome (``success``,
``retry``: the try fails and Airflow's retry may help, ``fatal``: the task fails at once), the requests that
reached the provider, the analytics rows recorded, and the money charged to the budget. The guarantees:

* a transient fault sent once is absorbed within the try; sent always, it ends in an Airflow retry;
* a fatal fault (400, 401, 403, 404) is never retried: exactly one request, and the task fails at once (a routed
  call does not fail over either: docs/routing.md, a rejected key or request is for a person to fix);
* a routed call whose first model keeps failing with a transient fault is answered by the next model;
* exactly one analytics row per request that reached the provider;
* the budget is charged exactly the cost of the answer that came back (never twice, nothing for a fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.reliability import Section, timed
from benchmarks.reliability._calls import MAX_ATTEMPTS, outcome, record_batch, run_batch, send
from benchmarks.reliability._calls import PATHS as CALL_PATHS
from benchmarks.reliability._world import World, provider_world
from supervisor_lib.testing import (
    AUTH,
    BAD_GATEWAY,
    BAD_REQUEST,
    FORBIDDEN,
    HANG,
    MALFORMED,
    NOT_FOUND,
    OVERLOADED,
    RATE_LIMIT,
    RESET,
    SERVER_ERROR,
    TRUNCATED,
    UNAVAILABLE,
    WRONG_SHAPE,
    Rule,
)

#: fault label -> (rule fields, fatal?)
FAULTS: dict[str, tuple[dict[str, Any], bool]] = {
    "429 retry-after": ({"fault": RATE_LIMIT, "retry_after": 0.05}, False),
    "429 no retry-after": ({"fault": RATE_LIMIT, "retry_after": None}, False),
    "500": ({"fault": SERVER_ERROR}, False),
    "502": ({"fault": BAD_GATEWAY}, False),
    "503": ({"fault": UNAVAILABLE}, False),
    "529 overloaded": ({"fault": OVERLOADED}, False),
    "hang past timeout": ({"fault": HANG, "latency": 2.0}, False),
    "reset mid-body": ({"fault": RESET}, False),
    "malformed JSON": ({"fault": MALFORMED}, False),
    "truncated JSON": ({"fault": TRUNCATED}, False),
    "200 wrong shape": ({"fault": WRONG_SHAPE}, False),
    "400": ({"fault": BAD_REQUEST}, True),
    "401": ({"fault": AUTH}, True),
    "403": ({"fault": FORBIDDEN}, True),
    "404": ({"fault": NOT_FOUND}, True),
}
QUICK_FAULTS = ("429 retry-after", "529 overloaded", "reset mid-body", "200 wrong shape", "401", "400")
PATHS = (*CALL_PATHS, "batch")
ANSWER = "the answer"


@dataclass
class Cell:
    """What one fault did on one path."""

    path: str
    fault: str
    mode: str
    outcome: str = ""
    requests: int = 0
    rows: int = 0
    charged: float = 0.0
    answer_cost: float = 0.0
    problems: tuple[str, ...] = ()


def run(quick: bool) -> Section:
    """Every fault × path × mode (quick: six faults), each checked against the guarantees."""
    section = Section(key="provider_faults", title="Provider faults on every call path")
    faults = QUICK_FAULTS if quick else tuple(FAULTS)
    with timed(section), provider_world(timeout_s=1.0) as world:
        cells = [
            run_cell(world, path, fault, mode) for fault in faults for path in PATHS for mode in ("once", "always")
        ]
    section.headers = ["fault", "mode", *PATHS]
    section.rows = [_row(cells, fault, mode) for fault in faults for mode in ("once", "always")]
    for cell in cells:
        for problem in cell.problems:
            section.failures.append(f"{cell.fault} ({cell.mode}) on {cell.path}: {problem}")
    section.summary = _summary(cells)
    return section


def run_cell(world: World, path: str, fault: str, mode: str) -> Cell:
    """Script ``fault`` (once or always), send one call through ``path`` and check what happened."""
    world.fake.reset()
    world.new_store()  # no health, budget or cache left by an earlier cell
    cell = Cell(path=path, fault=fault, mode=mode)
    dag_id = f"faults-{PATHS.index(path)}-{list(FAULTS).index(fault)}-{mode}"
    if path == "batch":
        return _batch_cell(world, cell, dag_id)
    fields, _ = FAULTS[fault]
    faulty = "anthropic" if path.startswith("routed") else None
    world.fake.add_rule(Rule(provider=faulty, times=1 if mode == "once" else None, **fields))
    world.fake.add_rule(Rule(text=ANSWER))
    cell.outcome = _invoke(path, world, dag_id)
    _measure(world, cell, dag_id)
    cell.problems = tuple(_problems(cell))
    return cell


def _invoke(path: str, world: World, dag_id: str) -> str:
    try:
        send(path, world.store_conn, dag_id, budget={"per_day_usd": 5})
    except Exception as error:
        return outcome(error, answered="success")
    return "success"


def _measure(world: World, cell: Cell, dag_id: str) -> None:
    store = world.store()
    rows = store.attempts(dag_id=dag_id)
    cell.requests = world.requests()
    cell.rows = len(rows)
    cell.answer_cost = sum(float(row["cost_usd"] or 0) for row in rows if row["status"] == "success")
    cell.charged = world.charged(dag_id)


def _problems(cell: Cell) -> list[str]:
    """The guarantees this cell broke."""
    fatal = FAULTS[cell.fault][1]
    routed = cell.path.startswith("routed")
    expected = _expected(fatal, routed, cell.mode)
    problems = []
    if cell.outcome != expected:
        problems.append(f"ended {cell.outcome}, expected {expected}")
    if fatal and cell.requests != 1:
        problems.append(f"a fatal error was retried: {cell.requests} requests")
    if cell.rows != cell.requests:
        problems.append(f"{cell.rows} analytics rows for {cell.requests} requests")
    if abs(cell.charged - cell.answer_cost) > 1e-9:
        problems.append(f"budget charged {cell.charged:.6f} USD for answers costing {cell.answer_cost:.6f} USD")
    return problems


def _expected(fatal: bool, routed: bool, mode: str) -> str:
    if fatal:
        return "fatal"
    return "success" if mode == "once" or routed else "retry"  # routed: the next model answers


# -- batches -----------------------------------------------------------------------------------------------------
def _batch_cell(world: World, cell: Cell, dag_id: str) -> Cell:
    """A batch of three items, one of them faulty: that item errs (uncharged), the others succeed, and recording the
    results twice (a retry that re-attaches) leaves one row per item. Batches have no "once": an item is answered
    once, inside the provider."""
    if cell.mode == "once":
        cell.outcome = "n/a"
        return cell
    fields = {key: value for key, value in FAULTS[cell.fault][0].items() if key != "latency"}
    world.fake.batch_delay = 0.05
    world.fake.add_rule(Rule(match="poison", **fields))
    items = run_batch(["a", "poison b", "c"])
    cell.outcome = "item errored" if [item.status for item in items] == ["succeeded", "errored", "succeeded"] else (
        "items " + ",".join(item.status for item in items)
    )  # fmt: skip
    record_batch(world.store_conn, dag_id, items)
    record_batch(world.store_conn, dag_id, items)  # a retry that re-attaches records them again
    cell.requests, cell.rows = len(items), len(world.store().attempts(dag_id=dag_id))
    cell.answer_cost = sum(item.cost_usd or 0 for item in items)
    problems = [] if cell.outcome == "item errored" else [f"ended {cell.outcome}, expected the faulty item errored"]
    if cell.rows != cell.requests:
        problems.append(f"{cell.rows} analytics rows for {cell.requests} items")
    if items[1].cost_usd:
        problems.append(f"the errored item cost {items[1].cost_usd} USD")
    cell.problems = tuple(problems)
    return cell


# -- the table ---------------------------------------------------------------------------------------------------
def _row(cells: list[Cell], fault: str, mode: str) -> list[object]:
    by_path = {cell.path: cell for cell in cells if cell.fault == fault and cell.mode == mode}
    return [fault, mode, *(_show(by_path[path]) for path in PATHS)]


def _show(cell: Cell) -> str:
    if cell.outcome == "n/a":
        return "—"
    mark = "" if not cell.problems else " **BROKEN**"
    return f"{cell.outcome}: {cell.requests} req, {cell.rows} rows{mark}"


def _summary(cells: list[Cell]) -> str:
    ran = [cell for cell in cells if cell.outcome != "n/a"]
    requests = sum(cell.requests for cell in ran)
    rows = sum(cell.rows for cell in ran)
    fatal = [c for c in ran if FAULTS[c.fault][1] and c.path != "batch"]
    return (
        f"{len(ran)} cells ({len({c.fault for c in ran})} faults × {len(PATHS)} paths, sent once and always; a batch "
        f"item is answered once, so batches have one mode). {requests} requests reached the fake provider and "
        f"{rows} analytics rows were recorded. {len(fatal)} fatal-fault cells sent "
        f"{sum(c.requests for c in fatal)} requests (one each: never retried). Each cell reads "
        f"`outcome: requests, rows`; `retry` means the try failed with a retryable error after {MAX_ATTEMPTS} "
        "attempts, so Airflow's retry takes over. The budget was charged exactly the answers' cost in every cell "
        "unless listed below.\n\n" + __doc__.split("\n\n", 2)[2]
    )
