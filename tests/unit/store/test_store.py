"""The analytics store on SQLite and PostgreSQL: migrations, writes, the response cache, connections, secrets."""

from __future__ import annotations

import json
import multiprocessing
import traceback
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from supervisor_lib.store import Store, StoreError, StoreUnavailableError, get_store
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS, MIGRATIONS
from tests.support.ports import free_port
from tests.unit.store.conftest import MakeRecord, query

CONN_ENV = "AIRFLOW_CONN_SUPERVISOR_ANALYTICS"
PASSWORD = "pw-canary/7f3a 9c1e@5b2d"  # URL-special characters: the encoded form must be scrubbed too


def _versions(url: str) -> list[int]:
    return [int(row[0]) for row in query(url, "SELECT version FROM supervisor_schema_version ORDER BY version")]


# -- migrations --------------------------------------------------------------------------------------------------
def test_migrate_applies_every_migration_once(store: Store, store_url: str) -> None:
    all_versions = [migration.version for migration in MIGRATIONS]
    assert all_versions == sorted(set(all_versions)), "migrations must be strictly increasing"

    assert store.migrate() == all_versions
    assert store.migrate() == []
    assert Store.from_url(store_url).migrate() == []
    assert _versions(store_url) == all_versions


def test_first_use_migrates_lazily(store: Store) -> None:
    assert store.attempts() == []
    assert store.migrate() == []


def _migrate_at_once(url: str, barrier: Barrier, results: Queue[list[int] | str]) -> None:
    store = Store.from_url(url)
    barrier.wait()
    try:
        results.put(store.migrate())
    except Exception as exc:
        results.put(repr(exc))


def test_concurrent_migrations_apply_each_version_once(store_url: str) -> None:
    processes = 4
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(processes), context.Queue()
    children = [context.Process(target=_migrate_at_once, args=(store_url, barrier, results)) for _ in range(processes)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=10)

    assert all(isinstance(outcome, list) for outcome in outcomes), outcomes
    applied = sorted(version for outcome in outcomes for version in outcome)
    assert applied == [migration.version for migration in MIGRATIONS]
    assert _versions(store_url) == applied


# -- call attempts -----------------------------------------------------------------------------------------------
def test_insert_ignores_a_duplicate_call_id(store: Store, make_record: MakeRecord) -> None:
    first, second = make_record(1), make_record(2)

    assert store.insert_attempts([first.to_row()]) == 1
    assert store.insert_attempts([first.to_row()]) == 0
    assert store.insert_attempts([first.to_row(), second.to_row()]) == 1
    assert [row["call_id"] for row in store.attempts()] == [first.call_id, second.call_id]


def test_attempts_round_trip_types_and_filters(store: Store, make_record: MakeRecord) -> None:
    records = [
        make_record(1, deferred=True, cost_usd=None, status="error", error_type="RetryableError"),
        make_record(2, run_id="manual__2", team="docs", request_id="req_1", cache_read_tokens=900),
        make_record(3, dag_id="other"),
    ]
    store.insert_attempts([record.to_row() for record in records])

    rows = store.attempts(dag_id="nightly")
    assert [set(row) for row in rows] == [set(CALL_ATTEMPT_COLUMNS)] * 2
    assert rows[0] == {**records[0].to_row(), "started_at": records[0].started_at}
    assert rows[0]["deferred"] is True and rows[0]["cost_usd"] is None
    assert rows[1]["started_at"] == datetime(2025, 3, 1, 12, 0, 2, 123456, tzinfo=UTC)
    assert rows[1]["tags"] == "nightly,docs" and rows[1]["deferred"] is False
    assert [row["run_id"] for row in store.attempts(dag_id="nightly", run_id="manual__2")] == ["manual__2"]
    assert len(store.attempts()) == 3


def _postgres_connection(pg_url: str, **fields: object) -> str:
    parts = urlsplit(pg_url)
    connection = {"conn_type": "postgres", "host": parts.hostname, "port": parts.port, "login": parts.username}
    return json.dumps({**connection, "schema": parts.path.lstrip("/"), **fields})


@pytest.mark.postgres
@pytest.mark.parametrize("opened_by", ["url (psycopg2)", "connection (PostgresHook, psycopg 3)"])
def test_a_dead_connection_is_replaced_transparently(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, make_record: MakeRecord, opened_by: str
) -> None:
    monkeypatch.setenv(CONN_ENV, _postgres_connection(pg_url))
    store = Store.from_url(pg_url) if opened_by.startswith("url") else Store()
    store.insert_attempts([make_record(1).to_row()])
    admin = psycopg2.connect(pg_url.replace("+psycopg2", ""))
    admin.autocommit = True
    with admin.cursor() as cur:  # what a server restart does to every open session
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    admin.close()

    assert store.insert_attempts([make_record(2).to_row(), make_record(3).to_row()]) == 2
    assert len(store.attempts()) == 3
    store.close()


# -- response cache ----------------------------------------------------------------------------------------------
def test_cache_put_is_insert_if_absent(store: Store) -> None:
    response = {"text": "hello", "usage": {"input_tokens": 3}, "cost_usd": None}

    assert store.cache_get("k1") is None
    assert store.cache_put("k1", "nightly", "manual__1", "anthropic", "claude-sonnet-4-5", response) is True
    assert store.cache_put("k1", "nightly", "manual__1", "anthropic", "claude-sonnet-4-5", {"text": "new"}) is False
    assert store.cache_get("k1") == response
    assert store.cache_get("k2") is None


# -- which database ----------------------------------------------------------------------------------------------
def test_sqlite_connection_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "from-connection.db"
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "sqlite", "host": str(path)}))
    store = Store()

    assert store.dialect == "sqlite"
    assert store.migrate() == [migration.version for migration in MIGRATIONS]
    assert path.exists()
    store.close()


@pytest.mark.postgres
def test_postgres_connection_opens_through_the_postgres_hook(
    monkeypatch: pytest.MonkeyPatch, pg_url: str, make_record: MakeRecord
) -> None:
    monkeypatch.setenv(CONN_ENV, _postgres_connection(pg_url))
    store = Store()

    assert store.insert_attempts([make_record(1).to_row()]) == 1
    assert store.dialect == "postgresql"
    assert "connection 'supervisor_analytics'" in repr(store)
    assert Store.from_url(pg_url).attempts()[0]["call_id"] == make_record(1).call_id
    store.close()


def test_no_connection_uses_the_sqlite_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(CONN_ENV, raising=False)
    monkeypatch.setenv("SUPERVISOR_ANALYTICS_SQLITE", str(tmp_path / "explicit.db"))
    Store().migrate()
    assert (tmp_path / "explicit.db").exists()


def test_no_connection_defaults_to_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONN_ENV, raising=False)
    monkeypatch.delenv("SUPERVISOR_ANALYTICS_SQLITE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    store = Store()
    store.migrate()
    assert repr(store) == f"Store('supervisor_analytics', sqlite:///{tmp_path / 'supervisor_analytics.db'})"


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({"conn_type": "mysql", "host": "db"}, "conn_type 'mysql'; the analytics store needs 'postgres' or 'sqlite'"),
        ({"conn_type": "sqlite"}, "has no host: set it to the database file"),
    ],
)
def test_a_wrong_connection_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, connection: dict[str, str], message: str
) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps(connection))
    with pytest.raises(StoreError, match=message):
        Store().migrate()


def test_urls_accept_driver_suffixes_and_reject_other_schemes(tmp_path: Path) -> None:
    assert Store.from_url("postgresql+psycopg2://u@h:5433/db").dialect == "postgresql"
    assert "postgresql://u@h:5433/db" in repr(Store.from_url("postgres://u:secret@h:5433/db"))
    assert Store.from_url(f"sqlite:///{tmp_path / 'x.db'}").dialect == "sqlite"
    with pytest.raises(StoreError, match="unsupported analytics store URL scheme 'mysql'"):
        Store.from_url("mysql://u:secret@h/db")


def test_get_store_shares_one_store_per_connection_id() -> None:
    assert get_store("analytics_a") is get_store("analytics_a")
    assert get_store("analytics_a") is not get_store("analytics_b")


# -- secrets -----------------------------------------------------------------------------------------------------
def _assert_secret_free(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    shown = "".join(traceback.format_exception(error)) + caplog.text + repr(error)
    assert PASSWORD not in shown
    assert "pw-canary%2F7f3a%209c1e%405b2d" not in shown


def test_password_of_a_postgres_connection_never_shows_in_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": free_port(), "login": "u", "schema": "db"}
    monkeypatch.setenv(CONN_ENV, json.dumps({**connection, "password": PASSWORD}))
    store = Store()

    with pytest.raises(StoreUnavailableError, match="Connection refused") as refused:
        store.migrate()
    _assert_secret_free(refused.value, caplog)
    with pytest.raises(StoreUnavailableError, match="next try in") as fast:  # the store now fails fast
        store.attempts()
    _assert_secret_free(fast.value, caplog)
    assert PASSWORD not in repr(store)


def test_password_echoed_by_the_driver_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    def echo(*args: object, **kwargs: object) -> None:
        raise psycopg2.OperationalError(f"bad conninfo password={PASSWORD} (or pw-canary%2F7f3a%209c1e%405b2d)")

    monkeypatch.setattr(psycopg2, "connect", echo)
    monkeypatch.setattr(PostgresHook, "get_conn", echo)
    connection = {"conn_type": "postgres", "host": "h", "login": "u", "password": PASSWORD}
    monkeypatch.setenv(CONN_ENV, json.dumps(connection))
    from_url = Store.from_url(f"postgresql://u:{'pw-canary%2F7f3a%209c1e%405b2d'}@h/db")

    for store in (Store(), from_url):
        with pytest.raises(StoreUnavailableError, match=r"password=\*\*\*") as echoed:
            store.migrate()
        _assert_secret_free(echoed.value, caplog)
        assert PASSWORD not in repr(store)


def test_spend_usd_sums_one_task_instance_across_tries(store_url: str, make_record: Any) -> None:
    from supervisor_lib.store import Store

    store = Store.from_url(store_url)
    rows = [
        make_record(call_id="a1", task_id="t", try_number=1, cost_usd=0.25),
        make_record(call_id="a2", task_id="t", try_number=2, cost_usd=0.5),
        make_record(call_id="a3", task_id="t", try_number=2, attempt=2, cost_usd=None),
        make_record(call_id="b1", task_id="other", cost_usd=9.0),
        make_record(call_id="c1", task_id="t", map_index=3, cost_usd=7.0),
    ]
    store.insert_attempts([r.to_row() for r in rows])
    first = rows[0]
    assert store.spend_usd(dag_id=first.dag_id, run_id=first.run_id, task_id="t") == 0.75
    assert store.spend_usd(dag_id=first.dag_id, run_id=first.run_id, task_id="t", map_index=3) == 7.0
    assert store.spend_usd(dag_id=first.dag_id, run_id="nope", task_id="t") == 0.0
