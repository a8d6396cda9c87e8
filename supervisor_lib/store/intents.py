"""Attempts in flight, so that one whose process died mid-call is still counted.

A model call is recorded when its answer (or error) is back. A worker SIGKILLed while it waits, a triggerer that
dies with calls in flight, a machine that goes away: the provider received the request, may have billed it, and
no row says so. So before each request is sent its *intent* is written (``call_intents``, the attempt's
``call_id`` and where it runs), without waiting for the write (it happens on the store's worker thread while the
request is in flight); recording the attempt deletes the intent in the same statement. An intent that outlives
its process is a **lost attempt**: it is recorded as a failed attempt (``error_type`` ``AttemptLost``, cost
unknown), either when the task's next try starts (:func:`adopt_lost`, for that task instance's earlier tries), when
another triggerer runs a deferred call again in the same try (:func:`adopt_rerun`), or by the anomaly scan for
intents older than :data:`LOST_AFTER` (a task that was not retried).

The intent is written :data:`INTENT_DELAY_S` after the request leaves, and not at all when the answer is back
first: a fast call costs nothing, and a call the provider holds for longer is covered. So the analytics rows
reconcile with the provider's request log: one row per attempt that was sent, except one whose process died within
:data:`INTENT_DELAY_S` of sending it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor_lib.store.db import Store
    from supervisor_lib.store.recorder import CallRecord

log = logging.getLogger(__name__)

INTENT_COLUMNS = ("call_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "attempt", "provider", "model",
                  "task_type", "team", "tags", "deferred", "started_at", "host", "pid")  # fmt: skip
#: how long after sending a request its intent is written (``SUPERVISOR_INTENT_DELAY_S``); an answer that is back
#: sooner cancels it, so fast calls write nothing
INTENT_DELAY_S = float(os.environ.get("SUPERVISOR_INTENT_DELAY_S", "1.0"))
#: an intent older than this is lost even if no later try adopted it (longer than any call may take)
LOST_AFTER = timedelta(hours=2)
LOST_ERROR = "AttemptLost"
LOST_MESSAGE = ("the process running this call stopped before its answer was recorded (killed, or its machine went "
                "away); the provider may have answered and billed it")  # fmt: skip
INSERT_SQL = (f"INSERT INTO call_intents ({', '.join(INTENT_COLUMNS)})"
              f" VALUES ({', '.join('?' for _ in INTENT_COLUMNS)}) ON CONFLICT (call_id) DO NOTHING")  # fmt: skip
DELETE_SQL = "DELETE FROM call_intents WHERE call_id = ?"


def intent_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``call_intents`` row of an attempt about to be sent (``record``: its ``call_attempts`` fields)."""
    row = {name: record.get(name) for name in INTENT_COLUMNS}
    row.update(deferred=int(bool(record.get("deferred"))), host=socket.gethostname()[:200], pid=os.getpid(),
               tags=record.get("tags") or None)  # fmt: skip
    return row


def lost_records(rows: list[dict[str, Any]]) -> list[CallRecord]:
    """The failed attempts that stand for ``rows`` of ``call_intents``."""
    from supervisor_lib.store.cursor import as_datetime
    from supervisor_lib.store.recorder import CallRecord

    found = []
    for row in rows:
        started = as_datetime(row["started_at"]) or datetime.now(UTC)
        found.append(CallRecord(
            call_id=row["call_id"], dag_id=row["dag_id"], run_id=row["run_id"], task_id=row["task_id"],
            map_index=row["map_index"], try_number=row["try_number"], attempt=row["attempt"],
            provider=row["provider"], model=row["model"], task_type=row["task_type"], started_at=started,
            status="error", error_type=LOST_ERROR, error_message=f"{LOST_MESSAGE} (on {row['host']}, pid {row['pid']})",
            team=row["team"], tags=tuple(t for t in (row["tags"] or "").split(",") if t),
            deferred=bool(row["deferred"]), outcome="failed", cost_basis="unpriced", cost_usd=None,
        ))  # fmt: skip
    return found


def adopt_lost(store: Store, dag_id: str, run_id: str, task_id: str, map_index: int, before_try: int) -> int:
    """Record as lost the intents of this task instance's tries before ``before_try`` (a retry starts: the earlier
    try's process is gone). Returns how many; never raises (a down store adopts them later, in the scan)."""
    try:
        return _record(store, _task_intents(store, (dag_id, run_id, task_id, map_index), "<", before_try))
    except Exception as exc:  # never fails the retry that asked
        log.warning("could not look for lost attempts of %s.%s (%s); the anomaly scan will", dag_id, task_id, exc)
        return 0


def adopt_rerun(store: Store, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> int:
    """Record as lost the intents of this same try written by another process: a deferred call whose triggerer
    died is run again by another triggerer, in the same try. Returns the highest attempt number among them (the
    re-run numbers its attempts after it, so each has its own row), 0 when there is none; never raises."""
    me = (intent_row({})["host"], os.getpid())
    try:
        rows = _task_intents(store, (dag_id, run_id, task_id, map_index), "=", try_number)
        others = [row for row in rows if (row["host"], row["pid"]) != me]
        _record(store, others)
        return max((int(row["attempt"]) for row in others), default=0)
    except Exception as exc:  # never fails the call that asked
        log.warning("could not look for lost attempts of %s.%s (%s); the anomaly scan will", dag_id, task_id, exc)
        return 0


def _task_intents(store: Store, task: tuple[str, str, str, int], compare: str, try_number: int) -> list[dict[str, Any]]:
    """The intents of one task instance whose try number is ``compare`` (``<`` or ``=``) ``try_number``."""
    return _select(store, "dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? AND try_number "
                          f"{compare} ?", (*task, try_number))  # fmt: skip


def _select(store: Store, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(INTENT_COLUMNS)} FROM call_intents WHERE {where} ORDER BY started_at LIMIT 10000"
    return store.run(lambda cur: [dict(zip(INTENT_COLUMNS, row, strict=True))
                                  for row in cur.execute(sql, params).fetchall()])  # fmt: skip


def adopt_stale(store: Store, now: datetime | None = None, older_than: timedelta = LOST_AFTER) -> int:
    """Record as lost every intent older than ``older_than`` (the anomaly scan calls it); returns how many."""
    cutoff = (now or datetime.now(UTC)) - older_than
    return _record(store, _select(store, "started_at < ?", (cutoff,)))


def _record(store: Store, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    records = lost_records(rows)
    store.insert_attempts([record.to_row() for record in records])  # deletes the intents in the same transaction
    for record in records:
        log.warning("lost attempt recorded: %s.%s try %d attempt %d on %s/%s: %s", record.dag_id, record.task_id,
                    record.try_number, record.attempt, record.provider, record.model, record.error_message)  # fmt: skip
    return len(records)
