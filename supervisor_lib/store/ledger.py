"""The call runner's view of the analytics store: record attempts, re-use paid responses, read task spend.

One ledger per process and store connection: workers, the triggerer and tests share the store's connection and
the recorder's spool, so recording stays cheap and never fails the task.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from supervisor_lib.exceptions import RetryableError
from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store
from supervisor_lib.store.recorder import CallRecord, call_id, get_recorder

if TYPE_CHECKING:
    from supervisor_lib.execution.runner import CallScope

log = logging.getLogger(__name__)
_ledgers: dict[str, CallLedger] = {}
_lock = threading.Lock()


class CallLedger:
    """Implements :class:`supervisor_lib.execution.runner.CallStore` on the analytics store."""

    def __init__(self, conn_id: str = DEFAULT_CONN_ID) -> None:
        self.store = get_store(conn_id)
        self.recorder = get_recorder(conn_id)
        self._adopted: set[tuple[Any, ...]] = set()

    def record_attempt(self, row: dict[str, Any]) -> None:
        """Record one attempt (spooled locally if the store is down; never raises)."""
        step = row.pop("step", "")
        discriminator = f"{step}:cached" if row["status"] == "cached" else step
        tags = tuple(t for t in (row.pop("tags", None) or "").split(",") if t)
        key = call_id(row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"],
                      row["attempt"], discriminator)  # fmt: skip
        self.recorder.record(CallRecord(call_id=key, tags=tags, **row))

    def intend(self, row: dict[str, Any]) -> Any:
        """Note an attempt about to be sent (:mod:`~supervisor_lib.store.intents`); never raises, never waits.
        Returns what to ``cancel()`` once the attempt is recorded, or ``None``."""
        from supervisor_lib.store.intents import INTENT_DELAY_S, intent_row

        key = call_id(row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["try_number"],
                      row["attempt"], row.get("step", ""))  # fmt: skip
        try:
            return self.store.intend(intent_row({**row, "call_id": key}), INTENT_DELAY_S)
        except Exception as exc:  # best effort: the call goes ahead
            log.debug("attempt intent not written (%s)", exc)
            return None

    def adopt_lost(self, scope: CallScope) -> int:
        """Record the attempts that never came back: of this task instance's earlier tries (once per try), and for a
        deferred call also of this try, run by another triggerer that died. Returns the highest attempt number of
        this try recorded so (the call numbers its own attempts after it)."""
        from supervisor_lib.store.intents import adopt_lost, adopt_rerun

        key = (scope.dag_id, scope.run_id, scope.task_id, scope.map_index, scope.try_number)
        if scope.try_number > 1 and key not in self._adopted:
            self._adopted.add(key)
            adopt_lost(self.store, *key)
        return adopt_rerun(self.store, *key) if scope.deferred else 0

    def cached_response(self, key: str) -> dict[str, Any] | None:
        """A response already paid for, or ``None`` (also when the store cannot be read: the call goes ahead)."""
        try:
            return self.store.cache_get(key)
        except Exception as exc:
            log.warning("response cache unavailable, calling the model (%s)", exc)
            return None

    def cache_response(self, key: str, scope: CallScope, result: dict[str, Any]) -> None:
        try:
            self.store.cache_put(key, scope.dag_id, scope.run_id, str(result["provider"]), str(result["model"]),
                                 result)  # fmt: skip
        except Exception as exc:  # the call succeeded; only a later retry would pay again
            log.warning("could not store the response in the cache (%s)", exc)

    def task_spend_usd(self, scope: CallScope) -> float:
        """What this task instance (all tries, this map index) has spent on model calls so far.

        A budget that cannot be checked is not ignored: an unreadable store is a retryable error.
        """
        try:
            return self.store.spend_usd(
                dag_id=scope.dag_id, run_id=scope.run_id, task_id=scope.task_id, map_index=scope.map_index
            )
        except Exception as exc:
            raise RetryableError(f"{scope.describe()}: budget_usd cannot be checked: analytics store error") from exc


def ledger_for(conn_id: str | None = None) -> CallLedger:
    """This process's ledger for the analytics store ``conn_id`` (default ``supervisor_analytics``)."""
    key = conn_id or DEFAULT_CONN_ID
    with _lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = CallLedger(key)
        return ledger
