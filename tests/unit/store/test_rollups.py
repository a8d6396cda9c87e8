"""The rollups the plugin's views read: always the sums of the recorded attempts, on both stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from supervisor_lib.store import CallRecord, Recorder, Store, call_id
from supervisor_lib.store.rollups import DROPPED, GRAINS, KEYS, LATENCY_COLUMNS, percentile
from supervisor_lib.store.schema import MIGRATIONS
from tests.unit.store.conftest import MakeRecord, query

SUMS = "SUM(calls), SUM(cost_usd), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(duration_s)"
ROW_SUMS = "COUNT(*), SUM(COALESCE(cost_usd, 0)), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), " \
           "SUM(duration_s)"  # fmt: skip


def _records(count: int, seed: int = 7) -> list[CallRecord]:
    """A realistic mix: answers, failures, rejected answers, cached re-uses, retries, unpriced models, two days."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)
    records = []
    for n in range(count):
        status = rng.choice(["success"] * 6 + ["error", "cached"])
        attempt = 0 if status == "cached" else rng.choice([1, 1, 1, 2, 3])
        records.append(
            CallRecord(
                call_id=call_id("d", f"r{n % 5}", f"t{n % 3}", -1, rng.choice([1, 2]), attempt, str(n)),
                dag_id=f"dag_{n % 4}",
                run_id=f"r{n % 5}",
                task_id=f"t{n % 3}",
                provider=rng.choice(["anthropic", "openai"]),
                model=rng.choice(["m1", "m2"]),
                task_type="llm" if n % 3 else "pr_review",
                started_at=start + timedelta(minutes=7 * n),
                status=status,
                attempt=attempt,
                try_number=rng.choice([1, 2]),
                duration_s=round(rng.uniform(0.05, 400), 3),
                input_tokens=rng.randint(0, 5000),
                output_tokens=rng.randint(0, 900),
                cache_read_tokens=rng.randint(0, 300),
                cost_usd=None if n % 11 == 0 else round(rng.random() / 50, 6),
                outcome="rejected" if status == "success" and n % 13 == 0 else None,
                team=rng.choice([None, "core"]),
                tags=("a",) if n % 2 else ("a", "b"),
            )
        )  # fmt: skip
    return records


def _equal(url: str) -> None:
    rows = query(url, f"SELECT {ROW_SUMS}, SUM(CASE WHEN outcome IN ('failed', 'rejected') THEN 1 ELSE 0 END)"
                      " FROM call_attempts")[0]  # fmt: skip
    for grain in GRAINS:
        rolled = query(url, f"SELECT {SUMS}, SUM(errors) FROM call_rollups WHERE grain = '{grain}'")[0]
        assert [round(float(v or 0), 6) for v in rolled] == [round(float(v or 0), 6) for v in rows], grain
    for grain, dropped in DROPPED.items():  # each narrower grain: the day rows without its dropped keys
        kept = ", ".join(key for key in KEYS if key not in dropped)
        grouped = [
            sorted(tuple(round(float(v or 0), 6) if isinstance(v, float) else v for v in row) for row in query(
                url, f"SELECT bucket, {kept}, {SUMS}, SUM(errors) FROM call_rollups WHERE grain = '{of}'"
                     f" GROUP BY bucket, {kept}"))
            for of in ("day", grain)
        ]  # fmt: skip
        assert grouped[0] == grouped[1], grain
        blank = " OR ".join(f"{key} <> ''" for key in dropped)
        assert query(url, f"SELECT COUNT(*) FROM call_rollups WHERE grain = '{grain}' AND ({blank})") == [(0,)]
    runs = query(url, "SELECT SUM(calls), SUM(cost_usd) FROM run_rollups")[0]
    assert [round(float(v), 6) for v in runs] == [
        round(float(v), 6) for v in query(url, "SELECT COUNT(*), SUM(COALESCE(cost_usd, 0)) FROM call_attempts")[0]
    ]


def test_rollups_sum_to_the_rows_one_at_a_time_and_replayed(store: Store, store_url: str) -> None:
    records = _records(120)
    for record in records:
        store.insert_attempts([record.to_row()])
    assert store.insert_attempts([records[3].to_row()]) == 0  # a replayed write adds nothing, anywhere
    store.insert_attempts([r.to_row() for r in records[:40]])  # a spool flush of rows already in
    _equal(store_url)
    histogram = query(store_url, f"SELECT {', '.join(f'SUM({c})' for c in LATENCY_COLUMNS)} FROM call_rollups "
                                 "WHERE grain = 'hour'")[0]  # fmt: skip
    assert sum(histogram) == len(records)


def test_rollups_sum_to_the_rows_in_batches(store: Store, store_url: str) -> None:
    records = _records(90, seed=3)
    store.insert_attempts([r.to_row() for r in records[:50]])
    store.insert_attempts([r.to_row() for r in records[30:]])  # overlapping: 20 already there
    _equal(store_url)
    outcomes = dict(
        query(store_url, "SELECT outcome, SUM(calls) FROM call_rollups WHERE grain = 'day' GROUP BY outcome")
    )
    assert set(outcomes) <= {"answered", "rejected", "failed", "cached"} and outcomes.get("rejected")


def test_an_existing_store_gets_its_rollups_on_upgrade(store: Store, store_url: str, make_record: MakeRecord) -> None:
    store.migrate()  # then back to version 5 by hand: a store written before the rollups existed
    for table in ("call_rollups", "run_rollups", "call_transcripts"):
        store.run(lambda cur, table=table: cur.execute(f"DROP TABLE {table}"))
    store.run(lambda cur: cur.execute("DELETE FROM supervisor_schema_version WHERE version >= 6"))
    added = {"call_attempts": ("outcome", "error_message", "cost_basis", "saved_usd"),
             "budget_spend": ("limit_usd", "label", "window_start", "window_end", "forecast_usd", "forecast_low_usd",
                              "forecast_high_usd", "forecast_basis_usd", "forecast_method", "forecast_runs_out",
                              "forecast_at")}  # fmt: skip
    for table, columns in added.items():
        for column in columns:
            store.run(lambda cur, t=table, c=column: cur.execute(f"ALTER TABLE {t} DROP COLUMN {c}"))
    values = [make_record(n, status="error" if n % 4 == 0 else "success", cost_usd=None if n % 5 == 0 else 0.01)
              for n in range(1, 30)]  # fmt: skip
    columns = "call_id, dag_id, run_id, task_id, map_index, try_number, attempt, provider, model, task_type, " \
              "started_at, duration_s, input_tokens, output_tokens, cost_usd, status, deferred"  # fmt: skip
    for record in values:
        row = record.to_row()
        params = [row[c.strip()] for c in columns.split(",")]
        store.run(lambda cur, p=params: cur.execute(
            f"INSERT INTO call_attempts ({columns}) VALUES ({', '.join('?' for _ in p)})", p))  # fmt: skip
    store.close()
    reopened = Store.from_url(store_url, name="test")
    assert reopened.migrate() == [m.version for m in MIGRATIONS if m.version >= 6]
    _equal(store_url)
    assert {r["outcome"] for r in reopened.attempts()} == {"answered", "failed"}
    assert {r["cost_basis"] for r in reopened.attempts()} == {"exact", "unpriced", "none"}


def test_a_recorder_keeps_the_transcript_beside_the_row(store: Store, store_url: str, make_record: MakeRecord,
                                                        tmp_path: object) -> None:  # fmt: skip
    recorder = Recorder(store, spool_dir=str(tmp_path))
    transcript = {"request": {"messages": [{"role": "user", "content": "hi"}]}, "response": {"text": "hello"}}
    assert recorder.record(make_record(1, transcript=transcript))
    [(content,)] = query(store_url, "SELECT content_json FROM call_transcripts")
    assert '"hello"' in content


@pytest.mark.parametrize(("histogram", "share", "expected"), [([0, 10, 0], 0.5, 0.175), ([5, 0, 5], 0.95, 0.475)])
def test_percentiles_interpolate_within_their_bucket(histogram: list[int], share: float, expected: float) -> None:
    padded = histogram + [0] * (len(LATENCY_COLUMNS) - len(histogram))
    assert percentile(padded, share) == pytest.approx(expected, abs=0.01)
    assert percentile([0] * len(LATENCY_COLUMNS), 0.5) is None


def test_a_store_of_version_8_gets_its_narrower_day_grains_and_error_counts(store: Store, store_url: str) -> None:
    records = _records(150, seed=11)
    store.insert_attempts([r.to_row() for r in records])
    # back to version 8 by hand: only hour and day rows, no errors column
    store.run(lambda cur: cur.execute("DELETE FROM call_rollups WHERE grain NOT IN ('hour', 'day')"))
    store.run(lambda cur: cur.execute("ALTER TABLE call_rollups DROP COLUMN errors"))
    store.run(lambda cur: cur.execute("DELETE FROM supervisor_schema_version WHERE version >= 9"))  # 10 is idempotent
    store.close()
    reopened = Store.from_url(store_url, name="test")
    assert reopened.migrate() == [m.version for m in MIGRATIONS if m.version >= 9]
    _equal(store_url)
    counts = dict(query(store_url, "SELECT grain, COUNT(*) FROM call_rollups GROUP BY grain"))
    assert set(counts) == set(GRAINS)
    for grain in DROPPED:  # the point of the grains: fewer rows for long ranges
        assert counts[grain] < counts["day"], grain
    assert query(store_url, "SELECT SUM(errors) FROM call_rollups WHERE grain = 'day_dag'")[0][0] == sum(
        1 for r in records if r.to_row()["outcome"] in ("failed", "rejected")
    )
