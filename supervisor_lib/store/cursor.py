"""``StoreCursor``: the cursor :meth:`Store.run` hands to feature modules (routing state, ...).

SQL is written once for both dialects, with ``?`` placeholders; datetimes go in as aware values on both (SQLite
stores the store's fixed-shape UTC text, which compares correctly) and come out as either, so readers use
:func:`as_datetime`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from supervisor_lib.store.schema import Dialect


class StoreCursor:
    """A thin wrapper over a DB-API cursor: ``?`` placeholders and datetime parameters on both dialects."""

    def __init__(
        self,
        cursor: Any,
        dialect: Dialect,
        sql: Callable[[str], str],
        adapt: Callable[[Iterable[Any]], tuple[Any, ...]],
    ) -> None:
        self._cur, self.dialect, self._sql, self._adapt = cursor, dialect, sql, adapt

    def execute(self, sql: str, params: Sequence[Any] = ()) -> StoreCursor:
        self._cur.execute(self._sql(sql), self._adapt(params))
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> StoreCursor:
        self._cur.executemany(self._sql(sql), [self._adapt(row) for row in rows])
        return self

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column's value as an aware UTC datetime (SQLite returns the ISO text the store wrote)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
