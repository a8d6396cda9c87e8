"""The anomaly scan: what ``supervisor_anomaly_scan`` runs every few minutes.

Incremental: it looks at calls recorded since its watermark (minus a grace period, for rows a spool flushed late),
with enough earlier calls of the same tasks and providers for the detectors' baselines, runs the pure detectors
(:mod:`supervisor_lib.analytics.anomaly`) on them and on hourly series from the rollups (spend per DAG, p95
latency per model), forecasts the open month budget windows (stored for the router and the views:
:mod:`supervisor_lib.analytics.spend`), checks every open budget window against its projection, and stores what it
finds (:mod:`supervisor_lib.analytics.findings`: deduplicated, mutes applied). Alerts go out separately
(:mod:`supervisor_lib.analytics.alerts`), so a failed notifier never loses a finding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from supervisor_lib.analytics import findings as store_findings
from supervisor_lib.analytics.filters import Filters
from supervisor_lib.analytics.findings import Finding
from supervisor_lib.analytics.operations import budgets
from supervisor_lib.analytics.spend import refresh_budget_forecasts
from supervisor_lib.routing.budgets import EPSILON_USD, usd
from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.db import Store
from supervisor_lib.store.rollups import LATENCY_COLUMNS, percentile

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: how far back the baselines look (earlier calls of the same tasks; series history)
HISTORY = timedelta(days=14)
#: calls recorded up to this late (a spool flushed after an outage) are still scanned
GRACE = timedelta(minutes=30)
#: the most calls one scan loads (the newest); beyond it the oldest history is left out
MAX_CALLS = 1_500_000
#: on the first scan of a store, look back this far for findings (the history before it only serves as baseline)
FIRST_LOOKBACK = timedelta(days=1)
CALLS_SCOPE = "calls"
_CALL_COLUMNS = (
    "call_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "attempt", "provider", "model",
    "task_type", "started_at", "duration_s", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "status", "outcome", "error_type", "request_id", "team", "tags",
)  # fmt: skip
#: a detector's reason starts with its kind's label (several findings: the leading one first)
_KIND_LABELS = (("model change", "model_change"), ("error burst", "error_burst"), ("runaway output", "runaway_output"),
                ("context blow-up", "context_blowup"), ("latency spike", "latency_spike"))  # fmt: skip


@dataclass
class ScanResult:
    """What one scan looked at and found."""

    since: datetime
    until: datetime
    calls_scanned: int = 0
    history_calls: int = 0
    series_scanned: int = 0
    budgets_forecast: int = 0
    new: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for finding in self.new:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing new"
        return (
            f"scanned {self.calls_scanned} calls since {self.since.isoformat()} (with {self.history_calls}"
            f" earlier calls as baseline) and {self.series_scanned} series, forecast {self.budgets_forecast} budget"
            f" window(s) in {self.seconds:.1f}s: {found}"
        )


def scan(store: Store, now: datetime | None = None, since: datetime | None = None,
         budget_shares: Mapping[str, Sequence[float]] | None = None) -> ScanResult:  # fmt: skip
    """Scan what was recorded since the last scan (or since ``since``); store and return the new findings.

    :param budget_shares: per DAG id, the shares of its budgets' limits whose crossing to record (a spec's
        ``notify.on_budget``).
    """
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    last = store_findings.watermark(store, CALLS_SCOPE)
    since = since or ((last - GRACE) if last else now - FIRST_LOOKBACK)
    result = ScanResult(since=since, until=now)
    calls = load_calls(store, since - HISTORY, now)
    found: list[Finding] = []
    if len(calls):
        fresh = calls["started_at"] >= since
        result.calls_scanned, result.history_calls = int(fresh.sum()), int((~fresh).sum())
        found += call_findings(calls, since)
    series, series_found = series_findings(store, since, now)
    result.series_scanned = series
    found += series_found
    result.budgets_forecast = refresh_budget_forecasts(store, now)
    found += budget_findings(store, now)
    found += budget_share_findings(store, now, budget_shares or {})
    result.new = store_findings.record(store, found, now)
    store_findings.set_watermark(store, CALLS_SCOPE, now, now)
    result.seconds = time.perf_counter() - began
    log.info("anomaly scan: %s", result.summary())
    return result


def load_calls(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """The calls that started in ``[start, end)``, newest :data:`MAX_CALLS`, as the detectors want them."""
    import pandas as pd

    sql = (f"SELECT {', '.join(_CALL_COLUMNS)} FROM call_attempts WHERE started_at >= ? AND started_at < ?"
           f" ORDER BY started_at DESC LIMIT {MAX_CALLS}")  # fmt: skip

    def work(cur: StoreCursor) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in cur.execute(sql, (start, end)).fetchall()]

    frame = pd.DataFrame.from_records(store.run(work), columns=list(_CALL_COLUMNS))
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
    return frame.iloc[::-1].reset_index(drop=True)  # oldest first


def call_findings(calls: pd.DataFrame, since: datetime) -> list[Finding]:
    """Per-call anomalies among the calls that started since ``since`` (earlier ones are the baseline)."""
    from supervisor_lib.analytics.anomaly import detect_anomalies

    flagged = detect_anomalies(calls)
    hits = calls.assign(**{column: flagged[column] for column in ("is_anomaly", "anomaly_score", "reason")})
    hits = hits[hits["is_anomaly"].astype(bool) & (hits["started_at"] >= since)]
    found = []
    for _, row in hits.iterrows():
        kind = kind_of(str(row["reason"]))
        at = row["started_at"].to_pydatetime()
        group = (f"{kind}|provider:{row['provider']}|{at:%Y-%m-%dT%H}" if kind == "error_burst"
                 else f"{kind}|task:{row['dag_id']}.{row['task_id']}|{at:%Y-%m-%d}")  # fmt: skip
        found.append(Finding(
            kind=kind, subject=f"call:{row['call_id']}", occurred_at=at, score=float(row["anomaly_score"]),
            reason=str(row["reason"]), group_key=group, dag_id=row["dag_id"], run_id=row["run_id"],
            task_id=row["task_id"], map_index=int(row["map_index"]), call_id=row["call_id"],
            provider=row["provider"], model=row["model"],
        ))  # fmt: skip
    return found


def kind_of(reason: str) -> str:
    """The kind of a call finding: the label its reason starts with."""
    text = reason.strip().lower()
    return next((kind for label, kind in _KIND_LABELS if text.startswith(label)), "context_blowup")


#: hours with fewer timed calls than this have no p95 worth judging (a p95 of three calls is their maximum)
MIN_TIMED_CALLS = 20


def hourly_series(store: Store, start: datetime, end: datetime) -> dict[tuple[str, str], pd.Series]:
    """Hourly spend per DAG and p95 latency per model (hours with at least :data:`MIN_TIMED_CALLS` timed calls),
    from the hour rollups.

    Error rates are not a series here: a provider's failures are judged per call, with their counts, as error
    bursts (an hourly rate cannot tell 1 failure of 2 calls from 50 of 100).
    """
    import pandas as pd

    where, params = Filters(start, end).where(grain="hour")  # per hour, however long the range
    hist = ", ".join(f"SUM({column})" for column in LATENCY_COLUMNS)
    sql = (f"SELECT bucket, dag_id, model, SUM(cost_usd), SUM(CASE WHEN outcome = 'cached' THEN 0 ELSE calls END),"
           f" {hist} FROM call_rollups WHERE {where} GROUP BY bucket, dag_id, model")  # fmt: skip
    rows = store.run(lambda cur: [tuple(r) for r in cur.execute(sql, tuple(params)).fetchall()])
    if not rows:
        return {}
    frame = pd.DataFrame.from_records(rows, columns=["bucket", "dag_id", "model", "cost", "timed", *LATENCY_COLUMNS])
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True, format="ISO8601")
    hours = pd.date_range(frame["bucket"].min(), frame["bucket"].max(), freq="h")
    found: dict[tuple[str, str], pd.Series] = {}
    for dag_id, part in frame.groupby("dag_id"):
        found[("spend_spike", f"dag:{dag_id}")] = part.groupby("bucket")["cost"].sum().reindex(hours, fill_value=0.0)
    for model, part in frame.groupby("model"):
        per_hour = part.groupby("bucket")[["timed", *LATENCY_COLUMNS]].sum()
        per_hour = per_hour[per_hour["timed"] >= MIN_TIMED_CALLS]
        if per_hour.empty:
            continue
        p95 = per_hour[list(LATENCY_COLUMNS)].apply(lambda hist: percentile([int(v) for v in hist], 0.95), axis=1)
        found[("latency_p95", f"model:{model}")] = p95.dropna().astype(float)
    return found


def series_findings(store: Store, since: datetime, now: datetime) -> tuple[int, list[Finding]]:
    """Series anomalies at the hours since ``since`` (the detector is causal: earlier flags never change).

    Only what costs or hurts is a finding: spikes and upward level shifts, not dips. A spend spike must also be
    material: at least the series' typical busy hour (the median of its hours with spend) above it, so one stray
    call in a quiet hour of a cheap DAG is not an anomaly.
    """
    from supervisor_lib.analytics.anomaly import detect_series_anomalies

    first_new = since.replace(minute=0, second=0, microsecond=0)
    found = []
    series = hourly_series(store, since - HISTORY, now)
    for (kind, subject), values in series.items():
        if values.empty or values.index.max() < first_new:
            continue
        flagged = detect_series_anomalies(values)
        rising = flagged["reason"].str.startswith("spike") | flagged["reason"].str.contains("mostly above", regex=False)
        hits = flagged["is_anomaly"].astype(bool) & rising & (flagged.index >= first_new)
        if kind == "spend_spike":
            busy = values[values > 0].expanding().median().reindex(values.index).ffill().shift(1)
            hits &= values >= 2 * busy.fillna(float("inf"))
        for at, row in flagged[hits].iterrows():
            when = at.to_pydatetime()
            name = subject.split(":", 1)[1]
            found.append(Finding(
                kind=kind, subject=subject, occurred_at=when, score=float(row["anomaly_score"]),
                reason=f"{_SERIES_LABEL[kind]} of {subject.replace(':', ' ', 1)} at {when:%Y-%m-%d %H:00} UTC: "
                       f"{row['reason']}",
                group_key=f"{kind}|{subject}|{when:%Y-%m-%d}",
                dag_id=name if subject.startswith("dag:") else None,
                model=name if subject.startswith("model:") else None,
            ))  # fmt: skip
    return len(series), found


_SERIES_LABEL = {"spend_spike": "hourly spend", "latency_p95": "hourly p95 latency"}


def budget_findings(store: Store, now: datetime) -> list[Finding]:
    """Budgets projected to run out before their window ends (once per window)."""
    found = []
    for budget in budgets(store, None, now):
        limit, forecast = budget["limit_usd"], budget["forecast_usd"]
        if limit is None or forecast is None or forecast <= limit or budget["window_end"] is None:
            continue
        committed = budget["settled_usd"] + budget["reserved_usd"]
        subject, name = [*budget["budget_key"].split(":"), ""][:2]
        found.append(Finding(
            kind="budget_runout", subject=f"budget:{budget['budget_key']}|{budget['window']}", occurred_at=now,
            score=round(forecast / limit, 3),
            reason=_budget_reason(budget, committed),
            group_key=f"budget_runout|{budget['budget_key']}|{budget['window']}",
            dag_id=name if subject in ("dag", "run") else None,
            provider=name if subject == "provider" else None,
            about=f"{budget['budget_key']}|{budget['window']}",  # once per window, whenever it is seen
        ))  # fmt: skip
    return found


def budget_share_findings(store: Store, now: datetime, shares: Mapping[str, Sequence[float]]) -> list[Finding]:
    """The shares of a DAG's own budget limits (per run, day, month) its settled spend has crossed: one finding per
    window and share, whenever it is seen (so once per crossing), one message per window."""
    found = []
    for budget in budgets(store, frozenset(shares), now) if shares else ():
        limit, settled = budget["limit_usd"], budget["settled_usd"]
        dag_id = budget["budget_key"].split(":")[1]
        if not limit:
            continue
        for share in (share for share in shares.get(dag_id, ()) if settled >= share * limit - EPSILON_USD):
            found.append(Finding(
                kind="budget_share", subject=f"budget:{budget['budget_key']}|{budget['window']}", occurred_at=now,
                score=round(settled / limit, 3),
                reason=f"{budget['label']}, window {budget['window']}: {_money(settled)} spent, past {share:.0%} of "
                       f"the {_money(limit)} limit",
                group_key=f"budget_share|{budget['budget_key']}|{budget['window']}", dag_id=dag_id,
                about=f"{budget['budget_key']}|{budget['window']}|{share}",
            ))  # fmt: skip
    return found


def _budget_reason(budget: dict[str, Any], committed: float) -> str:
    end = as_datetime(budget["window_end"])
    last_day = (end - timedelta(microseconds=1)).date() if end is not None else None
    how = ("at the pace so far" if budget["forecast_method"] == "run-rate"
           else f"forecast from the daily spend ({budget['forecast_method']})")  # fmt: skip
    band = (f" (80 %: {_money(budget['forecast_low_usd'])} to {_money(budget['forecast_high_usd'])})"
            if budget["forecast_low_usd"] is not None else "")  # fmt: skip
    runs_out = f"; it runs out around {budget['runs_out_at'][:10]}" if budget["runs_out_at"] else ""
    return (
        f"{budget['label']}: {_money(committed)} committed so far; {how}, {_money(budget['forecast_usd'])}{band} by "
        f"{last_day:%Y-%m-%d}, over the {_money(budget['limit_usd'])} limit{runs_out}"
    )


def _money(value: float) -> str:
    """Cents from a dollar up (a budget's scale), smaller amounts as precisely as a call's cost."""
    return f"${value:,.2f}" if abs(value) >= 1 else usd(value)


def scan_all(store: Store, scans: Iterable[datetime]) -> list[ScanResult]:
    """Several scans in a row (as if the DAG ran at each time): for demos and tests."""
    return [scan(store, now) for now in scans]
