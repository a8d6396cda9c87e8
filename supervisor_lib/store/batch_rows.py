"""The ``batches`` rows of the store: how a retry finds the provider batch an earlier try submitted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from supervisor_lib.store.schema import BATCH_COLUMNS

T = TypeVar("T")

_INSERT_BATCH = (
    f"INSERT INTO batches ({', '.join(BATCH_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in BATCH_COLUMNS)}) ON CONFLICT (provider, batch_id) DO NOTHING"
)
_SELECT_BATCH = (
    f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?"
    " ORDER BY created_at DESC LIMIT 1"
)


class BatchRows:
    """The batch operations of :class:`~supervisor_lib.store.db.Store` (a mixin: it runs on the store's session)."""

    def _run(self, work: Callable[[Any], T], *, transaction: bool = False) -> T:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _adapt(self, values: Iterable[Any]) -> tuple[Any, ...]:
        raise NotImplementedError

    def batch_get(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        """The newest batch one task instance submitted (any try) as a ``batches`` row dict, or ``None``."""

        def work(cur: Any) -> Any:
            cur.execute(self._sql(_SELECT_BATCH), (dag_id, run_id, task_id, map_index))
            return cur.fetchone()

        row = self._run(work)
        if row is None:
            return None
        record = dict(zip(BATCH_COLUMNS, row, strict=True))
        for key in ("created_at", "updated_at"):  # SQLite hands back the ISO text the store wrote
            if isinstance(record[key], str):
                record[key] = datetime.fromisoformat(record[key])
        return record

    def batch_put(
        self,
        *,
        provider: str,
        batch_id: str,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
        try_number: int,
        model: str,
        item_count: int,
        fingerprint: str,
        state: str = "submitted",
        reservation_json: str | None = None,
    ) -> bool:
        """Remember a batch just submitted; return whether it was new (re-putting the same batch is a no-op).

        :param fingerprint: identifies the batch's requests, so a retry with other prompts does not re-attach.
        :param reservation_json: the budget reservation the batch holds until its results are in (JSON).
        """
        now = datetime.now(UTC)
        values = (provider, batch_id, dag_id, run_id, task_id, map_index, try_number, model, item_count, fingerprint)

        def work(cur: Any) -> bool:
            cur.execute(self._sql(_INSERT_BATCH), self._adapt((*values, state, now, now, reservation_json)))
            return bool(cur.rowcount)

        return self._run(work)

    def batch_update(self, provider: str, batch_id: str, *, state: str) -> bool:
        """Set a batch's ``state`` (e.g. ``ended``, ``canceled``); return whether the batch was known."""
        sql = "UPDATE batches SET state = ?, updated_at = ? WHERE provider = ? AND batch_id = ?"

        def work(cur: Any) -> bool:
            cur.execute(self._sql(sql), self._adapt((state, datetime.now(UTC), provider, batch_id)))
            return bool(cur.rowcount)

        return self._run(work)
