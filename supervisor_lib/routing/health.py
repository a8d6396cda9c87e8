"""Circuit breakers, per provider and per model, computed from recorded call attempts (pure: no I/O, no Airflow).

A breaker is *closed* (calls go through), *open* (the router skips the provider or model) or *half-open* (after
a cool-down, one probe call may go through; its outcome closes the breaker or opens it again).

The evidence is the ``call_attempts`` table every call writes, so every worker and the triggerer see the same
health, and calls made outside the router count too. A breaker *trips* when, within the sliding window (and since
it last closed), the newest attempts hold ``consecutive_failures`` retryable failures in a row, or when at least
``min_calls`` attempts hold an ``open_error_rate`` share of them. It then stays open for ``cooldown_s`` after the
last failure. Only what a later call could get past counts as a failure (429, 5xx, 529, timeouts: recorded as
``RetryableError``); a bad request or a rejected key says nothing about the provider's health.

What the store keeps besides attempts (one ``router_breakers`` row per key): ``reset_at`` (when the breaker last
closed: older attempts no longer count), an explicit ``open_until`` after a failed probe, and the probe claim, so
two workers never both probe.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: the ``error_type`` recorded for failures that say the provider is unwell
HEALTH_FAILURE_TYPES = frozenset({"RetryableError"})


class BreakerState(StrEnum):
    """What the router does with a provider or model."""

    CLOSED = "closed"  #: healthy: eligible
    DEGRADED = "degraded"  #: closed, but erring or slow: eligible, ranked after the healthy ones
    HALF_OPEN = "half_open"  #: one probe call may go through
    OPEN = "open"  #: skipped


@dataclass(frozen=True)
class HealthThresholds:
    """When breakers trip and how long they stay open (the catalogue's ``routing.health``).

    :param window_s: the sliding window of attempts looked at; must be longer than ``cooldown_s``.
    :param consecutive_failures: this many retryable failures in a row (newest first) trip the breaker.
    :param min_calls: the error-rate rule needs at least this many attempts in the window.
    :param open_error_rate: the share of retryable failures that trips the breaker.
    :param degraded_error_rate: a lower share that only ranks the model after the healthy ones.
    :param slow_latency_s: a median success latency above this also marks it degraded.
    :param cooldown_s: how long a tripped breaker stays open after its last failure.
    :param probe_ttl_s: a probe claim that was never finished (a killed worker) lapses after this.
    :param max_samples: the most attempts read per decision (the newest), bounding its cost.
    """

    window_s: float = 300.0
    consecutive_failures: int = 3
    min_calls: int = 10
    open_error_rate: float = 0.5
    degraded_error_rate: float = 0.2
    slow_latency_s: float = 60.0
    cooldown_s: float = 60.0
    probe_ttl_s: float = 300.0
    max_samples: int = 2000

    def __post_init__(self) -> None:
        if self.window_s <= self.cooldown_s:
            raise ValueError(
                f"health.window_s ({self.window_s}) must be longer than health.cooldown_s ({self.cooldown_s}), "
                "or the failures that opened a breaker would leave the window before its probe"
            )
        if self.consecutive_failures < 1 or self.min_calls < 1:
            raise ValueError("health.consecutive_failures and health.min_calls must be at least 1")
        if not 0 < self.degraded_error_rate <= self.open_error_rate <= 1:
            raise ValueError("health rates must satisfy 0 < degraded_error_rate <= open_error_rate <= 1")


@dataclass(frozen=True)
class Sample:
    """One recorded attempt, as health sees it.

    :param ok: ``True`` success, ``False`` a retryable failure, ``None`` says nothing about health (e.g. a 400).
    """

    provider: str
    model: str
    started_at: datetime
    duration_s: float
    ok: bool | None

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.duration_s)

    @classmethod
    def from_row(cls, provider: str, model: str, status: str, error_type: str | None, started_at: datetime,
                 duration_s: float) -> Sample:  # fmt: skip
        """A ``call_attempts`` row (``cached`` rows are not calls and must be filtered out before)."""
        ok = True if status == "success" else (False if error_type in HEALTH_FAILURE_TYPES else None)
        return cls(provider, model, started_at, float(duration_s or 0.0), ok)


@dataclass(frozen=True)
class BreakerRecord:
    """The stored part of a breaker (``router_breakers``); absent means closed and never reset."""

    key: str
    reset_at: datetime | None = None
    open_until: datetime | None = None
    probe_owner: str | None = None
    probe_expires_at: datetime | None = None

    def probe_taken(self, now: datetime) -> bool:
        """Whether another caller holds an unexpired probe claim."""
        return self.probe_owner is not None and self.probe_expires_at is not None and self.probe_expires_at > now


@dataclass(frozen=True)
class WindowStats:
    """What the window holds for one breaker key."""

    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_failure_at: datetime | None = None
    median_latency_s: float | None = None

    @property
    def error_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class BreakerView:
    """A breaker's state now, and why."""

    key: str
    state: BreakerState
    reason: str
    stats: WindowStats
    open_until: datetime | None = None
    probe_available: bool = False

    @property
    def eligible(self) -> bool:
        """Whether the router may send a call (a half-open breaker only with its probe still free)."""
        return self.state in (BreakerState.CLOSED, BreakerState.DEGRADED) or self.probe_available


def breaker_keys(provider: str, model: str) -> tuple[str, str]:
    """The two breakers a call passes: its provider's and its model's."""
    return provider, f"{provider}/{model}"


def window_stats(samples: Iterable[Sample]) -> WindowStats:
    """Stats of ``samples`` (newest first) that carry a health signal."""
    signals = [s for s in samples if s.ok is not None]
    failures = [s for s in signals if not s.ok]
    consecutive = next((i for i, s in enumerate(signals) if s.ok), len(signals))
    latencies = [s.duration_s for s in signals if s.ok]
    return WindowStats(
        calls=len(signals),
        failures=len(failures),
        consecutive_failures=consecutive,
        last_failure_at=max((s.ended_at for s in failures), default=None),
        median_latency_s=statistics.median(latencies) if latencies else None,
    )


def tripped(stats: WindowStats, limits: HealthThresholds) -> str | None:
    """Why the stats trip a breaker, or ``None``."""
    if stats.consecutive_failures >= limits.consecutive_failures:
        return f"{stats.consecutive_failures} retryable failures in a row"
    if stats.calls >= limits.min_calls and stats.error_rate >= limits.open_error_rate:
        return f"{stats.failures}/{stats.calls} calls failed ({stats.error_rate:.0%})"
    return None


def breaker_view(
    key: str, samples: Sequence[Sample], record: BreakerRecord | None, now: datetime, limits: HealthThresholds
) -> BreakerView:
    """The state of breaker ``key`` at ``now`` from its samples (newest first, any age) and stored record."""
    record = record or BreakerRecord(key)
    since = now - timedelta(seconds=limits.window_s)
    if record.reset_at is not None:
        since = max(since, record.reset_at)
    stats = window_stats(s for s in samples if s.started_at >= since)
    if record.open_until is not None:  # a failed probe: open until then, half-open after, whatever the stats
        return _opened(key, stats, record, now, record.open_until, "its probe call failed")
    if (why := tripped(stats, limits)) is not None and stats.last_failure_at is not None:
        return _opened(key, stats, record, now, stats.last_failure_at + timedelta(seconds=limits.cooldown_s), why)
    return _closed(key, stats, limits)


def _opened(
    key: str, stats: WindowStats, record: BreakerRecord, now: datetime, until: datetime, why: str
) -> BreakerView:
    if now < until:
        return BreakerView(key, BreakerState.OPEN, f"open until {until:%H:%M:%S} UTC: {why}", stats, until)
    if record.probe_taken(now):
        return BreakerView(key, BreakerState.HALF_OPEN, f"half-open ({why}); a probe call is in flight", stats, until)
    return BreakerView(key, BreakerState.HALF_OPEN, f"half-open ({why}); probe allowed", stats, until, True)


def _closed(key: str, stats: WindowStats, limits: HealthThresholds) -> BreakerView:
    if stats.calls >= limits.min_calls and stats.error_rate >= limits.degraded_error_rate:
        return BreakerView(key, BreakerState.DEGRADED, f"degraded: {stats.error_rate:.0%} of calls failed", stats)
    if stats.median_latency_s is not None and stats.median_latency_s > limits.slow_latency_s:
        return BreakerView(key, BreakerState.DEGRADED, f"degraded: median latency {stats.median_latency_s:.1f}s", stats)
    return BreakerView(key, BreakerState.CLOSED, "healthy", stats)


_SEVERITY = {BreakerState.CLOSED: 0, BreakerState.DEGRADED: 1, BreakerState.HALF_OPEN: 2, BreakerState.OPEN: 3}


def combined(provider_view: BreakerView, model_view: BreakerView) -> BreakerView:
    """The breaker that decides for a call: the worse of its provider's and its model's.

    A half-open pair is eligible only if every half-open one still has its probe free.
    """
    worse = max((provider_view, model_view), key=lambda view: _SEVERITY[view.state])
    if worse.state is BreakerState.HALF_OPEN:
        halves = [v for v in (provider_view, model_view) if v.state is BreakerState.HALF_OPEN]
        if not all(v.probe_available for v in halves):
            return next(v for v in halves if not v.probe_available)
    return worse


def probe_keys(provider_view: BreakerView, model_view: BreakerView) -> tuple[str, ...]:
    """The keys a call must claim a probe on before it is sent (empty for a closed pair)."""
    return tuple(v.key for v in (provider_view, model_view) if v.state is BreakerState.HALF_OPEN)
