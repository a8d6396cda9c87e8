"""The recorder: call ids, CallRecord rows, and recording that survives a down store without losing a row."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import supervisor_lib.store.db as store_module
from supervisor_lib.store import CallRecord, Recorder, Store, call_id, get_recorder
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS
from tests.support.ports import free_port
from tests.unit.store.conftest import MakeRecord


@pytest.fixture
def down_url(store_url: str, tmp_path: Path) -> str:
    """A store URL of the same dialect that cannot be opened: a closed port, or a file under a regular file."""
    if store_url.startswith("sqlite"):
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        return f"sqlite:///{blocker / 'analytics.db'}"
    return f"postgresql://postgres:pw@127.0.0.1:{free_port()}/db"


@pytest.fixture
def down_store(down_url: str) -> Store:
    """A down store with the same name as ``store``, so the working one takes its spool files."""
    return Store.from_url(down_url, name="test")


def _spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("supervisor_lib.store")
    ]


# -- call ids and records ----------------------------------------------------------------------------------------
def test_call_id_is_deterministic_and_tells_every_part_apart() -> None:
    base = call_id("nightly", "manual__1", "summarize", -1, 1, 1)
    variants = {
        call_id("other", "manual__1", "summarize", -1, 1, 1),
        call_id("nightly", "manual__2", "summarize", -1, 1, 1),
        call_id("nightly", "manual__1", "other", -1, 1, 1),
        call_id("nightly", "manual__1", "summarize", 0, 1, 1),
        call_id("nightly", "manual__1", "summarize", -1, 2, 1),
        call_id("nightly", "manual__1", "summarize", -1, 1, 2),
        call_id("nightly", "manual__1", "summarize", -1, 1, 1, discriminator="corrective"),
        call_id("a", "b c", "t", -1, 1, 1),
        call_id("a b", "c", "t", -1, 1, 1),  # no two field splits collide
    }

    assert base == call_id("nightly", "manual__1", "summarize", -1, 1, 1)
    assert len(base) == 32 and int(base, 16) >= 0
    assert len(variants | {base}) == 10


def test_call_record_fields_are_the_table_columns(make_record: MakeRecord) -> None:
    record = make_record(1, deferred=True, team="docs")

    assert {field.name for field in fields(CallRecord)} - {"transcript"} == set(CALL_ATTEMPT_COLUMNS)
    assert list(record.to_row()) == list(CALL_ATTEMPT_COLUMNS)
    assert record.to_row()["tags"] == "nightly,docs"
    assert CallRecord.from_row(record.to_row()) == record
    assert CallRecord.from_json(record.to_json()) == record
    assert replace(record, tags=()).to_row()["tags"] is None


def test_call_record_normalizes_time_to_utc(make_record: MakeRecord) -> None:
    local = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert make_record(started_at=local).started_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert make_record(started_at=local).started_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"started_at": datetime(2025, 3, 1)}, "timezone-aware"),
        ({"status": "ok"}, "status 'ok' is not one of"),
        ({"tags": ("a,b",)}, "may not contain commas"),
        ({"input_tokens": -1}, "may not be negative"),
    ],
)
def test_call_record_rejects_bad_values(make_record: MakeRecord, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_record(**overrides)


# -- recording ---------------------------------------------------------------------------------------------------
def test_record_stores_one_row_per_call_id(store: Store, spool_dir: Path, make_record: MakeRecord) -> None:
    recorder = Recorder(store, spool_dir=spool_dir)

    assert recorder.record(make_record(1)) is True
    assert recorder.record(make_record(1)) is True  # a replay: accepted, not duplicated
    assert recorder.record(make_record(2)) is True
    assert [row["attempt"] for row in store.attempts()] == [1, 2]
    assert _spool_files(spool_dir) == []


def test_down_store_spools_then_flushes_without_loss_or_duplicates(
    store: Store,
    down_store: Store,
    spool_dir: Path,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [make_record(n) for n in range(1, 6)]
    down = Recorder(down_store, spool_dir=spool_dir)

    assert [down.record(record) for record in records] == [False] * 5
    assert len(_warnings(caplog)) == 1, "one warning per outage, not one per row"
    [spool] = _spool_files(spool_dir)
    assert [CallRecord.from_json(line) for line in spool.read_text().splitlines()] == records

    store.insert_attempts([records[0].to_row(), records[1].to_row()])  # some rows made it in before
    down.close()  # as the process ends: its spool file is free for others to take
    up = Recorder(store, spool_dir=spool_dir)
    assert up.flush_spool() == 5
    assert [CallRecord.from_row(row) for row in store.attempts()] == records
    assert _spool_files(spool_dir) == []
    assert up.flush_spool() == 0


def test_the_next_successful_record_flushes_the_spool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spool_dir: Path, make_record: MakeRecord
) -> None:
    monkeypatch.setattr(store_module, "RETRY_AFTER_S", 0.0)
    blocker = tmp_path / "data"
    blocker.write_text("")
    store = Store.from_url(f"sqlite:///{blocker / 'analytics.db'}")
    recorder = Recorder(store, spool_dir=spool_dir)

    assert [recorder.record(make_record(n)) for n in (1, 2, 3)] == [False] * 3
    blocker.unlink()  # the store comes back
    assert recorder.record(make_record(4)) is True
    assert [row["attempt"] for row in store.attempts()] == [1, 2, 3, 4]
    assert _spool_files(spool_dir) == []


def test_a_live_process_keeps_its_spool_file(
    store: Store, down_store: Store, spool_dir: Path, make_record: MakeRecord
) -> None:
    writer = Recorder(down_store, spool_dir=spool_dir)
    writer.record(make_record(1))
    flusher = Recorder(store, spool_dir=spool_dir)

    assert flusher.flush_spool() == 0, "the writer still holds its file and may append to it"
    assert len(_spool_files(spool_dir)) == 1
    writer.close()
    assert flusher.flush_spool() == 1
    assert [row["attempt"] for row in store.attempts()] == [1]


def test_spool_files_belong_to_their_store(
    store_url: str, down_store: Store, spool_dir: Path, make_record: MakeRecord
) -> None:
    writer = Recorder(down_store, spool_dir=spool_dir)
    writer.record(make_record(1))
    writer.close()

    other = Recorder(Store.from_url(store_url, name="another-store"), spool_dir=spool_dir)
    assert other.flush_spool() == 0
    assert len(_spool_files(spool_dir)) == 1


def _spool_and_die(down_url: str, spool_dir: Path, records: list[CallRecord]) -> None:
    recorder = Recorder(Store.from_url(down_url, name="test"), spool_dir=spool_dir)
    spooled = [recorder.record(record) for record in records]
    os._exit(0 if spooled == [False] * len(records) else 1)  # no clean-up: the kernel releases the spool lock


def test_rows_spooled_by_a_process_that_died_are_flushed_by_another(
    store: Store, down_url: str, spool_dir: Path, make_record: MakeRecord
) -> None:
    records = [make_record(n, dag_id="crash") for n in (1, 2, 3)]
    child = multiprocessing.get_context("fork").Process(target=_spool_and_die, args=(down_url, spool_dir, records))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0

    assert Recorder(store, spool_dir=spool_dir).flush_spool() == 3
    assert [CallRecord.from_row(row) for row in store.attempts(dag_id="crash")] == records
    assert _spool_files(spool_dir) == []


def test_threads_spooling_at_once_write_whole_lines(
    down_store: Store, spool_dir: Path, make_record: MakeRecord
) -> None:
    recorder = Recorder(down_store, spool_dir=spool_dir)

    def spool(thread: int) -> None:
        for n in range(100):
            recorder.record(make_record(n + 1, task_id=f"t{thread}", request_id="x" * 5000))

    threads = [threading.Thread(target=spool, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [spool_file] = _spool_files(spool_dir)
    lines = spool_file.read_text().splitlines()
    assert len(lines) == 800
    assert len({json.loads(line)["call_id"] for line in lines}) == 800


def test_record_never_raises_even_when_the_spool_fails(
    down_store: Store, tmp_path: Path, make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "spool-blocker"
    blocker.write_text("")
    recorder = Recorder(down_store, spool_dir=blocker / "spool")

    assert recorder.record(make_record(1)) is False
    assert make_record(1).call_id in caplog.text, "the log line is the row's last copy"


def test_get_recorder_is_one_per_process_and_store() -> None:
    assert get_recorder("analytics_x") is get_recorder("analytics_x")
    assert get_recorder("analytics_x").store is store_module.get_store("analytics_x")


def test_importing_the_recorder_stays_light() -> None:
    probe = (
        "import sys, supervisor_lib.store.recorder; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'anthropic', 'openai') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
