"""Experiment reports from the store's ``experiment_runs`` rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supervisor_lib.analytics.experiments import experiment_report, format_report
from supervisor_lib.store import Store
from supervisor_lib.store.experiments import ArmOutcome, arm_runs, experiment_names, record_outcome

T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def _outcome(arm: str, index: int, n: int, passed: bool, cost: float, **overrides: object) -> ArmOutcome:
    values: dict[str, object] = dict(
        experiment="sonnet-vs-haiku", arm=arm, arm_index=index, dag_id="nightly_fix", run_id=f"scheduled__{n}",
        task_id="fix", map_index=index, try_number=1, task_type="bug_fix", provider="anthropic",
        model="claude-sonnet-4-6" if index == 0 else "claude-haiku-4-5", status="passed" if passed else "failed",
        passed=passed, review=None, iterations=1 if passed else 3, tokens=2000 + n, cost_usd=cost,
        duration_s=10.0 + n % 3, recorded_at=T0 + timedelta(days=n // 10, minutes=n),
    )  # fmt: skip
    return ArmOutcome(**{**values, **overrides})  # type: ignore[arg-type]


def _seed(store: Store, runs: int, base_passes: int, other_passes: int) -> None:
    for n in range(runs):
        record_outcome(store, _outcome("sonnet", 0, n, n < base_passes, 0.020 + 0.001 * (n % 5)))
        record_outcome(store, _outcome("haiku", 1, n, n < other_passes, 0.006 + 0.0005 * (n % 5)))


def test_rows_are_kept_per_run_and_a_retry_replaces_its_try(store: Store) -> None:
    record_outcome(store, _outcome("sonnet", 0, 1, False, 0.02, status="error"))
    record_outcome(store, _outcome("sonnet", 0, 1, True, 0.03, try_number=2))
    record_outcome(store, _outcome("sonnet", 0, 2, True, 0.01))
    record_outcome(
        store,
        _outcome("haiku", 1, 1, True, 0.01, dag_id="other_dag", experiment="other", recorded_at=T0 + timedelta(days=1)),
    )

    rows = arm_runs(store, "sonnet-vs-haiku")
    assert [(r["run_id"], r["try_number"], r["passed"], r["cost_usd"]) for r in rows] == [
        ("scheduled__1", 2, True, 0.03), ("scheduled__2", 1, True, 0.01),
    ]  # fmt: skip
    assert rows[0]["recorded_at"] == T0 + timedelta(minutes=1)
    assert experiment_names(store) == ["other", "sonnet-vs-haiku"]  # newest first
    assert experiment_names(store, dag_ids={"nightly_fix"}) == ["sonnet-vs-haiku"]
    assert arm_runs(store, dag_ids=set()) == []
    assert len(arm_runs(store, since=T0 + timedelta(minutes=2))) == 2


def test_a_cheaper_arm_at_no_measurable_loss(store: Store) -> None:
    _seed(store, runs=300, base_passes=270, other_passes=268)  # 90 % vs 89.3 % over 30 days of runs

    report = experiment_report(store)

    assert report["experiment"] == "sonnet-vs-haiku" and report["runs"] == 600
    base, haiku = report["arms"]
    assert (base["arm"], base["runs"], base["passed"]) == ("sonnet", 300, 270)
    assert base["models"] == ["anthropic:claude-sonnet-4-6"] and haiku["models"] == ["anthropic:claude-haiku-4-5"]
    assert base["pass_rate"]["low"] == pytest.approx(0.8608, abs=1e-3)  # Wilson, 270/300
    assert base["cost_usd"]["estimate"] == pytest.approx(0.022)
    assert base["cost_usd"]["low"] < 0.022 < base["cost_usd"]["high"]
    [comparison] = report["comparisons"]
    assert comparison["pass_rate"] == "no_loss" and comparison["more_runs_needed"] == 0
    assert comparison["cost_usd_diff"]["high"] < 0
    assert report["verdict"].startswith("arm haiku is cheaper by $0.0150 per task")
    assert "at no measurable loss of pass rate (at most 10 points below arm sonnet)" in report["verdict"]


def test_too_few_runs_says_how_many_more(store: Store) -> None:
    _seed(store, runs=6, base_passes=5, other_passes=4)

    report = experiment_report(store, "sonnet-vs-haiku")
    [comparison] = report["comparisons"]

    assert comparison["pass_rate"] == "unknown"
    # the observed 17-point gap, at 80 % power: (1.96 + 0.84)² · (0.7·0.3 + 0.6·0.4) / 0.1667² = 127.2 per arm
    assert comparison["runs_needed_per_arm"] == 128 and comparison["more_runs_needed"] == 122
    assert "not enough runs to tell arm haiku's pass rate from arm sonnet's: 122 more runs per arm" in report["verdict"]
    assert report["verdict"].startswith("arm haiku is cheaper")  # the cost difference is clear already


def test_a_clearly_worse_arm(store: Store) -> None:
    _seed(store, runs=40, base_passes=38, other_passes=20)

    verdict = experiment_report(store)["verdict"]

    assert verdict.startswith("arm haiku passes less often than arm sonnet (-45 points, 95% CI [")


def test_the_text_table_and_a_user_limited_to_other_dags(store: Store) -> None:
    _seed(store, runs=6, base_passes=5, other_passes=4)
    text = format_report(experiment_report(store))
    lines = text.splitlines()

    assert lines[0].startswith("experiment sonnet-vs-haiku: 2 arms, 12 runs in nightly_fix")
    assert lines[1].split()[:4] == ["arm", "model", "runs", "pass"]
    assert lines[3].split()[:4] == ["sonnet", "anthropic:claude-sonnet-4-6", "6", "83%"]
    assert "[44%, 97%]" in lines[3]  # Wilson 5/6
    assert lines[-1].startswith("verdict: arm haiku is cheaper")
    hidden = experiment_report(store, dag_ids=frozenset({"another_dag"}))
    assert hidden["experiments"] == [] and hidden["arms"] == [] and hidden["runs"] == 0
    assert format_report(hidden) == "No experiment has recorded runs yet."
