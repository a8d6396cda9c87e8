"""Analytics-store fixtures: every store test runs on SQLite (a temp file) and on PostgreSQL (a fresh database).

The PostgreSQL variant is skipped, with the reason, only when the server on 127.0.0.1:5432 is unreachable.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from supervisor_lib.store import CallRecord, Store, call_id
from tests.support.databases import PG_HOST, PG_PORT, PG_USER, admin_sql


@cache
def _postgres_problem() -> str | None:
    try:
        admin_sql("SELECT 1")
    except psycopg2.Error as exc:
        return f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} ({str(exc).strip()})"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if problem := _postgres_problem():
        pytest.skip(problem)
    name = f"supervisor_analytics_test_{uuid.uuid4().hex[:12]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    return str(request.getfixturevalue("pg_url"))


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement on the database at ``url`` with the plain driver, not the store under test."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as lite:
            return list(lite.execute(sql).fetchall())
    conn = psycopg2.connect(url.replace("+psycopg2", ""))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An (unmigrated) store on ``store_url``."""
    opened = Store.from_url(store_url, name="test")
    yield opened
    opened.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


MakeRecord = Callable[..., CallRecord]


@pytest.fixture
def make_record() -> MakeRecord:
    """Build a CallRecord for attempt ``n`` of a fixed task; keyword arguments override any field."""

    def build(n: int = 1, **overrides: Any) -> CallRecord:
        scope: dict[str, Any] = {"dag_id": "nightly", "run_id": "manual__1", "task_id": "summarize"}
        scope |= {key: overrides.pop(key) for key in list(scope) if key in overrides}
        values: dict[str, Any] = {
            "call_id": call_id(scope["dag_id"], scope["run_id"], scope["task_id"], -1, 1, n),
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "task_type": "llm",
            "started_at": datetime(2025, 3, 1, 12, 0, n % 60, 123456, tzinfo=UTC),
            "status": "success",
            "attempt": n,
            "duration_s": 1.25,
            "input_tokens": 1200,
            "output_tokens": 300,
            "cost_usd": 0.0081,
            "tags": ("nightly", "docs"),
        }
        return CallRecord(**{**scope, **values, **overrides})

    return build
