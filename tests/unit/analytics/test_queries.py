"""The views' questions answered from the rollups give the same numbers as the recorded rows (computed here with
pandas straight from the records), on SQLite and PostgreSQL, and honour the DAGs a user may read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from supervisor_lib.analytics import operations, queries
from supervisor_lib.analytics.filters import FilterError, Filters
from supervisor_lib.store import CallRecord, Store
from supervisor_lib.store.rollups import LATENCY_COLUMNS, latency_bucket, percentile
from tests.unit.store.test_rollups import _records

START = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)


@pytest.fixture
def seeded(store: Store) -> tuple[Store, pd.DataFrame]:
    records = _records(300, seed=11)
    store.insert_attempts([r.to_row() for r in records])
    frame = pd.DataFrame([r.to_row() for r in records])
    frame["cost"] = frame["cost_usd"].fillna(0.0)
    return store, frame


def _filters(**narrow: object) -> Filters:
    return Filters(START - timedelta(hours=1), START + timedelta(days=2), **narrow)  # type: ignore[arg-type]


def _p95(durations: pd.Series) -> float | None:
    histogram = [0] * len(LATENCY_COLUMNS)
    for duration in durations:
        histogram[latency_bucket(float(duration))] += 1
    return percentile(histogram, 0.95)


def test_overview_matches_the_rows(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    answer = queries.overview(store, _filters())
    assert answer["calls"] == len(frame)
    assert answer["spend_usd"] == pytest.approx(frame["cost"].sum(), abs=1e-6)
    good = frame["outcome"].isin(["answered", "cached"]).sum()
    assert answer["success_rate"] == pytest.approx(good / len(frame), abs=1e-4)
    assert answer["rejected"] == (frame["outcome"] == "rejected").sum() > 0
    assert answer["failed"] == (frame["outcome"] == "failed").sum() > 0
    assert answer["cached_answers"] == (frame["outcome"] == "cached").sum() > 0
    assert answer["unpriced_calls"] == (frame["cost_basis"] == "unpriced").sum() > 0
    assert answer["tokens"] == {"input": frame["input_tokens"].sum(), "output": frame["output_tokens"].sum(),
                                "cache_read": frame["cache_read_tokens"].sum(), "cache_write": 0}  # fmt: skip
    assert answer["retries"] == ((frame["attempt"] > 1) | (frame["try_number"] > 1)).sum()
    # re-used answers took no time: they are left out of the latency
    assert answer["latency_p95_s"] == _p95(frame.loc[frame["outcome"] != "cached", "duration_s"])


def test_a_user_sees_only_the_dags_they_may_read(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    mine = frame[frame["dag_id"] == "dag_1"]
    assert queries.overview(store, _filters(dag_ids=frozenset({"dag_1"})))["calls"] == len(mine)
    assert queries.overview(store, _filters(dag_ids=frozenset()))["calls"] == 0
    assert {row["dag_id"] for row in queries.top(store, _filters(dag_ids=frozenset({"dag_1"})), "dag")} == {"dag_1"}
    runs = queries.top(store, _filters(dag_ids=frozenset({"dag_1"})), "run")
    assert runs and {row["dag_id"] for row in runs} == {"dag_1"}
    assert queries.tile(store, frozenset(), now=START)["calls_today"] == 0


def test_series_add_up_to_the_totals_per_group(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    answer = queries.series(store, _filters(), "cost", "dag")
    assert answer["range"]["grain"] == "hour" and len(answer["times"]) == 2 * 24 + 1
    totals = {s["name"]: sum(v or 0 for v in s["values"]) for s in answer["series"]}
    expected = frame.groupby("dag_id")["cost"].sum()
    assert totals == pytest.approx(expected.to_dict(), abs=1e-6)
    calls = queries.series(store, _filters(), "calls", "tag")
    by_tag = {s["name"]: sum(s["values"]) for s in calls["series"]}
    assert by_tag == {"a": len(frame), "b": sum("b" in tags for tags in frame["tags"])}


def test_a_long_range_is_answered_per_day(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    month = Filters(START - timedelta(days=20), START + timedelta(days=10))
    answer = queries.series(store, month, "calls", "provider")
    assert answer["range"]["grain"] == "day" and len(answer["times"]) == 31  # 22:00 -> from midnight
    assert sum(sum(s["values"]) for s in answer["series"]) == len(frame)


def test_a_long_range_reads_the_smallest_day_grain_that_knows_its_keys(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    month = Filters(START - timedelta(days=20), START + timedelta(days=10))
    answers = {
        "overview": queries.overview(store, month)["calls"],
        "dags": {r["dag_id"]: r["calls"] for r in queries.top(store, month, "dag")},
        "tasks": {(r["dag_id"], r["task_id"]): r["calls"] for r in queries.top(store, month, "task", 50)},
        "errors": sum(row["calls"] for row in queries.errors(store, month)),
        "by task": {s["name"]: sum(s["values"]) for s in queries.series(store, month, "calls", "task")["series"]},
        "by type": {s["name"]: sum(s["values"]) for s in queries.series(store, month, "calls", "task_type")["series"]},
        "p95": queries.overview(store, month)["latency_p95_s"],
    }
    assert answers == {
        "overview": len(frame), "dags": frame.groupby("dag_id").size().to_dict(),
        "tasks": frame.groupby(["dag_id", "task_id"]).size().to_dict(),
        "errors": frame["outcome"].isin(["failed", "rejected"]).sum(),
        "by task": frame.groupby("task_id").size().to_dict(),
        "by type": frame.groupby("task_type").size().to_dict(),
        "p95": _p95(frame.loc[frame["outcome"] != "cached", "duration_s"]),
    }  # fmt: skip
    # which rows answer: each question reads the smallest day grain that keeps the keys it asks about; with every
    # other grain hidden, it still gives the same answer
    some = Filters(month.start, month.end, frozenset(frame["dag_id"].unique()[:2]))
    readers = [
        ("overview", lambda f: queries.overview(store, f)["calls"], month, "day_type"),
        ("overview", lambda f: queries.overview(store, f)["calls"], some, "day_summary"),
        ("dags", lambda f: {r["dag_id"]: r["calls"] for r in queries.top(store, f, "dag")}, month, "day_dag"),
        ("tasks", lambda f: {(r["dag_id"], r["task_id"]): r["calls"] for r in queries.top(store, f, "task", 50)},
         month, "day_task"),
        ("errors", lambda f: sum(row["calls"] for row in queries.errors(store, f)), month, "day_type"),
        ("errors", lambda f: sum(row["calls"] for row in queries.errors(store, f)), some, "day_error"),
        ("by type", lambda f: {s["name"]: sum(s["values"]) for s in queries.series(store, f, "calls", "task_type")
                               ["series"]}, month, "day_type"),
        ("by task", lambda f: {s["name"]: sum(s["values"]) for s in queries.series(store, f, "calls", "task")
                               ["series"]}, some, "day_task"),
        ("p95 by dag", lambda f: queries.series(store, f, "p95", "dag")["series"], some, "day_dag"),
    ]  # fmt: skip
    for name, ask, filters, grain in readers:
        everywhere = ask(filters)
        store.run(
            lambda cur, g=grain: cur.execute(f"UPDATE call_rollups SET grain = 'x_' || grain WHERE grain <> '{g}'")
        )
        try:
            assert ask(filters) == everywhere, (name, grain)
            if filters is month:
                assert everywhere == answers[name], name
        finally:
            store.run(
                lambda cur: cur.execute(
                    "UPDATE call_rollups SET grain = substr(grain, 3) WHERE substr(grain, 1, 2) = 'x_'"
                )
            )
    store.run(lambda cur: cur.execute("DELETE FROM call_rollups WHERE grain = 'day'"))  # and none reads the day rows
    assert queries.overview(store, some)["calls"] == frame["dag_id"].isin(some.dag_ids).sum()


def test_narrowing_by_tag_provider_and_team(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    assert queries.overview(store, _filters(tag="b"))["calls"] == sum("b" in t for t in frame["tags"])
    assert queries.overview(store, _filters(provider="openai"))["calls"] == (frame["provider"] == "openai").sum()
    assert queries.overview(store, _filters(team="core"))["calls"] == (frame["team"] == "core").sum()
    assert queries.overview(store, _filters(tag="b%"))["calls"] == 0  # LIKE wildcards are text, not patterns


def test_top_dags_tasks_runs_and_errors(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    dags = queries.top(store, _filters(), "dag")
    expected = frame.groupby("dag_id")["cost"].sum().sort_values(ascending=False)
    assert [row["dag_id"] for row in dags] == list(expected.index)
    runs = queries.top(store, _filters(), "run", limit=3)
    by_run = frame.groupby(["dag_id", "run_id"])["cost"].sum().sort_values(ascending=False)
    assert [(r["dag_id"], r["run_id"]) for r in runs] == list(by_run.index[:3])
    assert runs[0]["cost_usd"] == pytest.approx(by_run.iloc[0], abs=1e-6)
    errors = queries.errors(store, _filters())
    bad = frame[frame["outcome"].isin(["failed", "rejected"])]
    assert sum(row["calls"] for row in errors) == len(bad)
    with pytest.raises(FilterError, match="by"):
        queries.top(store, _filters(provider="openai"), "run")


def test_one_run_and_one_task_instance(seeded: tuple[Store, pd.DataFrame], store: Store) -> None:
    store_, frame = seeded
    run = queries.run_calls(store_, "dag_1", "r1")
    mine = frame[(frame["dag_id"] == "dag_1") & (frame["run_id"] == "r1")]
    assert len(run["calls"]) == len(mine) > 0
    assert sum(task["cost_usd"] for task in run["tasks"]) == pytest.approx(mine["cost"].sum(), abs=1e-5)
    assert [c["started_at"] for c in run["calls"]] == sorted(c["started_at"] for c in run["calls"])
    dag = queries.dag_runs(store_, _filters(), "dag_1")
    assert {r["run_id"] for r in dag["runs"]} == set(mine["run_id"]) | set(frame[frame["dag_id"] == "dag_1"]["run_id"])
    assert all(0 <= r["success_rate"] <= 1 for r in dag["runs"])


def test_the_transcript_of_a_task_instance_in_order(store: Store) -> None:
    at = START + timedelta(hours=1)
    asked = {"request": {"system": "be brief", "messages": [{"role": "user", "content": "fix it"}]}}
    records = [
        CallRecord(call_id=f"c{n}", dag_id="d", run_id="r", task_id="t", provider="anthropic", model="m",
                   task_type="bug_fix", started_at=at + timedelta(seconds=n), status="error" if n == 1 else "success",
                   attempt=n, error_type="RateLimitError" if n == 1 else None,
                   error_message="429 slow down" if n == 1 else None,
                   transcript={**asked, "response": {"text": f"answer {n}"}})
        for n in (2, 1)
    ]  # fmt: skip
    store.insert_attempts([r.to_row() for r in records], {r.call_id: r.transcript for r in records})
    calls = queries.transcript(store, "d", "r", "t", -1)
    assert [c["attempt"] for c in calls] == [1, 2]
    assert calls[0]["outcome"] == "failed" and calls[0]["error_message"] == "429 slow down"
    assert calls[1]["content"]["response"]["text"] == "answer 2"
    assert queries.transcript(store, "d", "r", "t", 0) == []


def test_the_tile_compares_today_with_yesterday(store: Store) -> None:
    now = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    records = [
        CallRecord(call_id=f"t{n}", dag_id="d", run_id="r", task_id="t", provider="openai", model="m",
                   task_type="llm", started_at=now - timedelta(hours=hours), status=status, cost_usd=cost)
        for n, (hours, status, cost) in enumerate([(1, "success", 0.5), (2, "error", 0.25), (20, "success", 2.0)])
    ]  # fmt: skip
    store.insert_attempts([r.to_row() for r in records])
    assert queries.tile(store, None, now=now) == {"spend_today_usd": 0.75, "spend_yesterday_usd": 2.0,
                                                  "calls_today": 2, "errors_today": 1}  # fmt: skip


def test_provider_health_over_the_last_hour(store: Store) -> None:
    now = datetime.now(UTC)
    records = [
        CallRecord(call_id=f"h{n}", dag_id="d", run_id="r", task_id="t", provider="anthropic", model="m",
                   task_type="llm", started_at=now - timedelta(minutes=n), status="error" if n < 3 else "success",
                   duration_s=0.3)
        for n in range(10)
    ]  # fmt: skip
    store.insert_attempts([r.to_row() for r in records])
    health = operations.providers(store, None, now=now)
    assert health["models"] == [{"provider": "anthropic", "model": "m", "calls": 10, "error_rate": 0.3,
                                 "latency_p95_s": health["models"][0]["latency_p95_s"]}]  # fmt: skip
    assert 0.25 < health["models"][0]["latency_p95_s"] <= 0.5
    assert operations.providers(store, frozenset({"other"}), now=now)["models"] == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"start": "yesterday", "end": None}, "start"), ({"start": "2026-01-02", "end": "2026-01-01"}, "start"),
     ({"start": "2020-01-01", "end": "2026-01-01"}, "start"), ({"start": None, "end": None, "tag": "x" * 300}, "tag")],
)  # fmt: skip
def test_bad_filters_name_their_parameter(kwargs: dict[str, str | None], param: str) -> None:
    with pytest.raises(FilterError) as caught:
        Filters.parse(**kwargs)
    assert caught.value.param == param


def test_bad_metric_and_group(store: Store) -> None:
    with pytest.raises(FilterError, match="metric"):
        queries.series(store, _filters(), "vibes", "dag")
    with pytest.raises(FilterError, match="group_by"):
        queries.series(store, _filters(), "cost", "dag_id; DROP TABLE call_rollups")


def test_the_stamp_changes_when_a_call_is_recorded(store: Store) -> None:
    now = datetime.now(UTC)
    before = queries.stamp(store, None)
    record = CallRecord(call_id="s1", dag_id="d", run_id="r", task_id="t", provider="openai", model="m",
                        task_type="llm", started_at=now, status="success")  # fmt: skip
    store.insert_attempts([record.to_row()])
    after = queries.stamp(store, None)
    assert after != before and queries.stamp(store, None) == after
    assert queries.stamp(store, frozenset({"other"})) == before  # calls of DAGs the user cannot read change nothing


def test_facets_offer_what_the_range_holds(seeded: tuple[Store, pd.DataFrame]) -> None:
    store, frame = seeded
    offered = queries.facets(store, _filters(provider="openai"))  # narrowing does not shrink the menus
    assert offered == {"provider": ["anthropic", "openai"], "model": ["m1", "m2"],
                       "dag_id": sorted(frame["dag_id"].unique()), "team": ["core"], "tag": ["a", "b"]}  # fmt: skip
    assert queries.facets(store, _filters(dag_ids=frozenset({"dag_2"})))["dag_id"] == ["dag_2"]
