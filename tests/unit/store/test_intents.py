"""Attempts in flight: a call whose process dies mid-request is still counted, once, as a lost attempt; a call that
comes back leaves no intent behind (both stores; a real process killed with SIGKILL while the provider holds its
request)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supervisor_lib.execution.calls import CallExecutor
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.execution.settings import CallSettings
from supervisor_lib.store import CallRecord, Store
from supervisor_lib.store.intents import LOST_ERROR, adopt_lost, adopt_stale, intent_row
from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import use_fake_provider
from tests.unit.store.conftest import query


def _intent(call: str, try_number: int = 1, started: datetime | None = None) -> dict[str, object]:
    return intent_row({"call_id": call, "dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1,
                       "try_number": try_number, "attempt": 1, "provider": "anthropic", "model": "claude-haiku-4-5",
                       "task_type": "llm", "tags": "a,b", "deferred": False,
                       "started_at": started or datetime.now(UTC)})  # fmt: skip


def _wait_for_intents(url: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while not _table(url) or query(url, "SELECT COUNT(*) FROM call_intents")[0][0] != count:
        assert time.monotonic() < deadline, "the intent was never written"
        time.sleep(0.02)


def _table(url: str) -> bool:
    """The store exists and has ``call_intents`` (a process that just started may not have created it yet)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    try:
        query(url, "SELECT 1 FROM call_intents LIMIT 1")
    except Exception:
        return False
    return True


def test_a_fast_answer_cancels_its_intent_before_it_is_written(store: Store, store_url: str) -> None:
    store.migrate()
    pending = store.intend(_intent("fast"), delay_s=0.5)
    assert pending is not None and pending.cancel()
    store.intend(_intent("slow"), delay_s=0.2)
    _wait_for_intents(store_url, 1)
    assert query(store_url, "SELECT call_id FROM call_intents") == [("slow",)]


def test_an_intent_is_written_without_waiting_and_the_recorded_attempt_removes_it(store: Store, store_url: str) -> None:
    store.migrate()
    store.intend(_intent("c1"))
    _wait_for_intents(store_url, 1)
    row = query(store_url, "SELECT call_id, tags, deferred, host, pid FROM call_intents")[0]
    assert row[:3] == ("c1", "a,b", 0) and row[3] and row[4] == os.getpid()
    answered = CallRecord(call_id="c1", dag_id="d", run_id="r", task_id="t", provider="anthropic",
                          model="claude-haiku-4-5", task_type="llm", started_at=datetime.now(UTC), status="success",
                          cost_usd=0.001)  # fmt: skip
    store.insert_attempts([answered.to_row()])
    assert query(store_url, "SELECT COUNT(*) FROM call_intents") == [(0,)]
    assert _lost_rows(store, adopt_now=True) == []  # nothing in flight: nothing lost


def _lost_rows(store: Store, *, adopt_now: bool) -> list[dict[str, object]]:
    if adopt_now:
        adopt_lost(store, "d", "r", "t", -1, before_try=2)
    return [r for r in store.attempts() if r["error_type"] == LOST_ERROR]


def test_the_next_try_records_an_earlier_tries_intent_as_one_lost_attempt(store: Store, store_url: str) -> None:
    store.migrate()
    store.intend(_intent("c1", try_number=1))
    store.intend(_intent("c2", try_number=2))  # the current try's own call: not lost
    _wait_for_intents(store_url, 2)
    [lost] = _lost_rows(store, adopt_now=True)
    assert (lost["call_id"], lost["status"], lost["outcome"], lost["cost_basis"]) == (
        "c1",
        "error",
        "failed",
        "unpriced",
    )
    assert "stopped before its answer was recorded" in str(lost["error_message"])
    assert adopt_lost(store, "d", "r", "t", -1, before_try=2) == 0  # once only
    assert query(store_url, "SELECT call_id FROM call_intents") == [("c2",)]
    rolled = query(store_url, "SELECT SUM(calls), SUM(unpriced_calls) FROM call_rollups WHERE grain = 'hour'")
    assert [tuple(int(v) for v in r) for r in rolled] == [(1, 1)]  # counted in the views, as a failure


def test_the_scan_records_intents_no_retry_adopted(store: Store, store_url: str) -> None:
    store.migrate()
    now = datetime.now(UTC)
    store.intend(_intent("old", started=now - timedelta(hours=3)))
    store.intend(_intent("recent", started=now - timedelta(minutes=5)))
    _wait_for_intents(store_url, 2)
    assert adopt_stale(store, now) == 1
    assert [r["call_id"] for r in store.attempts()] == ["old"]


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    conn_id = f"intents_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "store.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return conn_id, path


KILLED = """
import asyncio, sys
from supervisor_lib.execution.calls import CallExecutor
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.execution.settings import CallSettings

settings = CallSettings(provider="anthropic", conn_id="anthropic_default", model="claude-haiku-4-5",
                        prompt="Q: slow", max_tokens=64, analytics_conn_id=sys.argv[1])
deferred = sys.argv[2] == "deferred"
call = CallExecutor(settings, CallScope(dag_id="d", run_id="r", task_id="t", try_number=1, deferred=deferred))
asyncio.run(call.arun()) if deferred else call.run()
"""


@pytest.mark.parametrize(
    ("path", "next_try"),
    [("sync", 2),  # a worker killed: Airflow retries the task, a new try
     ("deferred", 1)],  # a triggerer killed: another triggerer runs the same trigger again, in the same try
)  # fmt: skip
def test_a_process_killed_mid_call_is_one_lost_attempt_and_the_next_run_one_more(
    fake_provider: FakeProviderServer, sqlite_conn: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, path: str, next_try: int,
) -> None:  # fmt: skip
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rule(Rule(match="Q: slow", text="too late", latency=60, times=1))
    fake_provider.add_rule(Rule(match="Q: slow", text="in time"))
    script = tmp_path / "call.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    worker = subprocess.Popen([sys.executable, str(script), sqlite_conn[0], path], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while fake_provider.count(path="/v1/messages") == 0:
        assert worker.poll() is None and time.monotonic() < deadline, "the call never reached the provider"
        time.sleep(0.05)
    url = f"sqlite:///{sqlite_conn[1]}"
    _wait_for_intents(url, 1)  # written INTENT_DELAY_S after the request left, while the provider holds it
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    assert Store.from_url(url).attempts() == [], "the killed call recorded nothing itself"
    settings = CallSettings(provider="anthropic", conn_id="anthropic_default", model="claude-haiku-4-5",
                            prompt="Q: slow", max_tokens=64, analytics_conn_id=sqlite_conn[0])  # fmt: skip
    scope = CallScope(dag_id="d", run_id="r", task_id="t", try_number=next_try, deferred=path == "deferred")
    call = CallExecutor(settings, scope)
    result = asyncio.run(call.arun()) if path == "deferred" else call.run()
    assert result["text"] == "in time"
    rows = Store.from_url(url).attempts()
    assert fake_provider.count(path="/v1/messages") == len(rows) == 2  # one row per request the provider received
    assert [(r["try_number"], r["attempt"], r["status"], r["error_type"]) for r in rows] == [
        (1, 1, "error", LOST_ERROR),
        (next_try, 1 if next_try == 2 else 2, "success", None),  # the same try numbers its attempts after the lost
    ]
    assert query(url, "SELECT COUNT(*) FROM call_intents") == [(0,)]
