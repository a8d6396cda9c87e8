"""``make demo-history``: a month of demo calls in the local store, marked as demo data, with the anomaly scan's
findings and a budget forecast to show; once per store; ``--remove`` takes out exactly what it wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supervisor_lib.analytics import findings, operations, queries, spend
from supervisor_lib.analytics.filters import Filters
from supervisor_lib.local import demo_history
from supervisor_lib.store import CallRecord, Store

NOW = datetime(2026, 12, 16, 9, 30, tzinfo=UTC)


def _real_call(store: Store) -> None:
    store.insert_attempts([CallRecord(
        call_id="real-1", dag_id="payments_bugfix", run_id="manual__1", task_id="fix", provider="anthropic",
        model="claude-sonnet-4-6", task_type="bug_fix", started_at=NOW - timedelta(hours=1), status="success",
        attempt=1, duration_s=2.0, input_tokens=1000, output_tokens=100, cost_usd=0.25,
    ).to_row()])  # fmt: skip


def _tables(store: Store) -> dict[str, int]:
    counts = {}
    for table in ("call_attempts", "call_rollups", "run_rollups", "anomalies", "budget_spend"):
        counts[table] = store.run(lambda cur, t=table: cur.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
    return counts


def test_seed_marks_everything_and_the_page_has_anomalies_and_a_forecast(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'analytics.db'}", name="test")
    _real_call(store)
    before = _tables(store)
    done = demo_history.seed(store, calls=12_000, days=30, seed_value=7, now=NOW)
    rows = store.attempts()
    demo = [r for r in rows if r["call_id"] != "real-1"]
    assert len(demo) == done["calls"] > 11_000
    assert all(r["dag_id"].startswith("demo_") and r["run_id"].startswith("demo_history__") for r in demo)
    assert all(r["call_id"].startswith("demo-") and "demo-history" in r["tags"].split(",") for r in demo)
    assert min(r["started_at"] for r in demo) >= NOW - timedelta(days=30)

    everything = Filters(NOW - timedelta(days=30), NOW + timedelta(minutes=1))
    assert queries.overview(store, everything)["calls"] == len(rows)  # the rollups carry the demo calls too
    shown = findings.listed(store, NOW - timedelta(days=30), NOW + timedelta(minutes=1), limit=2000)
    kinds = {f["kind"] for f in shown}
    assert {"context_blowup", "latency_spike", "runaway_output", "error_burst", "budget_runout"} <= kinds, kinds
    assert all(f["reason"] for f in shown) and sum(done["findings"].values()) == len(shown)
    [runout] = [f for f in shown if f["kind"] == "budget_runout"]
    assert runout["dag_id"] == "demo_pr_review" and "runs out around 2026-12-" in runout["reason"]
    month = next(b for b in operations.budgets(store, None, NOW) if b["window"] == "2026-12")
    assert month["forecast_method"] == "weekday-seasonal" and month["forecast_usd"] > month["limit_usd"]
    answer = spend.spend_forecast(store, everything, now=NOW)
    assert answer["method"] == "weekday-seasonal" and answer["projected_total_usd"] > answer["spent_usd"] > 0

    with pytest.raises(SystemExit, match="already holds demo history"):
        demo_history.seed(store, calls=100, days=30, seed_value=7, now=NOW)

    assert demo_history.remove(store) == len(demo)
    assert _tables(store) == before  # the real call, its rollups and nothing else
    assert [r["call_id"] for r in store.attempts()] == ["real-1"]
    store.close()


def test_the_command_writes_to_the_make_run_store(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("SUPERVISOR_ANALYTICS_SQLITE", raising=False)
    assert demo_history.main(["--home", str(tmp_path), "--calls", "3000", "--days", "14"]) == 0
    out = capsys.readouterr().out
    assert "demo calls" in out and str(tmp_path / "analytics.db") in out and "demo-history" in out
    store = Store.from_url(f"sqlite:///{tmp_path / 'analytics.db'}", name="test")
    assert demo_history.demo_calls(store) > 2900
    store.close()
    assert demo_history.main(["--home", str(tmp_path), "--remove"]) == 0
    assert "Removed the demo history" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        demo_history.main(["--home", str(tmp_path), "--days", "3"])
    assert "--days: between 7 and 120" in capsys.readouterr().err
