"""The anomaly scan over a store: synthetic calls (with labelled anomalies) recorded through the store, scanned
incrementally as the DAG would every 15 minutes; findings are stored once, linked to their call, and a budget
projected to run out is found once per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from supervisor_lib.analytics import findings, scan
from supervisor_lib.analytics.synthetic import calls_history, to_rows
from supervisor_lib.routing.budgets import Charge, Limit, Period
from supervisor_lib.store import Store
from supervisor_lib.store.routing_state import RoutingState

START = datetime(2026, 11, 1, tzinfo=UTC)


def _record(store: Store, frame: pd.DataFrame) -> None:
    rows = to_rows(frame)
    for chunk in range(0, len(rows), 2000):
        store.insert_attempts(rows[chunk : chunk + 2000])


@pytest.fixture
def history(store: Store) -> tuple[Store, pd.DataFrame]:
    frame = calls_history(6000, days=14, seed=3, start=START)
    _record(store, frame)
    return store, frame


def test_an_incremental_scan_finds_the_injected_anomalies_once(history: tuple[Store, pd.DataFrame]) -> None:
    store, frame = history
    end = START + timedelta(days=14)
    first = scan.scan(store, now=end - timedelta(days=4), since=START + timedelta(days=7))
    second = scan.scan(store, now=end)  # from the first scan's watermark on
    again = scan.scan(store, now=end + timedelta(minutes=15))
    assert first.calls_scanned > 0 and second.calls_scanned > 0 and again.new == []
    stored = findings.listed(store, START, end + timedelta(days=1), limit=1000)
    call_findings = {f["call_id"]: f for f in stored if f["call_id"]}
    labelled = frame[(frame["label"] != "") & (frame["started_at"] >= pd.Timestamp(START + timedelta(days=7)))]
    found = labelled["call_id"].isin(list(call_findings))
    assert found.mean() >= 0.7, labelled.assign(found=found).groupby("label")["found"].mean()
    normal = frame[(frame["label"] == "") & (frame["started_at"] >= pd.Timestamp(START + timedelta(days=7)))]
    assert normal["call_id"].isin(list(call_findings)).mean() < 0.02
    for call_id, finding in list(call_findings.items())[:20]:
        row = frame.set_index("call_id").loc[call_id]
        assert (finding["dag_id"], finding["run_id"], finding["task_id"]) == (row["dag_id"], row["run_id"],
                                                                              row["task_id"])  # fmt: skip
        assert finding["kind"] in findings.KINDS and finding["reason"]


def test_a_budget_running_out_is_found_once_per_window(store: Store) -> None:
    now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    state = RoutingState(store)
    month = Charge(Limit("dag", "nightly", Period.MONTH, 10.0, "spec"), "2026-12",
                   datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))  # fmt: skip
    state.reserve([month], 0.0, reservation_id="r0", owner=("nightly", "r", "t"), now=now, ttl_s=60)
    state.settle_windows("r0", [(month.key, month.window)], 6.0, now)  # $6 in 9.5 days: $19.6 by month end
    found = scan.scan(store, now=now).new
    [budget] = [f for f in found if f.kind == "budget_runout"]
    assert budget.dag_id == "nightly" and "by 2026-12-31, over the $10.00 limit" in budget.reason
    assert "runs out around" in budget.reason
    assert [f for f in scan.scan(store, now=now + timedelta(hours=3)).new if f.kind == "budget_runout"] == []
