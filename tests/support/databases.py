"""Pick the test databases: fresh PostgreSQL databases when the local server answers, else SQLite files."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PG_HOST = os.environ.get("SUPERVISOR_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SUPERVISOR_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SUPERVISOR_TEST_PG_USER", "postgres")


@dataclass
class DatabaseChoice:
    """The metadata DB URL and the analytics store URL a test session uses."""

    dialect: str
    airflow_url: str
    analytics_url: str
    reason: str
    created: tuple[str, ...] = ()

    def analytics_connection(self) -> str:
        """The ``supervisor_analytics`` connection (JSON form) for this session's analytics store."""
        import json

        if self.dialect == "postgresql":
            name = self.analytics_url.rsplit("/", 1)[1]
            conn = {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER, "schema": name}
        else:
            conn = {"conn_type": "sqlite", "host": self.analytics_url.removeprefix("sqlite:///")}
        return json.dumps(conn)

    def describe(self) -> str:
        return f"{self.dialect} ({self.reason})"

    def drop(self) -> None:
        for name in self.created:
            admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin_sql(sql: str) -> None:
    """Run one statement as the superuser on the server's ``postgres`` database (autocommit)."""
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _postgres_problem() -> str | None:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            pass
    except OSError as exc:
        return f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {exc}; falling back to SQLite"
    return None


def choose_databases(home: Path) -> DatabaseChoice:
    """Create fresh per-session PostgreSQL databases, or fall back to SQLite files under ``home``."""
    problem = _postgres_problem() if os.environ.get("SUPERVISOR_TEST_DB", "auto") != "sqlite" else "SQLite forced"
    if problem is None:
        suffix = f"{os.getpid()}"
        names = (f"supervisor_it_airflow_{suffix}", f"supervisor_it_analytics_{suffix}")
        try:
            for name in names:
                admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin_sql(f'CREATE DATABASE "{name}"')
        except Exception as exc:  # a server that answers but refuses us: say so and use SQLite
            problem = f"PostgreSQL at {PG_HOST}:{PG_PORT} refused set-up ({exc}); falling back to SQLite"
        else:
            base = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}"
            return DatabaseChoice(
                "postgresql",
                f"{base}/{names[0]}",
                f"{base}/{names[1]}",
                f"server {PG_HOST}:{PG_PORT}, fresh databases for this session",
                names,
            )
    print(f"[tests] {problem}")
    return DatabaseChoice("sqlite", f"sqlite:///{home / 'airflow.db'}", f"sqlite:///{home / 'analytics.db'}", problem)


def fresh_database_url(choice: DatabaseChoice, name: str, sqlite_dir: Path) -> str:
    """Another fresh metadata DB of the session's dialect (dropped with the session's own databases)."""
    if choice.dialect != "postgresql":
        return f"sqlite:///{sqlite_dir / (name + '.db')}"
    full = f"{name}_{os.getpid()}"
    admin_sql(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{full}"')
    choice.created = (*choice.created, full)
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{full}"
