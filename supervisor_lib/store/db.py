"""The analytics store: the SQL database (PostgreSQL or SQLite) that holds every model-call attempt.

Which database: the Airflow connection ``supervisor_analytics`` — ``conn_type`` ``postgres`` (opened through the
Postgres provider's ``PostgresHook``) or ``sqlite`` (the file is the connection's ``host``). Without that
connection: a SQLite file at ``$SUPERVISOR_ANALYTICS_SQLITE``, else ``$AIRFLOW_HOME/supervisor_analytics.db``
(:mod:`~supervisor_lib.store.targets`).
:meth:`Store.from_url` opens a SQLAlchemy-style URL directly, for tests and tools.

A store keeps one DB connection per process (:func:`get_store`), opened on first use and migrated then
(:mod:`~supervisor_lib.store.schema`). Every operation is one short transaction. After an error the connection
is dropped and reopened on the next call; after a failed *connect*, or an operation that overran its client-side
deadline (:mod:`~supervisor_lib.store.deadline`: a store that froze after connecting), the store answers
:class:`StoreUnavailableError` at once for :data:`RETRY_AFTER_S`, so a down store costs its callers nothing.
Errors never contain the store's password: driver messages are scrubbed and not chained.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, TypeVar

from supervisor_lib.store import intents, writes
from supervisor_lib.store.batch_rows import BatchRows
from supervisor_lib.store.cursor import StoreCursor
from supervisor_lib.store.deadline import STORE_DEADLINE_S, DeadlineWorker, Overrun
from supervisor_lib.store.schema import (
    CALL_ATTEMPT_COLUMNS,
    RESPONSE_CACHE_COLUMNS,
    Dialect,
    apply_pending,
)
from supervisor_lib.store.targets import (
    StoreError,
    StoreTarget,
    StoreUnavailableError,
    target_for_connection,
    target_for_url,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CONN_ID = "supervisor_analytics"
#: after a failed connect, fail fast for this long before trying again
RETRY_AFTER_S = 30.0

_INSERT_ATTEMPT = (
    f"INSERT INTO call_attempts ({', '.join(CALL_ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CALL_ATTEMPT_COLUMNS)}) ON CONFLICT (call_id) DO NOTHING"
)
_INSERT_CACHE = (
    f"INSERT INTO response_cache ({', '.join(RESPONSE_CACHE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RESPONSE_CACHE_COLUMNS)}) ON CONFLICT (cache_key) DO NOTHING"
)


def _iso(value: datetime) -> str:
    """UTC ISO-8601 text with a fixed shape, so SQLite orders and compares it correctly."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


class Store(BatchRows):
    """The analytics store (see the module docstring); thread-safe, one DB connection per instance and process.

    :param conn_id: the Airflow connection naming the database; also the store's name (spool files use it).
    :param target: an already-resolved database (see :meth:`from_url`); by default ``conn_id`` is read on first use.
    """

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, *, target: StoreTarget | None = None) -> None:
        self.name = conn_id
        self._target = target
        self._conn: Any = None
        self._cur: Any = None
        self._pid = 0
        self._orphans: list[Any] = []
        self._migrated = False
        self._down_until = 0.0
        self._last_error = ""
        self._lock = threading.RLock()
        self._worker = DeadlineWorker(conn_id)
        self._generation = 0  # bumped when a frozen operation is abandoned: its thread must not touch new state

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> Store:
        """A store on ``postgresql://user:pw@host:port/db`` (``+psycopg2`` accepted) or ``sqlite:///path``.

        :param name: the store's name for spool files; by default derived from the URL (without its password).
        """
        target = target_for_url(url)
        return cls(name or "url-" + sha256(target.description.encode()).hexdigest()[:12], target=target)

    def __repr__(self) -> str:
        where = self._target.description if self._target else "not opened yet"
        return f"Store({self.name!r}, {where})"

    @property
    def dialect(self) -> Dialect:
        """``postgresql`` or ``sqlite`` (reads the connection if not done yet)."""
        with self._lock:
            return self._resolve().dialect

    # -- public operations ----------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the missing migrations; return the versions applied now (``[]`` when up to date).

        Idempotent, and safe when several processes start at once: PostgreSQL serializes them with an advisory
        lock, SQLite with ``BEGIN IMMEDIATE``. Called lazily by the first operation of each process.
        """
        with self._lock:
            applied = self._session(self._apply_migrations, transaction=True)
            self._migrated = True
            return applied

    def insert_attempts(
        self, rows: Sequence[Mapping[str, Any]], transcripts: Mapping[str, Mapping[str, Any]] | None = None
    ) -> int:
        """Insert ``call_attempts`` rows (see ``CallRecord.to_row``) in one transaction; return how many were new.

        A row whose ``call_id`` is already stored is skipped, so replaying a write never duplicates it. Each new
        row adds to the rollups (:mod:`~supervisor_lib.store.rollups`) in the same transaction, and its transcript
        (``transcripts[call_id]``, when given) is kept beside it. On PostgreSQL a single row takes one round trip.
        """
        if not rows:
            return 0
        transcripts = transcripts or {}
        if len(rows) == 1 and self.dialect == "postgresql":
            row = rows[0]
            sql, params = writes.insert_one_postgresql(row, transcripts.get(row["call_id"]))
            return int(self._run(lambda cur: self._fetch_count(cur, sql, params)))

        def work(cur: Any) -> int:
            new = 0
            for row in rows:
                cur.execute(self._sql(_INSERT_ATTEMPT), self._adapt(row[column] for column in CALL_ATTEMPT_COLUMNS))
                inserted = cur.rowcount == 1
                cur.execute(self._sql(intents.DELETE_SQL), (row["call_id"],))  # it is in flight no more
                if inserted:
                    new += 1
                    for sql, params in writes.rollup_statements(row, transcripts.get(row["call_id"]), self.dialect):
                        cur.execute(sql, self._adapt(params))
            return new

        return self._run(work, transaction=True)

    def intend(self, row: Mapping[str, Any], delay_s: float = 0.0) -> Any:
        """Write the intent of an attempt about to be sent (:mod:`~supervisor_lib.store.intents`) in ``delay_s``
        seconds, without waiting: it runs on the store's worker while the request is in flight. Returns what to
        ``cancel()`` when the answer is back first (``None`` when skipped). Best effort: a down store skips it."""
        if time.monotonic() < self._down_until:
            return None
        values = [row[column] for column in intents.INTENT_COLUMNS]

        def work(cur: Any) -> None:
            cur.execute(self._sql(intents.INSERT_SQL), self._adapt(values))

        try:
            return self._worker.submit_later(lambda: self._run_now(work, False), delay_s)
        except Overrun:
            return None

    @staticmethod
    def _fetch_count(cur: Any, sql: str, params: Sequence[Any]) -> int:
        cur.execute(sql, tuple(params))
        return int(cur.fetchone()[0])

    def attempts(self, dag_id: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded attempts, oldest first, optionally for one DAG and/or run (for tests and tools)."""
        filters = {name: value for name, value in (("dag_id", dag_id), ("run_id", run_id)) if value is not None}
        where = " WHERE " + " AND ".join(f"{name} = ?" for name in filters) if filters else ""
        sql = f"SELECT {', '.join(CALL_ATTEMPT_COLUMNS)} FROM call_attempts{where} ORDER BY started_at, call_id"

        def work(cur: Any) -> list[dict[str, Any]]:
            cur.execute(self._sql(sql), tuple(filters.values()))
            return [_attempt_dict(row) for row in cur.fetchall()]

        return self._run(work)

    def spend_usd(self, *, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> float:
        """What one task instance (all its tries and attempts) has spent; unknown-price calls count as 0."""

        def work(cur: Any) -> Any:
            cur.execute(
                self._sql(
                    "SELECT COALESCE(SUM(cost_usd), 0) FROM call_attempts"
                    " WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?"
                ),
                (dag_id, run_id, task_id, map_index),
            )
            return cur.fetchone()

        return float(self._run(work)[0])

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """The cached response stored under ``key``, or ``None``."""

        def work(cur: Any) -> Any:
            cur.execute(self._sql("SELECT response_json FROM response_cache WHERE cache_key = ?"), (key,))
            return cur.fetchone()

        row = self._run(work)
        return None if row is None else dict(json.loads(row[0]))

    def cache_put(
        self, key: str, dag_id: str, run_id: str, provider: str, model: str, response: dict[str, Any]
    ) -> bool:
        """Store ``response`` under ``key`` unless a response is already there; return whether it was stored."""
        values = (key, dag_id, run_id, provider, model, json.dumps(response, sort_keys=True), datetime.now(UTC))

        def work(cur: Any) -> bool:
            cur.execute(self._sql(_INSERT_CACHE), self._adapt(values))
            return bool(cur.rowcount)

        return self._run(work)

    # -- the primitive feature modules build on (e.g. supervisor_lib.store.routing_state) ---------------------------
    def run(self, work: Callable[[StoreCursor], T], *, transaction: bool = False) -> T:
        """Run ``work(cursor)`` in one short session; with ``transaction``, inside BEGIN/COMMIT.

        SQLite transactions take the database's write lock at ``BEGIN IMMEDIATE``, so a read-check-write inside
        one is atomic across processes; on PostgreSQL ``work`` locks the rows it checks itself (an upsert or
        ``SELECT ... FOR UPDATE``). Errors surface as :class:`StoreUnavailableError`, like every operation's.
        """
        return self._run(lambda cur: work(StoreCursor(cur, self.dialect, self._sql, self._adapt)),
                         transaction=transaction)  # fmt: skip

    def close(self) -> None:
        """Close this process's DB connection (the next operation opens a new one)."""
        with self._lock:
            self._drop()

    # -- transactions -------------------------------------------------------------------------------------------
    def _run(self, work: Callable[[Any], T], *, transaction: bool = False) -> T:
        """Run ``work(cursor)`` on the store's worker, waiting at most :data:`STORE_DEADLINE_S`."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailableError(f"{self._last_error} (next try in {self._down_until - time.monotonic():.0f}s)")
        try:
            return self._worker.run(lambda: self._run_now(work, transaction), STORE_DEADLINE_S)
        except Overrun as exc:
            raise self._overran(str(exc)) from None

    def _run_now(self, work: Callable[[Any], T], transaction: bool) -> T:
        with self._lock:
            if not self._migrated:
                self._session(self._apply_migrations, transaction=True)
                self._migrated = True
            return self._session(work, transaction=transaction)

    def _overran(self, why: str) -> StoreUnavailableError:
        """Abandon the frozen operation's connection and lock (its thread may hold both) and count as down."""
        where = self._target.description if self._target else f"connection {self.name!r}"
        error = StoreUnavailableError(f"analytics store {where} froze: {why}; treated as down")
        self._generation += 1
        self._lock = threading.RLock()
        self._conn, self._cur, self._migrated = None, None, False
        self._down_until, self._last_error = time.monotonic() + RETRY_AFTER_S, str(error)
        log.warning("%s for %.0fs", error, RETRY_AFTER_S)
        return error

    def _session(self, work: Callable[[Any], T], *, transaction: bool) -> T:
        """Run ``work(cursor)``, inside BEGIN/COMMIT when it runs several statements (connections autocommit).

        If a reused connection turns out dead (the server restarted), retry once on a fresh one.
        """
        generation = self._generation
        for may_retry in (True, False):
            if generation != self._generation:  # this operation was abandoned meanwhile
                raise StoreUnavailableError(f"analytics store {self.name}: an abandoned operation")
            reused = self._conn is not None and self._pid == os.getpid()
            cur = self._cursor()
            try:
                if transaction:  # SQLite: take the write lock now, so two writers never deadlock on upgrade
                    cur.execute("BEGIN IMMEDIATE" if self._resolve().dialect == "sqlite" else "BEGIN")
                result = work(cur)
                if transaction:
                    cur.execute("COMMIT")
                return result
            except Exception as exc:
                if generation != self._generation:  # abandoned: the store has moved on to a new connection
                    raise StoreUnavailableError(f"analytics store {self.name}: an abandoned operation") from None
                stale = may_retry and reused and self._is_broken()
                self._drop()  # closing also rolls back whatever was open
                if not stale:
                    raise self._unavailable(exc) from None
        raise AssertionError("unreachable")

    def _cursor(self) -> Any:
        if self._conn is not None and self._pid == os.getpid():
            return self._cur
        self._drop()
        if time.monotonic() < self._down_until:
            wait = self._down_until - time.monotonic()
            raise StoreUnavailableError(f"{self._last_error} (next try in {wait:.0f}s)")
        try:
            conn = self._resolve().connect()
        except Exception as exc:
            error = self._unavailable(exc)
            self._down_until, self._last_error = time.monotonic() + RETRY_AFTER_S, str(error)
            raise error from None
        if self._resolve().dialect == "postgresql":
            conn.autocommit = True  # one round trip per single-statement write; BEGIN only where needed
        self._conn, self._cur, self._pid = conn, conn.cursor(), os.getpid()
        return self._cur

    def _resolve(self) -> StoreTarget:
        if self._target is None:
            self._target = target_for_connection(self.name)
        return self._target

    def _is_broken(self) -> bool:
        # psycopg2: closed is 2 once the server went away; psycopg 3: closed/broken. SQLite never goes stale.
        return bool(getattr(self._conn, "closed", False) or getattr(self._conn, "broken", False))

    def _drop(self) -> None:
        conn, self._conn, self._cur = self._conn, None, None
        if conn is None:
            return
        if self._pid != os.getpid():
            # inherited over fork: closing it would end the parent's session on the shared socket
            self._orphans.append(conn)
            return
        with suppress(Exception):
            conn.close()

    def _unavailable(self, exc: Exception) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        where = self._target.description if self._target else f"connection {self.name!r}"
        message = f"analytics store {where}: {type(exc).__name__}: {exc}".strip()
        return StoreUnavailableError(self._target.scrub(message) if self._target else message)

    # -- SQL helpers ------------------------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        """Our SQL uses ``?`` placeholders; psycopg wants ``%s``."""
        return sql if self._resolve().dialect == "sqlite" else sql.replace("?", "%s")

    def _adapt(self, values: Iterable[Any]) -> tuple[Any, ...]:
        if self._resolve().dialect == "postgresql":
            return tuple(values)
        return tuple(_iso(value) if isinstance(value, datetime) else value for value in values)

    def _apply_migrations(self, cur: Any) -> list[int]:
        applied = apply_pending(cur, self._resolve().dialect)
        if applied:
            log.info("analytics store %s: applied schema migrations %s", self.name, applied)
        return applied


def _attempt_dict(row: Sequence[Any]) -> dict[str, Any]:
    record = dict(zip(CALL_ATTEMPT_COLUMNS, row, strict=True))
    if isinstance(record["started_at"], str):
        record["started_at"] = datetime.fromisoformat(record["started_at"])
    record["deferred"] = bool(record["deferred"])
    return record


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def get_store(conn_id: str = DEFAULT_CONN_ID) -> Store:
    """This process's store for ``conn_id``: every caller shares its one DB connection."""
    with _shared_lock:
        store = _shared.get(conn_id)
        if store is None:
            store = _shared[conn_id] = Store(conn_id)
        return store
