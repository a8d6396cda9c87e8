"""The ``experiment_runs`` rows of the store: what one experiment arm achieved on one task instance.

A supervised coding task that runs as an experiment (``experiment:`` in a spec, see ``docs/experiments.md``) records
one row per arm and task instance when it ends: passed or not, iterations, tokens, cost and wall time. The key is
(experiment, arm, DAG, run, task, map index): a retry replaces its earlier try's row, and rows of every DAG run are
kept, so a report spans days of scheduled runs. The statistics are :mod:`supervisor_lib.analytics.experiments`'.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.schema import EXPERIMENT_RUN_COLUMNS

if TYPE_CHECKING:
    from supervisor_lib.store.db import Store

__all__ = ["ArmOutcome", "arm_runs", "experiment_names", "record_outcome"]

_KEY = "experiment, arm, dag_id, run_id, task_id, map_index"
_UPSERT = (
    f"INSERT INTO experiment_runs ({', '.join(EXPERIMENT_RUN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EXPERIMENT_RUN_COLUMNS)}) ON CONFLICT ({_KEY}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in EXPERIMENT_RUN_COLUMNS if c not in _KEY.split(", "))
)


@dataclass(frozen=True)
class ArmOutcome:
    """One arm's run of one task instance (the fields are the table's columns, in order).

    :param passed: the change was accepted: validation green and, with a reviewer, approved (a report: produced).
    :param status: the task's result status (``passed``, ``failed``, ``rejected``, ``no_changes``) or ``error``.
    :param duration_s: the task's wall time (context, model calls, validation, review).
    """

    experiment: str
    arm: str
    arm_index: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    task_type: str
    provider: str
    model: str | None
    status: str
    passed: bool
    review: str | None
    iterations: int
    tokens: int
    cost_usd: float | None
    duration_s: float
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(EXPERIMENT_RUN_COLUMNS, astuple(self), strict=True))


def record_outcome(store: Store, outcome: ArmOutcome) -> None:
    """Store ``outcome``, replacing an earlier try's row of the same arm and task instance."""
    values = astuple(outcome)

    def work(cur: StoreCursor) -> None:
        cur.execute(_UPSERT, values)

    store.run(work)


def arm_runs(
    store: Store, experiment: str | None = None, *, dag_ids: Collection[str] | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of one experiment (every experiment when ``None``), oldest first.

    :param dag_ids: only these DAGs' rows (``None``: every DAG), for a user who may read some DAGs only.
    :param since: only rows recorded at or after this time.
    """
    where, params = _where(experiment, dag_ids, since)
    sql = f"SELECT {', '.join(EXPERIMENT_RUN_COLUMNS)} FROM experiment_runs{where} ORDER BY recorded_at, arm_index"

    def work(cur: StoreCursor) -> list[dict[str, Any]]:
        return [_row(values) for values in cur.execute(sql, params).fetchall()]

    return store.run(work)


def experiment_names(store: Store, *, dag_ids: Collection[str] | None = None) -> list[str]:
    """The experiments with rows (in DAGs of ``dag_ids`` when given), newest first."""
    where, params = _where(None, dag_ids, None)
    sql = (f"SELECT experiment, MAX(recorded_at) AS last FROM experiment_runs{where}"
           " GROUP BY experiment ORDER BY last DESC")  # fmt: skip

    def work(cur: StoreCursor) -> list[str]:
        return [str(row[0]) for row in cur.execute(sql, params).fetchall()]

    return store.run(work)


def _where(experiment: str | None, dag_ids: Collection[str] | None, since: datetime | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if experiment is not None:
        clauses.append("experiment = ?")
        params.append(experiment)
    if dag_ids is not None:
        if not dag_ids:
            clauses.append("1 = 0")
        else:
            clauses.append(f"dag_id IN ({', '.join('?' for _ in dag_ids)})")
            params.extend(sorted(dag_ids))
    if since is not None:
        clauses.append("recorded_at >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(EXPERIMENT_RUN_COLUMNS, values, strict=True))
    row["passed"] = bool(row["passed"])
    row["recorded_at"] = as_datetime(row["recorded_at"])
    return row
