"""Breaker transitions from recorded attempts, with a fake clock (pure: no store)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from supervisor_lib.routing.health import (
    BreakerRecord,
    BreakerState,
    HealthThresholds,
    Sample,
    breaker_view,
    combined,
    window_stats,
)
from tests.unit.routing.conftest import T0

LIMITS = HealthThresholds(window_s=300, consecutive_failures=3, min_calls=10, open_error_rate=0.5,
                          degraded_error_rate=0.2, slow_latency_s=10, cooldown_s=60)  # fmt: skip


def sample(at: datetime, ok: bool | None = True, duration: float = 1.0) -> Sample:
    return Sample("anthropic", "claude-haiku-4-5", at, duration, ok)


def newest_first(*samples: Sample) -> list[Sample]:
    return sorted(samples, key=lambda s: s.started_at, reverse=True)


def view(samples: list[Sample], now: datetime, record: BreakerRecord | None = None):  # type: ignore[no-untyped-def]
    return breaker_view("anthropic", samples, record, now, LIMITS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_three_failures_in_a_row_open_then_half_open_after_the_cooldown() -> None:
    failures = newest_first(sample(at(0)), sample(at(1), False), sample(at(2), False), sample(at(3), False))

    assert view(failures[1:], at(3.5)).state is BreakerState.CLOSED  # two in a row are not enough
    opened = view(failures, at(4))
    assert opened.state is BreakerState.OPEN and not opened.eligible
    assert opened.open_until == at(4) + timedelta(seconds=60)  # the last failure ended at 3 + 1 s
    assert "3 retryable failures in a row" in opened.reason

    half = view(failures, at(64))
    assert half.state is BreakerState.HALF_OPEN and half.probe_available and half.eligible


def test_a_success_ends_the_streak() -> None:
    samples = newest_first(sample(at(0), False), sample(at(1), False), sample(at(2)), sample(at(3), False))
    assert window_stats(samples).consecutive_failures == 1
    assert view(samples, at(5)).state is BreakerState.CLOSED


def test_the_error_rate_rule_needs_min_calls() -> None:
    mixed = [sample(at(i), ok=i % 2 == 0) for i in range(9)]  # 4 of 9 failed, never 3 in a row
    assert view(newest_first(*mixed), at(20)).state is BreakerState.CLOSED  # too few calls to judge
    assert view(newest_first(*mixed, sample(at(9))), at(20)).state is BreakerState.DEGRADED  # 4 of 10
    ten = newest_first(*mixed, sample(at(9), False), sample(at(10)), sample(at(11), False))  # 6 of 12
    opened = view(ten, at(13))
    assert opened.state is BreakerState.OPEN and "6/12 calls failed (50%)" in opened.reason


def test_errors_that_say_nothing_about_health_are_ignored() -> None:
    bad_requests = [sample(at(i), ok=None) for i in range(5)]
    assert window_stats(bad_requests).calls == 0
    assert view(newest_first(*bad_requests), at(6)).state is BreakerState.CLOSED
    assert Sample.from_row("p", "m", "error", "ProviderConfigError", at(0), 1).ok is None
    assert Sample.from_row("p", "m", "error", "RetryableError", at(0), 1).ok is False


def test_failures_leave_the_sliding_window() -> None:
    failures = newest_first(*(sample(at(i), False) for i in range(3)))
    assert view(failures, at(200)).state is BreakerState.HALF_OPEN
    assert view(failures, at(303)).state is BreakerState.CLOSED  # all three started more than 300 s ago


def test_a_taken_probe_makes_half_open_ineligible_until_the_claim_lapses() -> None:
    failures = newest_first(*(sample(at(i), False) for i in range(3)))
    record = BreakerRecord("anthropic", probe_owner="worker-1", probe_expires_at=at(120))
    taken = view(failures, at(70), record)
    assert taken.state is BreakerState.HALF_OPEN and not taken.eligible and "in flight" in taken.reason
    assert view(failures, at(121), record).probe_available


def test_a_failed_probe_holds_the_breaker_open_whatever_the_window_says() -> None:
    record = BreakerRecord("anthropic", open_until=at(500))
    assert view([], at(400), record).state is BreakerState.OPEN
    assert view([], at(500), record).state is BreakerState.HALF_OPEN


def test_reset_closes_and_only_later_attempts_count() -> None:
    failures = newest_first(*(sample(at(i), False) for i in range(3)))
    record = BreakerRecord("anthropic", reset_at=at(70))
    closed = view([sample(at(71)), *failures], at(72), record)
    assert closed.state is BreakerState.CLOSED and closed.stats.calls == 1


def test_slow_successes_degrade() -> None:
    slow = newest_first(*(sample(at(i * 20), duration=15) for i in range(3)))
    degraded = view(slow, at(100))
    assert degraded.state is BreakerState.DEGRADED and degraded.eligible and "latency" in degraded.reason


def test_the_worse_breaker_decides_and_a_taken_probe_wins() -> None:
    failures = newest_first(*(sample(at(i), False) for i in range(3)))
    healthy = view([], at(70))
    half_free = view(failures, at(70))
    half_taken = view(failures, at(70), BreakerRecord("anthropic", probe_owner="x", probe_expires_at=at(999)))
    assert combined(healthy, half_free) is half_free
    assert combined(half_free, half_taken) is half_taken
    assert combined(view(failures, at(10)), half_free).state is BreakerState.OPEN


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match=r"longer than health\.cooldown_s"):
        HealthThresholds(window_s=60, cooldown_s=60)
    with pytest.raises(ValueError, match="rates"):
        HealthThresholds(degraded_error_rate=0.6, open_error_rate=0.5)
