"""Where the analytics store lives: a PostgreSQL database (an Airflow connection through the Postgres provider, or a
URL) or a SQLite file, as a :class:`StoreTarget` that opens it; and the store's error classes.

Without the connection ``supervisor_analytics`` the store is a SQLite file at ``$SUPERVISOR_ANALYTICS_SQLITE``, else
``$AIRFLOW_HOME/supervisor_analytics.db``. A target's description is safe to log; its ``scrub`` removes every form
of the password from a driver's message.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from supervisor_lib.exceptions import SupervisorError
from supervisor_lib.store.schema import Dialect

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
#: SQLite busy timeout: how long a writer waits for another process's write lock
BUSY_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_MS = 5_000
#: the views group tens of thousands of (day, DAG) cells over long ranges, which the server's default work_mem (4 MB)
#: sorts or hashes on disk; the store's sessions are few, so a larger per-operation allowance is cheap
WORK_MEM = "32MB"
_PG_OPTIONS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c work_mem={WORK_MEM}"


class StoreError(SupervisorError):
    """The analytics store is misconfigured: an unsupported connection type, a SQLite connection with no file."""


class StoreUnavailableError(StoreError):
    """The store could not be reached, or a statement failed; the next call tries again (after a pause)."""


@dataclass(frozen=True)
class StoreTarget:
    """How to open a store's database: its dialect, a connect function and a description safe to log."""

    dialect: Dialect
    description: str
    connect: Callable[[], Any] = field(repr=False, compare=False)
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def scrub(self, text: str) -> str:
        """``text`` with every form of the password replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``, or Airflow's own default ``~/airflow``."""
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def default_sqlite_path() -> Path:
    """The SQLite file used when the connection does not exist."""
    explicit = os.environ.get("SUPERVISOR_ANALYTICS_SQLITE")
    return Path(explicit).expanduser() if explicit else airflow_home() / "supervisor_analytics.db"


def _secret_forms(password: str | None) -> tuple[str, ...]:
    return tuple({password, quote(password, safe="")}) if password else ()


def _connect_sqlite(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: statements autocommit unless we BEGIN, so transactions are explicit and short
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        _use_wal(conn)  # readers never block the writers of other worker processes
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per commit
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    # Setting the journal mode needs a lock SQLite does not wait for (the busy timeout does not apply): while another
    # process creates or migrates the file it fails at once with "database is locked", so wait for it here.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def sqlite_target(path: str | os.PathLike[str]) -> StoreTarget:
    """A store in the SQLite file ``path`` (its directory is created if missing)."""
    path = os.path.expanduser(os.fspath(path))
    return StoreTarget("sqlite", f"sqlite:///{path}", partial(_connect_sqlite, path))


def _postgres_url_target(url: str) -> StoreTarget:
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else None
    params: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "options": _PG_OPTIONS}
    params |= {"host": parts.hostname, "port": parts.port, "dbname": parts.path.lstrip("/") or None}
    params |= {"user": unquote(parts.username) if parts.username else None, **dict(parse_qsl(parts.query))}
    params = {key: value for key, value in params.items() if value is not None}

    def connect() -> Any:
        import psycopg2

        return psycopg2.connect(password=password, **params)

    where = f"{params.get('host', '')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    return StoreTarget("postgresql", f"postgresql://{params.get('user', '')}@{where}", connect, _secret_forms(password))


def target_for_url(url: str) -> StoreTarget:
    """A store target from ``postgresql[+driver]://user:pw@host:port/db`` or ``sqlite:///path``."""
    scheme, _, rest = url.partition("://")
    dialect = scheme.split("+", 1)[0].lower()
    if dialect == "sqlite":
        return sqlite_target(rest[1:] if rest.startswith("/") else rest)
    if dialect in ("postgresql", "postgres"):
        return _postgres_url_target(url)
    raise StoreError(f"unsupported analytics store URL scheme {scheme!r}: use postgresql://... or sqlite:///...")


def _postgres_hook_target(conn: Any) -> StoreTarget:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.log import mask_secret

    if conn.password:
        mask_secret(conn.password)
    extra = conn.extra_dejson
    if "connect_timeout" not in extra:  # a firewalled host must not hold a task for libpq's default of minutes
        conn = copy.copy(conn)
        conn.extra = json.dumps({**extra, "connect_timeout": CONNECT_TIMEOUT_S})
    hook = PostgresHook(postgres_conn_id=conn.conn_id, connection=conn, options=_PG_OPTIONS)
    where = f"{conn.login or ''}@{conn.host or ''}:{conn.port or 5432}/{conn.schema or ''}"
    return StoreTarget(
        "postgresql", f"connection {conn.conn_id!r} (postgres {where})", hook.get_conn, _secret_forms(conn.password)
    )


def target_for_connection(conn_id: str) -> StoreTarget:
    """The store named by the Airflow connection ``conn_id``; the default SQLite file when it does not exist."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        path = default_sqlite_path()
        log.info("no connection %r: the analytics store is the SQLite file %s", conn_id, path)
        return sqlite_target(path)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        return _postgres_hook_target(conn)
    if conn_type == "sqlite":
        if not conn.host:
            raise StoreError(f"connection {conn_id!r} (sqlite) has no host: set it to the database file")
        return sqlite_target(conn.host)
    raise StoreError(
        f"connection {conn_id!r} has conn_type {conn.conn_type!r}; the analytics store needs 'postgres' or 'sqlite'"
    )
