"""Budget declarations, UTC windows, the check before a call and its message (pure: no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from supervisor_lib.routing.budgets import (
    BudgetDeclaration,
    BudgetScope,
    GlobalBudgets,
    Period,
    Usage,
    blocking,
    charges_for,
    exceeded_message,
    limits_for,
    window_of,
)

SCOPE = BudgetScope("nightly", "manual__1", tags=("payments", "nightly"))


def test_day_and_month_windows_are_utc() -> None:
    late_in_berlin = datetime(2026, 11, 6, 0, 30, tzinfo=timezone(timedelta(hours=1)))  # 23:30 UTC on the 5th
    assert window_of(Period.DAY, late_in_berlin, "r") == (
        "2026-11-05", datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC))  # fmt: skip
    assert window_of(Period.MONTH, late_in_berlin, "r")[0] == "2026-11"
    december = window_of(Period.MONTH, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "r")
    assert december == ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert window_of(Period.DAY, datetime(2026, 12, 31, 12, tzinfo=UTC), "r")[2] == datetime(2027, 1, 1, tzinfo=UTC)
    assert window_of(Period.RUN, late_in_berlin, "manual__1") == ("manual__1", None, None)


def test_every_kind_of_limit_and_the_lower_of_two_declarations() -> None:
    spec = BudgetDeclaration(per_run_usd=2, per_day_usd=10, per_month_usd=100, per_provider_day_usd={"anthropic": 5},
                             team="platform", per_team_month_usd=300)  # fmt: skip
    declared = {
        "dags": {"*": {"per_day_usd": 50}, "nightly": {"per_run_usd": 1.5}},
        "providers": {"openai": {"per_day_usd": 20}},
        "teams": {"platform": {"per_month_usd": 250}},
        "tags": {"nightly": {"per_month_usd": 40}},
    }
    global_ = GlobalBudgets.from_mapping(declared, "Variable supervisor_budgets")
    limits = {limit.key: limit for limit in limits_for(SCOPE, spec, global_)}
    assert {key: limit.usd for key, limit in limits.items()} == {
        "run:nightly:run": 1.5,  # the global entry is lower than the spec's 2
        "dag:nightly:day": 10.0,  # the spec's is lower than "*"'s 50
        "dag:nightly:month": 100.0,
        "provider:anthropic:day": 5.0,
        "provider:openai:day": 20.0,
        "team:platform:month": 250.0,
        "tag:nightly:month": 40.0,
    }
    assert limits["run:nightly:run"].source == "Variable supervisor_budgets"
    assert limits["dag:nightly:day"].source == "spec"


def test_a_global_team_entry_names_the_team() -> None:
    global_ = GlobalBudgets.from_mapping(
        {"dags": {"nightly": {"team": "data"}}, "teams": {"data": {"per_month_usd": 9}}}, "g"
    )
    assert [limit.key for limit in limits_for(SCOPE, None, global_)] == ["team:data:month"]


def test_a_call_that_would_cross_a_limit_is_blocked_and_the_message_says_which() -> None:
    limits = limits_for(
        SCOPE, BudgetDeclaration(per_day_usd=1.0, per_provider_day_usd={"openai": 0.1}), GlobalBudgets()
    )
    charges = charges_for(limits, SCOPE, datetime(2026, 11, 5, 9, tzinfo=UTC))
    day = next(c for c in charges if c.key == "dag:nightly:day")
    usage = {(day.key, day.window): Usage(spent_usd=0.7, reserved_usd=0.2)}

    assert blocking(charges, usage, 0.1, "anthropic") is None  # 0.7 + 0.2 + 0.1 fits exactly
    assert blocking(charges, usage, 0.11, "anthropic") is day
    assert blocking(charges, {}, 0.2, "openai").key == "provider:openai:day"  # type: ignore[union-attr]
    assert blocking(charges, {}, 0.2, "anthropic") is None  # openai's limit does not concern anthropic

    message = exceeded_message(day, usage[(day.key, day.window)], 0.11, "task 'fix'")
    assert message.startswith("task 'fix': the per-day budget of DAG 'nightly' ($1.00), window 2026-11-05 UTC")
    assert "spent $0.70 so far, $0.20 reserved by calls in flight" in message
    assert "may cost up to $0.11" in message and "not sent" in message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"dags": {"x": {"per_week_usd": 1}}}, r"dags.x: unknown key\(s\) \['per_week_usd'\]"),
        ({"dags": {"x": {"per_day_usd": "5"}}}, "dags.x.per_day_usd: expected a number"),
        ({"dags": {"x": {"per_team_month_usd": 5}}}, "per_team_month_usd needs a team"),
        ({"teams": {"t": {"per_day_usd": 5}}}, r"teams.t: unknown key\(s\)"),
        ({"budgets": {}}, r"unknown key\(s\) \['budgets'\]"),
    ],
)
def test_bad_global_budgets_say_where(data: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        GlobalBudgets.from_mapping(data, "budgets.yaml")
