"""Anomalies in recorded model calls (:func:`detect_anomalies`) and in one metric over time
(:func:`detect_series_anomalies`). Pure: numpy and pandas only, no store, no Airflow.

Per call (:func:`detect_anomalies`), five kinds, each explained against the call's own peers. A reason starts with
its kind, then says what was seen against what is usual; a call with several findings lists them by priority::

    model change: nightly_triage/triage called gpt-4.1 for the first time, after 1,234 earlier calls (the last on …)
    error burst: anthropic failed 23 of 41 calls (56%) between 14:05 and 14:38 UTC on 2026-10-12, vs 0.9% normally
    runaway output: 8,192 output tokens, 27.3× the median (300) of 250 earlier calls of dag/task on model (took …)
    context blow-up: input 48,210 tokens, 11.8× the median (4,085) of 250 earlier calls of dag/task on model
    latency spike: 84.2 s, 14.1× the usual 6.0 s for 512 output tokens (median of 250 earlier calls of dag/task on …)

* **Peer outliers** (context blow-up: prompt tokens, i.e. input + cache reads + cache writes; runaway output:
  output tokens; latency spike: duration). The peer group is the workflow task on its model, ``(dag_id, task_id,
  model)``: a task's prompt and answer sizes are its own habit, and another model has its own speed. The baseline of
  a call is the median and the interquartile range, on a log scale, of the **earlier** successful calls of its group
  (the last :data:`WINDOW`, so slow drift is followed): robust statistics, so a few earlier anomalies do not move
  them, and computed strictly before the call, so a burst of blow-ups cannot hide itself by raising its own
  baseline. A call is flagged when it is both far out in the group's own spread (robust z = (log value − median) /
  (IQR / 1.349) ≥ :data:`Z_CALL`) and large in absolute terms (≥ :data:`MIN_RATIO` × the median): the first guards
  against noisy groups, the second against tight groups where a 30 % change would be "many sigmas". Nothing is
  judged before a group has :data:`MIN_HISTORY` earlier calls. Only ``status == "success"`` rows are judged and
  form baselines: cached rows cost nothing and take no time, and failed calls carry no usage. When one call is out
  on several metrics the most specific kind leads (runaway output explains its own long duration).
  The window quantiles are computed in one vectorised pass per statistic (pandas' rolling quantile with a custom
  window that stops at the group's first row), about 0.25 s per statistic per million calls.
* **Error bursts**: a provider's failed calls are chained while the gap to the next failure is small compared with
  the provider's normal spacing of failures (0.3 × its mean gap over the previous 7 days, 1–15 min); a chain is a
  burst when at least 3 distinct task instances failed (retries of one instance count once), at least 20 % (and
  5 × the usual rate) of the provider's calls in the stretch failed, and the binomial log-likelihood ratio against
  the provider's error rate in the 7 days before the stretch (failures in earlier bursts excluded, a 2 % prior for
  a new provider) is ≥ :data:`BURST_EVIDENCE` nats (a Chernoff bound: p ≲ e^-10). A burst is judged on its whole
  stretch, so its first failures are flagged too; the normal rate comes from before it only.
* **Model changes**: the first call of a task on a model the task never used before, once the task has
  :data:`MIN_HISTORY` earlier calls (a task that mixes models from its start is not flagged).

scikit-learn is not used here, on purpose. An IsolationForest over per-group robust z-scores was tried as a
secondary score: on the labelled benchmark (``python -m benchmarks.anomaly``) it added no recall the per-group
thresholds miss (the injected kinds are each extreme in one explained dimension) and its false positives lowered
precision, it gives no sentence a person can check ("input 11.8× the median of …"), and scoring a million calls
costs seconds of the 10 s budget. The robust per-group statistics are the model.

Per series (:func:`detect_series_anomalies`): a robust, causal Holt-Winters-style scan on a log-like scale
``y = log1p(x / c)`` (``c`` a tenth of the typical early value, so multiplicative noise has one spread and zeros are
fine). State: a level, an hour-of-day profile (sub-daily series) and a weekday profile (series sampled more often
than weekly), and a robust scale (clipped mean absolute residual). Each point is compared with level + profiles;
updates use the residual clipped at 2 scales (Huber-style), so a spike barely moves the state. A point is a spike
(or dip) when its robust z ≥ :data:`Z_SERIES` and it is ≥ 10 % off. A run of ≥ 3 points off on the same side with a
combined z (Stouffer) ≥ :data:`Z_SERIES` is a level shift: that point is flagged and the level jumps to the new one,
so what follows is normal again. Each point is judged from itself and the points before it only, so flags never
change when later data arrives. The first :data:`MIN_SERIES_HISTORY` points, and (sub-daily) a point whose hour of
day was never seen before, are "too little history"; on the first day of a weekday the weekday effect is still being
learnt and the band is widened accordingly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

#: earlier calls a peer group needs before its calls are judged on tokens or latency
MIN_HISTORY = 20
#: how many earlier calls of the group form a call's baseline
WINDOW = 250
#: robust z a peer outlier needs (log scale, IQR-based)
Z_CALL = 4.0
#: and how many times the group's median it must be
MIN_RATIO = 3.0
#: the smallest spread (log scale) assumed for a group, so a constant group still needs MIN_RATIO
_SCALE_FLOOR = 0.08
#: the fixed part of a call's duration, in units of the group's median output (see _peer_outliers)
_OVERHEAD = 1.0
#: evidence (nats of binomial log-likelihood ratio) an error burst needs
BURST_EVIDENCE = 10.0
_BURST_MIN_ERRORS = 3
_BURST_MIN_RATE = 0.2
_WEEK_MS = 7 * 86_400_000

#: points a series needs before any is judged
MIN_SERIES_HISTORY = 10
#: robust z a series point needs to be a spike or dip (and a run's combined z to be a level shift)
Z_SERIES = 4.0
_CUSUM_SLACK = 0.75
_CUSUM_LIMIT = 5.0
_CUSUM_CAP = 3.0
_MIN_EFFECT = 0.1
_SERIES_SCALE_FLOOR = 0.02

_COLUMNS = ("is_anomaly", "anomaly_score", "reason")
# the kinds, by priority (the first one found leads the reason)
_MODEL_CHANGE, _ERROR_BURST, _RUNAWAY, _BLOWUP, _LATENCY = range(5)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# -- per call ---------------------------------------------------------------------------------------------------------


@dataclass
class _Calls:
    """The columns the detectors read, as numpy arrays (positions, not labels), tolerant of missing columns."""

    frame: pd.DataFrame
    n: int
    t: np.ndarray  # int64 ns since epoch (UTC); valid only where ``has_time``
    has_time: np.ndarray
    status: np.ndarray  # object: success | error | cached | ""
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    uniques: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Calls:
        n = len(frame)
        if "started_at" in frame:
            stamps = pd.DatetimeIndex(pd.to_datetime(frame["started_at"], utc=True, errors="coerce"))
            t = stamps.as_unit("ns").asi8.copy()
            has_time = ~stamps.isna()
        else:
            t, has_time = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        if "status" in frame:
            status = frame["status"].astype(object).fillna("").astype(str).str.lower().to_numpy(object)
        else:
            status = np.full(n, "success", dtype=object)
        return cls(frame, n, t, has_time, status)

    def code(self, column: str) -> np.ndarray:
        """Integer codes of a text column (-1 missing); cached."""
        if column not in self.codes:
            if column in self.frame:
                codes, uniques = pd.factorize(self.frame[column].to_numpy(), use_na_sentinel=True)
                self.codes[column], self.uniques[column] = codes.astype(np.int64), np.asarray(uniques, dtype=object)
            else:
                self.codes[column], self.uniques[column] = np.full(self.n, -1, np.int64), np.array([], dtype=object)
        return self.codes[column]

    def name(self, column: str, position: int) -> str:
        code = self.code(column)[position]
        return str(self.uniques[column][code]) if code >= 0 else "?"

    def number(self, column: str) -> np.ndarray:
        if column not in self.frame:
            return np.full(self.n, np.nan)
        return pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def combined(self, *columns: str) -> np.ndarray:
        """One code per distinct combination of ``columns`` (missing values are a value of their own)."""
        out = np.zeros(self.n, dtype=np.int64)
        for column in columns:
            codes = self.code(column) + 1
            out = out * (int(codes.max(initial=0)) + 1) + codes
        return pd.factorize(out)[0].astype(np.int64)

    def peers(self, position: int) -> str:
        return f"{self.name('dag_id', position)}/{self.name('task_id', position)} on {self.name('model', position)}"


@dataclass
class _Findings:
    rows: list[np.ndarray] = field(default_factory=list)
    kinds: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    texts: list[list[str]] = field(default_factory=list)

    def add(self, kind: int, rows: np.ndarray, scores: np.ndarray, texts: list[str]) -> None:
        if len(rows):
            self.rows.append(rows.astype(np.int64))
            self.kinds.append(np.full(len(rows), kind))
            self.scores.append(scores.astype(float))
            self.texts.append(texts)


def detect_anomalies(calls: pd.DataFrame) -> pd.DataFrame:
    """Flag the anomalous calls among ``calls`` (one row per recorded attempt, ``call_attempts`` columns).

    Reads ``dag_id, task_id, model, provider, started_at, status, input_tokens, cache_read_tokens,
    cache_write_tokens, output_tokens, duration_s`` and, for error bursts, ``run_id, map_index``; any may be missing
    or null (the checks that need them are skipped for those rows). The order of ``calls`` does not matter: each
    call is judged against the calls that started before it.

    :return: indexed like ``calls`` (same index, same order): ``is_anomaly`` (bool), ``anomaly_score`` (float, 0 for
        a normal call, ≥ 1 for a flagged one, higher = more anomalous) and ``reason`` (``""`` for a normal call, else
        one sentence per finding, ``"; "``-joined, each starting with its kind: ``model change``, ``error burst``,
        ``runaway output``, ``context blow-up`` or ``latency spike``).
    """
    n = len(calls)
    flags, scores, reasons = np.zeros(n, dtype=bool), np.zeros(n), np.full(n, "", dtype=object)
    if n:
        data = _Calls.of(calls)
        findings = _Findings()
        _model_changes(data, findings)
        _error_bursts(data, findings)
        _peer_outliers(data, findings)
        if findings.rows:
            rows = np.concatenate(findings.rows)
            kinds = np.concatenate(findings.kinds)
            score = np.concatenate(findings.scores)
            texts = [text for group in findings.texts for text in group]
            order = np.lexsort((kinds, rows))
            np.maximum.at(scores, rows, score)
            flags[rows] = True
            joined: dict[int, list[str]] = {}
            for position in order.tolist():
                joined.setdefault(int(rows[position]), []).append(texts[position])
            for row, parts in joined.items():
                reasons[row] = "; ".join(parts)
    return pd.DataFrame({"is_anomaly": flags, "anomaly_score": scores, "reason": reasons}, index=calls.index)


def _model_changes(data: _Calls, findings: _Findings) -> None:
    """The first call of a task on a model it never used before, after MIN_HISTORY calls on other models."""
    model = data.code("model")
    live = np.flatnonzero(data.has_time & (data.status != "cached") & (model >= 0))
    if not len(live):
        return
    task = data.combined("dag_id", "task_id")[live]
    order = np.lexsort((live, data.t[live], task))
    rows, task, model = live[order], task[order], model[live][order]
    new_task = np.r_[True, task[1:] != task[:-1]]
    earlier = np.arange(len(rows)) - np.maximum.accumulate(np.where(new_task, np.arange(len(rows)), 0))
    pair = task * (int(model.max()) + 1) + model
    first = np.zeros(len(rows), dtype=bool)
    first[np.unique(pair, return_index=True)[1]] = True
    hit = np.flatnonzero(first & (earlier >= MIN_HISTORY))
    texts = [
        f"model change: {data.name('dag_id', rows[i])}/{data.name('task_id', rows[i])} called "
        f"{data.name('model', rows[i])} for the first time, after {earlier[i]:,} earlier calls "
        f"(the last on {data.name('model', rows[i - 1])})"
        for i in hit.tolist()
    ]
    findings.add(_MODEL_CHANGE, rows[hit], 1.0 + np.log10(earlier[hit] / MIN_HISTORY), texts)


def _kl(rate: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Kullback-Leibler divergence of Bernoulli(rate) from Bernoulli(base), in nats."""
    q = np.clip(rate, 1e-12, 1 - 1e-12)
    p = np.clip(base, 1e-12, 1 - 1e-12)
    return q * np.log(q / p) + (1 - q) * np.log((1 - q) / (1 - p))


def _error_bursts(data: _Calls, findings: _Findings) -> None:
    """Stretches in which a provider failed far more often than it did in the week before."""
    provider = data.code("provider")
    live = data.has_time & (data.status != "cached") & (data.status != "") & (provider >= 0)
    rows = np.flatnonzero(live)
    if not len(rows):
        return
    # retries (attempt > 1) re-send a failed call: left out of the counts, so one failing call retried counts once
    first_try = ~(data.number("attempt")[rows] > 1)
    t_ms = data.t[rows] // 1_000_000
    order = np.lexsort((rows, t_ms, provider[rows]))
    rows, p, t_ms, first_try = rows[order], provider[rows][order], t_ms[order], first_try[order]
    base = p.astype(np.int64) << 41  # one key line per provider: (provider, ms since the first call)
    key = base + (t_ms - t_ms.min())
    failed = data.status[rows] == "error"
    err = failed & first_try
    errors = np.flatnonzero(failed)
    if err.sum() < _BURST_MIN_ERRORS:
        return
    cum_calls, cum_err = np.r_[0, np.cumsum(first_try)], np.r_[0, np.cumsum(err)]
    ke, pe, te = key[errors], p[errors], t_ms[errors]
    # the provider's normal spacing of failures over the previous week decides how close failures chain
    lo = np.searchsorted(key, np.maximum(ke - _WEEK_MS, base[errors]), "left")
    provider_first = t_ms[np.searchsorted(key, base[errors], "left")]
    span = np.clip(te - provider_first, 60_000, _WEEK_MS)
    allow = np.clip(0.3 * span / np.maximum(cum_err[errors] - cum_err[lo], 1), 60_000, 900_000)
    new = np.r_[True, (pe[1:] != pe[:-1]) | (np.diff(te) > allow[1:])]
    chain = np.cumsum(new) - 1
    first, last = errors[new], errors[np.r_[new[1:], True]]
    begin, end = np.searchsorted(key, key[first], "left"), np.searchsorted(key, key[last], "right")
    n_calls, n_errors = cum_calls[end] - cum_calls[begin], cum_err[end] - cum_err[begin]
    # distinct task instances among a chain's failures (a row without a run_id is an instance of its own)
    instance = data.combined("dag_id", "task_id", "run_id", "map_index")[rows[errors]]
    instance = np.where(data.code("run_id")[rows[errors]] >= 0, instance, -1 - np.arange(len(errors)))
    counted = err[errors]
    pairs = np.unique(np.column_stack([chain[counted], instance[counted]]), axis=0)
    n_instances = np.bincount(pairs[:, 0], minlength=len(first))
    # the week before the chain, failures in earlier bursts excluded
    clean = np.zeros(len(rows), dtype=bool)
    clean[errors] = err[errors] & (n_errors[chain] < _BURST_MIN_ERRORS)
    cum_clean = np.r_[0, np.cumsum(clean)]
    before = np.searchsorted(key, np.maximum(key[first] - _WEEK_MS, base[first]), "left")
    usual = (cum_clean[begin] - cum_clean[before] + 1.0) / (cum_calls[begin] - cum_calls[before] + 50.0)
    rate = n_errors / np.maximum(n_calls, 1)
    evidence = n_calls * _kl(rate, usual)
    burst = (
        (n_instances >= _BURST_MIN_ERRORS)
        & (rate >= np.maximum(_BURST_MIN_RATE, 5 * usual))
        & (evidence >= BURST_EVIDENCE)
    )
    hit = np.flatnonzero(burst[chain])
    if not len(hit):
        return
    texts_by_chain: dict[int, str] = {}
    for c in np.flatnonzero(burst).tolist():
        since, until = (pd.Timestamp(int(data.t[rows[p]]), tz="UTC") for p in (first[c], last[c]))
        texts_by_chain[c] = (
            f"error burst: {data.name('provider', rows[first[c]])} failed {n_errors[c]:,} of {n_calls[c]:,} calls "
            f"({rate[c]:.0%}) between {since:%H:%M} and {until:%H:%M} UTC on {since:%Y-%m-%d}, "
            f"vs {usual[c]:.1%} normally"
        )
    chains = chain[hit]
    findings.add(
        _ERROR_BURST, rows[errors[hit]], evidence[chains] / BURST_EVIDENCE, [texts_by_chain[c] for c in chains.tolist()]
    )


class _EarlierCalls(BaseIndexer):
    """Each row's window: up to ``window_size`` rows before it (never itself), not before its group's first row.

    Rows are sorted by group, then time; ``group_start`` holds each row's group's first position. Both bounds
    only grow, so pandas keeps one running skiplist over the whole array: one pass per statistic.
    """

    group_start: np.ndarray

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        end = np.arange(num_values, dtype=np.int64)
        return np.maximum(self.group_start[:num_values], end - self.window_size).astype(np.int64), end


@dataclass(frozen=True)
class _Metric:
    kind: int
    label: str


def _peer_outliers(data: _Calls, findings: _Findings) -> None:
    """Prompt size, output size and duration far above the same task's earlier successful calls on its model."""
    live = np.flatnonzero(data.has_time & (data.status == "success"))
    if len(live) <= MIN_HISTORY:
        return
    group = data.combined("dag_id", "task_id", "model")[live]
    order = np.lexsort((live, data.t[live], group))
    rows, group = live[order], group[order]
    starts = np.r_[True, group[1:] != group[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
    window = _EarlierCalls(window_size=WINDOW, group_start=group_start)

    prompt = np.nansum(
        np.column_stack([data.number(c)[rows] for c in ("input_tokens", "cache_read_tokens", "cache_write_tokens")]),
        axis=1,
    )
    prompt[np.isnan(data.number("input_tokens")[rows])] = np.nan
    output = data.number("output_tokens")[rows]
    duration = data.number("duration_s")[rows]
    earlier = np.minimum(np.arange(len(rows)) - group_start, WINDOW)
    found: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for kind, values in ((_RUNAWAY, output), (_BLOWUP, prompt)):
        found[kind] = _outliers(np.log1p(np.where(values >= 0, values, np.nan)), window)
    # a long answer takes long: the duration is judged against what the group's calls take for this output size,
    # modelled as a fixed part plus a part per output token, half and half at the group's median output
    median_output = np.expm1(found[_RUNAWAY][3])
    size = (output + _OVERHEAD * median_output) / ((1 + _OVERHEAD) * median_output)
    size = np.where(np.isfinite(size) & (size > 0), size, 1.0)
    found[_LATENCY] = _outliers(np.log(np.where(duration >= 0, duration, np.nan) / size + 0.01), window)
    for kind, (out, z, ratio, median) in found.items():
        hit = np.flatnonzero(out)
        texts = []
        for i in hit.tolist():
            peers = f"{earlier[i]:,} earlier calls of {data.peers(rows[i])}"
            if kind == _BLOWUP:
                typical = math.expm1(median[i])
                texts.append(
                    f"context blow-up: input {prompt[i]:,.0f} tokens, {ratio[i]:.1f}× the median ({typical:,.0f}) "
                    f"of {peers}"
                )
            elif kind == _RUNAWAY:
                texts.append(
                    f"runaway output: {output[i]:,.0f} output tokens, {ratio[i]:.1f}× the median "
                    f"({math.expm1(median[i]):,.0f}) of {peers} (took {_seconds(duration[i])})"
                )
            else:
                usual = (math.exp(median[i]) - 0.01) * size[i]
                texts.append(
                    f"latency spike: {_seconds(duration[i])}, {ratio[i]:.1f}× the usual {_seconds(usual)} for "
                    f"{output[i]:,.0f} output tokens (median of {peers})"
                )
        findings.add(kind, rows[hit], z[hit] / Z_CALL, texts)


def _outliers(logged: np.ndarray, window: _EarlierCalls) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, robust z, ratio to the median, median) of log-scale values against their earlier peers."""
    rolling = pd.Series(logged).rolling(window, min_periods=MIN_HISTORY)
    low, median, high = (rolling.quantile(q).to_numpy() for q in (0.25, 0.5, 0.75))
    scale = np.maximum((high - low) / 1.349, _SCALE_FLOOR)
    with np.errstate(invalid="ignore"):
        z = (logged - median) / scale
        ratio = np.exp(logged - median)
        out = (z >= Z_CALL) & (ratio >= MIN_RATIO)
    return out, z, ratio, median


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "? s"
    return f"{value:,.0f} s" if value >= 100 else f"{value:.1f} s" if value >= 1 else f"{value:.2f} s"


# -- per series -------------------------------------------------------------------------------------------------------


def detect_series_anomalies(series: pd.Series) -> pd.DataFrame:
    """Flag anomalous points of one metric over time (hourly spend, an error rate, a p95 latency, ...).

    :param series: numbers on a sorted ``DatetimeIndex`` (naive or tz-aware; hour of day and weekday are read in
        the index's own time zone; spacing may be irregular and timestamps may repeat). NaN points are skipped.
    :return: one row per input point, **indexed by the input index**, same order: ``is_anomaly``, ``anomaly_score``
        (0 when normal, ≥ 1 when flagged) and ``reason`` (``""`` when normal; starts with ``spike``, ``dip`` or
        ``level shift``; ``"too little history (N points) to judge"`` for points judged too early, ``"no value"`` for
        NaN). Causal: a point's row depends only on that point and the ones before it.
    """
    n = len(series)
    values = pd.to_numeric(pd.Series(series.to_numpy()), errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
    values[~np.isfinite(values)] = np.nan
    scan = _SeriesScan(values, _series_index(series.index))
    scan.run()
    return pd.DataFrame(
        {"is_anomaly": scan.flag, "anomaly_score": scan.score, "reason": scan.reason}, index=series.index
    ).iloc[:n]


def _series_index(index: pd.Index) -> pd.DatetimeIndex | None:
    if isinstance(index, pd.DatetimeIndex):
        return index
    try:
        return pd.DatetimeIndex(index)
    except (TypeError, ValueError):
        return None


class _SeriesScan:
    """The online pass of :func:`detect_series_anomalies` (see the module docstring)."""

    def __init__(self, values: np.ndarray, index: pd.DatetimeIndex | None) -> None:
        n = len(values)
        self.x = values
        self.flag = np.zeros(n, dtype=bool)
        self.score = np.zeros(n)
        self.reason = np.full(n, "", dtype=object)
        valid = np.flatnonzero(~np.isnan(values))
        early = values[valid[:MIN_SERIES_HISTORY]]
        positive = np.abs(early[early != 0])
        later = np.abs(values[valid][values[valid] != 0])
        self.unit = 0.1 * float(np.median(positive) if len(positive) else (later[0] if len(later) else 10.0))
        self.y = np.sign(values) * np.log1p(np.abs(values) / self.unit)
        self.daily = self.weekly = False
        self.hour = self.weekday = self.day = np.zeros(n, dtype=np.int64)
        if index is not None and len(valid) > 1:
            stamps = index.asi8[valid[: MIN_SERIES_HISTORY + 1]]
            gaps = np.diff(stamps)
            gaps = gaps[gaps > 0]
            step = float(np.median(gaps)) / 3.6e12 if len(gaps) else 0.0  # hours
            self.daily = 0 < step < 24
            self.weekly = 0 < step < 24 * 7
            self.hour = index.hour.to_numpy().astype(np.int64)
            self.weekday = index.day_of_week.to_numpy().astype(np.int64)
            self.day = (index.year * 400 + index.month * 32 + index.day).to_numpy().astype(np.int64)

    def _expected(self, level: float, hour_shape: float, week_shape: float) -> float:
        e = level + hour_shape + week_shape
        return math.copysign(self.unit * math.expm1(abs(e)), e)

    def run(self) -> None:  # noqa: C901 - one online pass, kept in one place for speed
        y, x = self.y.tolist(), self.x
        hour, weekday, day = self.hour.tolist(), self.weekday.tolist(), self.day.tolist()
        daily, weekly = self.daily, self.weekly
        alpha, gamma, delta = (0.05, 0.2, 0.03) if daily else (0.15, 0.0, 0.2)
        level: float | None = None
        hour_shape: list[float | None] = [None] * 24
        hour_seen = [0] * 24
        week_shape = [0.0] * 7
        week_day = [-1] * 7  # the day a weekday was first seen on
        week_seen = [0] * 7
        scale = 0.0
        seen = 0
        warm: list[float] = []
        up = down = 0.0
        up_run: list[float] = []
        down_run: list[float] = []
        for i, yi in enumerate(y):
            if yi != yi:  # NaN
                self.reason[i] = "no value"
                continue
            h, d, today = hour[i], weekday[i], day[i]
            if level is None:
                level = yi
            if weekly and week_day[d] < 0:
                week_day[d] = today
                if any(v >= 0 for k, v in enumerate(week_day) if k != d):
                    week_shape[d] = yi - level - (hour_shape[h] or 0.0)
            shape_h = hour_shape[h] if daily else 0.0
            if seen < MIN_SERIES_HISTORY or shape_h is None:
                warm.append(yi)
                if len(warm) == MIN_SERIES_HISTORY:  # the first scale: consecutive differences, robustly
                    scale = max(1.4826 * float(np.median(np.abs(np.diff(warm)))) / math.sqrt(2), _SERIES_SCALE_FLOOR)
            if shape_h is None:  # this hour of day never seen: it defines the profile
                hour_shape[h] = yi - level - week_shape[d]
                hour_seen[h] = 1
                self.reason[i] = _too_little(seen, f"no earlier {h:02d}:00" if seen >= MIN_SERIES_HISTORY else "")
                seen += 1
                continue
            learning_weekday = weekly and week_day[d] == today
            u = yi - (level + shape_h + (week_shape[d] if weekly else 0.0))
            if seen < MIN_SERIES_HISTORY:
                self.reason[i] = _too_little(seen)
                seen += 1
                if learning_weekday:
                    week_seen[d] += 1
                    week_shape[d] += u / week_seen[d]
                else:
                    level += alpha * u
                    if daily:
                        hour_shape[h] = shape_h + gamma * u
                        hour_seen[h] += 1
                continue
            seen += 1
            spread = max(scale, _SERIES_SCALE_FLOOR) * math.sqrt(1.0 + (1.0 / hour_seen[h] if daily else 0.0))
            if learning_weekday:
                spread = math.hypot(spread, 0.7 / math.sqrt(1.0 + week_seen[d]))
            z = u / spread
            big = abs(z) >= Z_SERIES and abs(u) >= _MIN_EFFECT
            if big:
                self._spike(i, z, level, shape_h, week_shape[d] if weekly else 0.0)
            if learning_weekday:
                if not big:
                    week_seen[d] += 1
                    week_shape[d] += u / week_seen[d]
                continue
            # level shift: two one-sided CUSUMs of the (capped) z-scores; a single spike cannot trip them alone
            capped = max(-_CUSUM_CAP, min(_CUSUM_CAP, z))
            up, down = max(0.0, up + capped - _CUSUM_SLACK), max(0.0, down - capped - _CUSUM_SLACK)
            up_run = [*up_run, u] if up > 0 else []
            down_run = [*down_run, u] if down > 0 else []
            side = up_run if up >= _CUSUM_LIMIT else down_run if down >= _CUSUM_LIMIT else []
            shift = float(np.median(side)) if len(side) >= 3 else 0.0
            if abs(shift) >= max(_MIN_EFFECT, 1.5 * spread):
                shapes = shape_h + (week_shape[d] if weekly else 0.0)
                before, after = self._expected(level, shapes, 0.0), self._expected(level + shift, shapes, 0.0)
                if x[i] >= 0:  # a count or an amount: what was expected is never below zero
                    before, after = max(before, 0.0), max(after, 0.0)
                level += shift
                self.flag[i] = True
                self.score[i] = max(self.score[i], max(up, down) / _CUSUM_LIMIT)
                times = f" (about {after / before:.2g}×)" if before > 0 and after >= 0 else ""
                self.reason[i] = (
                    f"level shift: {_num(x[i])} vs about {_num(before)} expected, the last {len(side)} points mostly "
                    f"{'above' if shift > 0 else 'below'} it{times}; the new level is normal from here on"
                )
                up = down = 0.0
                up_run, down_run = [], []
                continue
            clipped = max(-2 * spread, min(2 * spread, u))
            level += alpha * clipped
            if daily:
                hour_shape[h] = shape_h + gamma * clipped
                hour_seen[h] += 1
            if weekly:
                week_shape[d] += delta * clipped
            scale = max((1 - 0.05) * scale + 0.05 * 1.28 * min(abs(u), 2 * scale), _SERIES_SCALE_FLOOR)

    def _spike(self, i: int, z: float, level: float, shape_h: float, shape_w: float) -> None:
        value = float(self.x[i])
        expected = self._expected(level, shape_h, shape_w)
        if value >= 0:  # a count or an amount: what was expected is never below zero
            expected = max(expected, 0.0)
        self.flag[i] = True
        self.score[i] = abs(z) / Z_SERIES
        times = f" ({value / expected:.1f}×)" if expected > 0 and value >= 0 else ""
        word = "spike" if z > 0 else "dip"
        self.reason[i] = f"{word}: {_num(value)} vs about {_num(expected)} expected{times}"


def _too_little(points: int, detail: str = "") -> str:
    extra = f", {detail}" if detail else ""
    return f"too little history ({points} point{'s' if points != 1 else ''}{extra}) to judge"


def _num(value: Any) -> str:
    v = float(value)
    if not math.isfinite(v):
        return "?"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"
