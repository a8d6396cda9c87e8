"""Labelled synthetic data for the anomaly detectors and the spend forecast (pure: numpy and pandas only).

* :func:`calls_history`: a history of recorded model-call attempts in the ``call_attempts`` schema (every column of
  the table, same names; ``started_at`` tz-aware UTC; ``cost_usd`` NaN for an unpriced model), plus a ``label``
  column: ``""`` for a normal call, else the kind of anomaly injected into that row (:data:`KINDS`). Several DAGs
  x tasks x models with their own habits (prompt and answer sizes, spread, model speed), weekday seasonality
  (fewer calls on weekends), an hour-of-day pattern per DAG, slow growth of traffic and gradual drift of prompt
  sizes, provider errors with retries, response-cache hits, an unpriced model. Injected anomalies, realistic in
  size: context blow-ups (the prompt 4-20x the task's habit, in episodes of 1-4 calls), latency spikes (5-30x),
  runaway output (the answer runs into ``max_tokens``, 5-50x the task's median), error bursts (one provider failing
  10-60 min at 30-100 %), silent model changes (from some point on a task uses another model; the first call on
  the new model carries the label). Deterministic from ``seed``.
* :func:`labelled_series`: metric series over time (hourly spend-like values) with labelled spikes, level shifts
  and strong daily/weekly seasonality.
* :func:`spend_series`: daily spend series (flat, weekly seasonal, trending) for forecast backtests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

#: the kinds of per-call anomaly :func:`calls_history` injects (the ``label`` values besides ``""``)
KINDS: tuple[str, ...] = ("context_blowup", "latency_spike", "runaway_output", "error_burst", "model_change")
#: the kinds of series anomaly :func:`labelled_series` injects
SERIES_KINDS: tuple[str, ...] = ("spike", "level_shift")
#: the families of series :func:`labelled_series` makes
SERIES_FAMILIES: tuple[str, ...] = ("spikes", "level_shifts", "seasonal")
#: the shapes of daily spend :func:`spend_series` makes
SPEND_SHAPES: tuple[str, ...] = ("flat", "weekly", "trending")
DEFAULT_START = datetime(2026, 10, 1, tzinfo=UTC)

_CALL_COLUMNS: tuple[str, ...] = (
    "call_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "attempt", "provider", "model", "task_type",
    "started_at", "duration_s", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_usd", "status", "error_type", "request_id", "team", "tags", "deferred", "outcome", "error_message",
    "cost_basis", "saved_usd",
)  # fmt: skip


@dataclass(frozen=True)
class _Model:
    provider: str
    #: USD per million tokens: input, output, cache read, cache write (None: unpriced)
    prices: tuple[float, float, float, float] | None
    tokens_per_s: float
    first_token_s: float


_MODELS: dict[str, _Model] = {
    "claude-haiku-4-5": _Model("anthropic", (1.00, 5.00, 0.10, 1.25), 150.0, 0.45),
    "claude-sonnet-4-5": _Model("anthropic", (3.00, 15.00, 0.30, 3.75), 75.0, 0.80),
    "claude-sonnet-4-6": _Model("anthropic", (3.00, 15.00, 0.30, 3.75), 80.0, 0.75),
    "claude-opus-4-6": _Model("anthropic", (5.00, 25.00, 0.50, 6.25), 45.0, 1.20),
    "gpt-4.1-mini": _Model("openai", (0.40, 1.60, 0.10, 0.0), 110.0, 0.40),
    "gpt-4.1": _Model("openai", (2.00, 8.00, 0.50, 0.0), 70.0, 0.60),
    "gpt-5-mini": _Model("openai", (0.25, 2.00, 0.025, 0.0), 90.0, 1.40),
    "gpt-oss-120b": _Model("openai", None, 120.0, 0.50),  # served behind an OpenAI-compatible API, no price known
}

# hour-of-day weights (UTC) and weekday weights (Mon..Sun) of the DAGs' schedules
_HOURS = {
    "business": np.array([1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 15, 15, 14, 15, 15, 14, 12, 9, 6, 4, 3, 2, 1, 1], float),
    "nightly": np.array([10, 14, 16, 14, 10, 6, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 7], float),
    "always": np.array([5, 4, 4, 4, 4, 5, 6, 8, 9, 10, 10, 10, 10, 10, 10, 10, 10, 9, 8, 7, 7, 6, 6, 5], float),
}
_WEEKDAYS = {
    "business": np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.25, 0.2]),
    "nightly": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.8]),
    "always": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.55, 0.5]),
}


@dataclass(frozen=True)
class _Task:
    dag_id: str
    task_id: str
    task_type: str
    team: str
    tags: str | None
    schedule: str
    models: tuple[str, ...]  # the first is the main model; a second one takes a share of the calls
    weight: float  # relative volume
    prompt: float  # median prompt tokens
    answer: float  # median output tokens
    mapped: bool = False
    prompt_cache: bool = False
    response_cache: float = 0.0  # share of calls answered from the response cache
    deferred: bool = False


_CATALOGUE: tuple[_Task, ...] = (
    _Task("nightly_triage", "triage", "classify", "support", "nightly,prod", "nightly",
          ("claude-haiku-4-5",), 10, 900, 60, mapped=True, prompt_cache=True),
    _Task("nightly_triage", "summarise", "summarise", "support", "nightly,prod", "nightly",
          ("claude-sonnet-4-5",), 4, 6000, 500, prompt_cache=True),
    _Task("nightly_triage", "label", "classify", "support", "nightly,prod", "nightly",
          ("gpt-4.1-mini",), 6, 700, 25, mapped=True, response_cache=0.08),
    _Task("pr_review", "review", "code", "dev", "prod", "business",
          ("claude-sonnet-4-5", "gpt-4.1"), 9, 12000, 900, prompt_cache=True, deferred=True),
    _Task("pr_review", "comment", "chat", "dev", "prod", "business",
          ("claude-haiku-4-5",), 7, 2500, 250),
    _Task("support_reply", "draft", "chat", "support", "prod,customer", "always",
          ("gpt-4.1", "claude-sonnet-4-5"), 12, 3000, 400, mapped=True),
    _Task("support_reply", "check", "classify", "support", "prod,customer", "always",
          ("claude-haiku-4-5",), 12, 1200, 40, response_cache=0.05),
    _Task("docs_summarise", "chunk_summary", "summarise", "data", None, "nightly",
          ("gpt-4.1-mini",), 14, 4000, 300, mapped=True, response_cache=0.12),
    _Task("docs_summarise", "final", "summarise", "data", None, "nightly",
          ("gpt-4.1",), 1.5, 9000, 1200),
    _Task("code_fix", "plan", "code", "dev", "experiment", "business",
          ("claude-opus-4-6",), 2, 20000, 1500, prompt_cache=True, deferred=True),
    _Task("code_fix", "patch", "code", "dev", "experiment", "business",
          ("claude-sonnet-4-5",), 5, 25000, 2500, prompt_cache=True, deferred=True),
    _Task("code_fix", "explain_tests", "chat", "dev", "experiment", "business",
          ("gpt-5-mini",), 2, 5000, 600),
    _Task("data_extract", "extract", "extract", "data", "batch", "always",
          ("gpt-oss-120b",), 6, 1800, 350, mapped=True),
    _Task("data_extract", "validate", "classify", "data", "batch", "always",
          ("gpt-4.1-mini",), 4, 2200, 30),
)  # fmt: skip


def _utc(start: datetime | date | str | None) -> pd.Timestamp:
    if start is None:
        return pd.Timestamp(DEFAULT_START)
    stamp = pd.Timestamp(start)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _hex_ids(rng: np.random.Generator, n: int, prefix: str = "") -> np.ndarray:
    """``n`` random 32-hex-digit ids (what the recorder's sha256-derived ids look like)."""
    text = rng.bytes(16 * n).hex()
    return np.array([prefix + text[i : i + 32] for i in range(0, 32 * n, 32)], dtype=object)


def _run_ids(stamps: pd.DatetimeIndex) -> np.ndarray:
    """``scheduled__<hour>``: the scheduled run of the hour a call started in (formatted once per hour)."""
    codes, hours = pd.factorize(stamps.floor("h"))
    names = np.array([f"scheduled__{hour.isoformat()}" for hour in hours], dtype=object)
    return names[codes] if len(names) else np.array([], dtype=object)


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int | None = None) -> Any:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


@dataclass
class _Draw:
    """The per-seed habits of each task: spread of prompt and answer, drift, max_tokens, the second model's share."""

    sd_prompt: np.ndarray
    sd_answer: np.ndarray
    drift: np.ndarray  # total factor on the prompt size over the period
    cap: np.ndarray  # max_tokens
    second_share: np.ndarray
    error_rate: dict[str, float]


def _draw(rng: np.random.Generator) -> _Draw:
    n = len(_CATALOGUE)
    answers = np.array([task.answer for task in _CATALOGUE])
    cap = np.round(answers * _log_uniform(rng, 5.0, 50.0, n) / 16) * 16
    return _Draw(
        sd_prompt=rng.uniform(0.10, 0.35, n),
        sd_answer=rng.uniform(0.15, 0.45, n),
        drift=_log_uniform(rng, 0.8, 1.5, n),
        cap=np.maximum(cap, 64),
        second_share=rng.uniform(0.25, 0.5, n),
        error_rate={"anthropic": float(rng.uniform(0.004, 0.015)), "openai": float(rng.uniform(0.004, 0.015))},
    )


def _times(rng: np.random.Generator, task_index: np.ndarray, start: pd.Timestamp, days: int) -> np.ndarray:
    """Start times (ns since epoch) by each task's schedule: hour-of-day and weekday weights, +30 % growth."""
    slots = start.value + np.arange(days * 24, dtype=np.int64) * 3_600_000_000_000
    stamps = pd.DatetimeIndex(slots, tz=UTC)
    growth = 1.0 + 0.3 * np.arange(len(slots)) / max(len(slots) - 1, 1)
    schedules = np.array([task.schedule for task in _CATALOGUE], dtype=object)[task_index]
    out = np.empty(len(task_index), dtype=np.int64)
    for schedule in _HOURS:
        rows = np.flatnonzero(schedules == schedule)
        if not len(rows):
            continue
        weights = _HOURS[schedule][stamps.hour] * _WEEKDAYS[schedule][stamps.day_of_week] * growth
        slot = rng.choice(len(slots), size=len(rows), p=weights / weights.sum())
        out[rows] = slots[slot] + rng.integers(0, 3_600_000_000_000, len(rows))
    return out


def _of_task(attribute: str, task: np.ndarray) -> np.ndarray:
    return np.array([getattr(entry, attribute) for entry in _CATALOGUE])[task]


def calls_history(
    n_calls: int = 50_000,
    days: int = 30,
    seed: int = 0,
    start: datetime | date | str | None = None,
    *,
    anomalies: bool = True,
) -> pd.DataFrame:
    """``n_calls`` recorded attempts over ``days`` days from ``start`` (default 2026-10-01 UTC), sorted by time.

    Columns: every ``call_attempts`` column (same names and meaning; ``cost_usd`` NaN when unpriced, ``tags``
    comma-joined or None) plus ``label`` (``""`` normal, else one of :data:`KINDS`). ``anomalies=False`` gives a
    clean history (no injected anomaly; natural errors and their retries remain). Deterministic from ``seed``.
    """
    rng = np.random.default_rng(seed)
    start_ts = _utc(start)
    n_calls, days = max(int(n_calls), 0), max(int(days), 1)
    draw = _draw(rng)
    weights = _of_task("weight", np.arange(len(_CATALOGUE))).astype(float)
    n_retry = int(rng.binomial(n_calls, 0.008)) if n_calls > 1 else 0
    n_base = n_calls - n_retry
    task = rng.choice(len(_CATALOGUE), size=n_base, p=weights / weights.sum())
    t = _times(rng, task, start_ts, days)
    order = np.argsort(t, kind="stable")
    task, t = task[order], t[order]
    frac = (t - start_ts.value) / (days * 86_400e9)

    # which model: the main one, or the second one for a share of the calls; later, silent model changes
    models = np.array([entry.models[0] for entry in _CATALOGUE], dtype=object)[task]
    seconds = np.array([entry.models[-1] for entry in _CATALOGUE], dtype=object)[task]
    use_second = (rng.random(n_base) < draw.second_share[task]) & (seconds != models)
    models = np.where(use_second, seconds, models)
    label = np.full(n_base, "", dtype=object)
    model_factor = np.where(use_second, 1.2, 1.0)  # how the model's answers differ from the task's main model
    if anomalies and n_base:
        _model_changes(rng, task, frac, models, model_factor, label, days)

    prompt = _of_task("prompt", task) * draw.drift[task] ** frac
    prompt = prompt * np.exp(draw.sd_prompt[task] * rng.standard_normal(n_base))
    answer = _of_task("answer", task) * model_factor * np.exp(draw.sd_answer[task] * rng.standard_normal(n_base))
    cap = draw.cap[task]
    answer = np.minimum(np.maximum(np.round(answer), 1), cap)
    latency_factor = np.ones(n_base)

    frame = pd.DataFrame({"task": task, "t": t, "model": models, "label": label})
    frame["provider"] = frame["model"].map({name: model.provider for name, model in _MODELS.items()})
    status = np.where(rng.random(n_base) < _of_task("response_cache", task), "cached", "success").astype(object)
    bursts = _error_bursts(rng, frame, status, days) if anomalies and n_base else []
    if anomalies and n_base:
        eligible = status == "success"
        _episodes(rng, eligible, task, frame, "context_blowup", 0.0012, (1, 4), prompt, (4.0, 20.0))
        _episodes(rng, eligible, task, frame, "latency_spike", 0.002, (1, 1), latency_factor, (5.0, 30.0))
        runaway = _episodes(rng, eligible, task, frame, "runaway_output", 0.001, (1, 2), None, (1.0, 1.0))
        answer[runaway] = np.where(rng.random(len(runaway)) < 0.6, cap[runaway], np.round(cap[runaway] * 0.97))
    # natural errors, each retried a few seconds later (attempt 2): exactly n_retry of them, so n_calls rows in all
    free = np.flatnonzero((status == "success") & (frame["label"].to_numpy() == ""))
    odds = frame["provider"].map(draw.error_rate).to_numpy()[free]
    natural = rng.choice(free, size=min(n_retry, len(free)), replace=False, p=odds / odds.sum()) if len(free) else free
    status[natural] = "error"
    for provider, begin, end in bursts:  # a failure inside a burst is part of it, whatever caused it
        inside = (frame["provider"].to_numpy() == provider) & (t >= begin) & (t < end) & (status == "error")
        frame.loc[inside, "label"] = "error_burst"
    frame["status"] = status
    frame["attempt"] = np.where(status == "cached", 0, 1)
    retries = frame.iloc[natural].assign(
        t=frame["t"].to_numpy()[natural] + rng.integers(2, 30, len(natural)) * 1_000_000_000,
        attempt=2,
        status="success",
        label="",
    )
    frame = pd.concat([frame, retries], ignore_index=True)
    source = np.r_[np.arange(n_base), natural].astype(np.int64)
    retry_of = np.r_[np.full(n_base, -1), natural].astype(np.int64)
    return _finish(rng, frame, prompt[source], answer[source], latency_factor[source], retry_of)


def _model_changes(
    rng: np.random.Generator,
    task: np.ndarray,
    frac: np.ndarray,
    models: np.ndarray,
    model_factor: np.ndarray,
    label: np.ndarray,
    days: int,
) -> None:
    """From a time on, a few tasks use another model; the first call on it is labelled ``model_change``."""
    counts = np.bincount(task, minlength=len(_CATALOGUE))
    candidates = np.flatnonzero(counts >= 200)
    if not len(candidates):
        return
    n_changes = min(len(candidates), max(1, round(days / 10)))
    for index in rng.choice(candidates, size=n_changes, replace=False):
        old = _CATALOGUE[index].models[0]
        choices = [name for name in _MODELS if name not in _CATALOGUE[index].models]
        new = choices[int(rng.integers(len(choices)))]
        after = np.flatnonzero((task == index) & (frac >= rng.uniform(0.3, 0.85)) & (models == old))
        if not len(after):
            continue
        models[after] = new
        model_factor[after] *= rng.uniform(0.7, 1.4)
        label[after[0]] = "model_change"


def _error_bursts(
    rng: np.random.Generator, frame: pd.DataFrame, status: np.ndarray, days: int
) -> list[tuple[str, int, int]]:
    """One provider fails 10-60 min at 30-100 %: its (uncached, unlabelled) calls in the stretch become errors.

    :return: the bursts, as (provider, begin, end) in ns.
    """
    t = frame["t"].to_numpy()
    providers = frame["provider"].to_numpy()
    label = frame["label"].to_numpy()
    bursts = []
    for _ in range(max(1, round(days / 4))):
        anchor = int(rng.integers(len(t)))  # where calls are: bursts in the busy hours are the common case
        provider = providers[anchor]
        begin = t[anchor] - int(rng.uniform(0, 5) * 60e9)
        end = begin + int(rng.uniform(10, 60) * 60e9)
        rate = rng.uniform(0.3, 1.0)
        rows = np.flatnonzero((t >= begin) & (t < end) & (providers == provider) & (status != "cached"))
        fail = rows[(rng.random(len(rows)) < rate) & (label[rows] == "")]
        status[fail] = "error"
        label[fail] = "error_burst"
        bursts.append((str(provider), begin, end))
    frame["label"] = label
    return bursts


def _episodes(
    rng: np.random.Generator,
    eligible: np.ndarray,
    task: np.ndarray,
    frame: pd.DataFrame,
    kind: str,
    rate: float,
    length: tuple[int, int],
    target: np.ndarray | None,
    factor: tuple[float, float],
) -> np.ndarray:
    """Label episodes of ``length`` consecutive calls of one task (a run gone wrong) and scale ``target`` there."""
    label = frame["label"].to_numpy()
    rows = np.flatnonzero(eligible & (label == ""))
    n_episodes = min(int(rng.binomial(len(rows), rate / ((length[0] + length[1]) / 2))), len(rows))
    hit: list[int] = []
    by_task = {index: np.flatnonzero(task == index) for index in np.unique(task[rows])}
    for first in rng.choice(rows, size=n_episodes, replace=False):
        same = by_task[task[first]]
        position = int(np.searchsorted(same, first))
        take = [int(row) for row in same[position : position + int(rng.integers(length[0], length[1] + 1))]]
        take = [row for row in take if eligible[row] and label[row] == ""]
        for row in take:
            label[row] = kind
            if target is not None:
                target[row] *= _log_uniform(rng, *factor)
        hit.extend(take)
    frame["label"] = label
    return np.array(sorted(hit), dtype=np.int64)


def _finish(
    rng: np.random.Generator,
    frame: pd.DataFrame,
    prompt: np.ndarray,
    answer: np.ndarray,
    latency_factor: np.ndarray,
    retry_of: np.ndarray,
) -> pd.DataFrame:
    """Tokens, durations, costs and the identifying columns of every row; sorted by time."""
    n = len(frame)
    task = frame["task"].to_numpy()
    status = frame["status"].to_numpy()
    retry = retry_of >= 0
    # a retry is a new request: its own sizes, close to the failed one's
    prompt = np.maximum(np.round(prompt * np.where(retry, np.exp(0.03 * rng.standard_normal(n)), 1.0)), 20)
    model = frame["model"]
    speed = model.map({k: m.tokens_per_s for k, m in _MODELS.items()}).to_numpy() * np.exp(0.2 * rng.standard_normal(n))
    first = model.map({k: m.first_token_s for k, m in _MODELS.items()}).to_numpy()
    first = first * np.exp(0.25 * rng.standard_normal(n))
    stamps = pd.DatetimeIndex(frame["t"].to_numpy(), tz=UTC).floor("us")  # the store keeps microseconds
    load = 1.0 + 0.3 * np.exp(-0.5 * ((stamps.hour.to_numpy() - 15) / 3.0) ** 2)  # slower in the busy hours
    # queueing at the provider: a few calls take 1.3-2.5x as long for no reason of their own
    queued = np.where(rng.random(n) < 0.02, _log_uniform(rng, 1.3, 2.5, n), 1.0)
    duration = (first + prompt / 25_000 + answer / speed) * load * queued * latency_factor

    cached_part = np.where(_of_task("prompt_cache", task), np.round(np.minimum(prompt * 0.6, 8000.0)), 0.0)
    hit = rng.random(n) < 0.85
    cache_read, cache_write = np.where(hit, cached_part, 0.0), np.where(hit, 0.0, cached_part)
    input_tokens = prompt - cached_part
    is_error, is_cached = status == "error", status == "cached"
    none = is_error | is_cached
    error_duration = np.where(rng.random(n) < 0.15, rng.uniform(30, 120, n), rng.uniform(0.2, 3.0, n))
    duration = np.where(is_error, error_duration, np.where(is_cached, 0.0, duration))
    tokens = {
        "input_tokens": np.where(none, 0, input_tokens),
        "output_tokens": np.where(none, 0, answer),
        "cache_read_tokens": np.where(none, 0, cache_read),
        "cache_write_tokens": np.where(none, 0, cache_write),
    }
    prices = np.array([_MODELS[name].prices or (np.nan,) * 4 for name in model.unique()], dtype=float)
    prices = prices[pd.Index(model.unique()).get_indexer(model)]
    would_cost = (
        input_tokens * prices[:, 0] + answer * prices[:, 1] + cache_read * prices[:, 2] + cache_write * prices[:, 3]
    ) / 1e6
    priced = ~np.isnan(prices[:, 0])
    saved = np.where(
        is_cached, would_cost, np.where(is_error, np.nan, cache_read * (prices[:, 0] - prices[:, 2]) / 1e6)
    )
    rejected = (status == "success") & (rng.random(n) < 0.015)
    in_burst = frame["label"].to_numpy() == "error_burst"
    out = pd.DataFrame(
        {
            "call_id": _hex_ids(rng, n),
            "dag_id": _of_task("dag_id", task).astype(object),
            "run_id": _run_ids(stamps),
            "task_id": _of_task("task_id", task).astype(object),
            "map_index": np.where(_of_task("mapped", task), rng.integers(0, 40, n), -1),
            "try_number": np.ones(n, dtype=np.int64),
            "attempt": frame["attempt"].to_numpy(),
            "provider": frame["provider"].to_numpy(),
            "model": model.to_numpy(),
            "task_type": _of_task("task_type", task).astype(object),
            "started_at": stamps,
            "duration_s": np.round(duration, 3),
            **{name: np.round(values).astype(np.int64) for name, values in tokens.items()},
            "cost_usd": np.where(none, 0.0, would_cost),
            "status": status,
            "error_type": np.where(is_error, "RetryableError", np.array(None, dtype=object)),
            "request_id": np.where(is_cached, np.array(None, dtype=object), _hex_ids(rng, n, "req_")),
            "team": _of_task("team", task).astype(object),
            "tags": _of_task("tags", task).astype(object),
            "deferred": _of_task("deferred", task).astype(bool),
            "outcome": np.select([is_cached, is_error, rejected], ["cached", "failed", "rejected"], "answered"),
            "error_message": np.where(
                is_error, np.where(in_burst, "overloaded (529)", "timed out"), np.array(None, dtype=object)
            ),
            "cost_basis": np.where(none, "none", np.where(priced, "exact", "unpriced")),
            "saved_usd": np.where(priced | is_error, saved, np.nan),
            "label": frame["label"].to_numpy(),
        }
    )
    # a retry re-uses its failed attempt's run and map index
    rows = np.flatnonzero(retry)
    for column in ("run_id", "map_index"):
        values = out[column].to_numpy().copy()
        values[rows] = values[retry_of[rows]]
        out[column] = values
    return out.sort_values("started_at", kind="stable").reset_index(drop=True)[[*_CALL_COLUMNS, "label"]]


def to_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a :func:`calls_history` frame as the store's ``insert_attempts`` takes them (``label`` left out,
    NaN as None, times as aware datetimes)."""
    columns = [column for column in frame.columns if column != "label"]
    rows = []
    for values in frame[columns].itertuples(index=False, name=None):
        row = {}
        for column, value in zip(columns, values, strict=True):
            if isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            elif isinstance(value, np.generic):
                value = value.item()
            row[column] = None if isinstance(value, float) and value != value else value  # NaN -> None
        rows.append(row)
    return rows


# -- series ---------------------------------------------------------------------------------------------------------


def labelled_series(
    family: str, seed: int = 0, *, points: int = 24 * 56, start: datetime | str | None = None
) -> pd.DataFrame:
    """An hourly metric series with labelled anomalies: columns ``value`` and ``label`` on a UTC DatetimeIndex.

    ``family`` (one of :data:`SERIES_FAMILIES`): ``"spikes"`` (a mildly seasonal series with ~1 % spikes, 3-10x up
    or down to a fifth), ``"level_shifts"`` (2-4 permanent shifts by 2-4x up or down; the label marks the first
    point at the new level) or ``"seasonal"`` (strong daily and weekly cycles: nights at 10-20 % and weekends at
    ~40 % of a weekday afternoon, with spikes 3-6x the seasonal value). Labels: ``""``, ``"spike"``,
    ``"level_shift"``. The base magnitude varies over orders of magnitude with the seed.
    """
    if family not in SERIES_FAMILIES:
        raise ValueError(f"family {family!r} is not one of {SERIES_FAMILIES}")
    rng = np.random.default_rng([seed, SERIES_FAMILIES.index(family)])
    index = pd.date_range(_utc(start), periods=points, freq="h")
    hours, weekdays = index.hour.to_numpy(), index.day_of_week.to_numpy()
    base = _log_uniform(rng, 0.05, 500.0)
    if family == "seasonal":
        night = rng.uniform(0.1, 0.2)
        daily = night + (1 - night) * np.clip(np.sin(np.pi * (hours - 6) / 14), 0, None) ** 1.5
        weekly = np.where(weekdays >= 5, rng.uniform(0.35, 0.5), 1.0)
        noise = rng.uniform(0.12, 0.22)
    else:
        daily = 1.0 + rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * (hours - 9) / 24)
        weekly = np.where(weekdays >= 5, rng.uniform(0.7, 1.0), 1.0)
        noise = rng.uniform(0.1, 0.3)
    level = np.full(points, base)
    label = np.full(points, "", dtype=object)
    if family == "level_shifts":
        n_shifts = int(rng.integers(2, 5))
        spots = np.sort(rng.choice(np.arange(24 * 7, points - 24, 24 * 3), size=n_shifts, replace=False))
        spots = spots + rng.integers(0, 24, n_shifts)
        for spot in spots:
            factor = _log_uniform(rng, 2.0, 4.0)
            level[spot:] *= factor if rng.random() < 0.5 else 1 / factor
            label[spot] = "level_shift"
    values = level * daily * weekly * np.exp(noise * rng.standard_normal(points))
    if family in ("spikes", "seasonal"):
        spots = rng.choice(np.arange(24 * 7, points), size=max(1, points // 100), replace=False)
        up = (rng.random(len(spots)) < 0.8) | (family == "seasonal")
        size = _log_uniform(rng, 3.0, 6.0 if family == "seasonal" else 10.0, len(spots))
        values[spots] *= np.where(up, size, 1 / np.maximum(size, 5.0))
        label[spots] = "spike"
    return pd.DataFrame({"value": values, "label": label}, index=index)


def spend_series(
    shape: str, days: int = 120, seed: int = 0, *, start: date | datetime | str | None = None
) -> pd.Series:
    """Daily spend (USD) on a daily DatetimeIndex: ``"flat"`` (a level with 20-35 % noise), ``"weekly"`` (weekends at
    30-50 %), ``"trending"`` (weekly, growing 40-100 % over the period). Noise is multiplicative and heavy-ish."""
    if shape not in SPEND_SHAPES:
        raise ValueError(f"shape {shape!r} is not one of {SPEND_SHAPES}")
    rng = np.random.default_rng([seed, 7 + SPEND_SHAPES.index(shape)])
    index = pd.date_range(_utc(start).normalize().tz_localize(None), periods=days, freq="D")
    level = _log_uniform(rng, 5.0, 2000.0)
    frac = np.arange(days) / max(days - 1, 1)
    weekday = index.day_of_week.to_numpy()
    weekly = np.where(weekday >= 5, rng.uniform(0.3, 0.5), 1.0) if shape != "flat" else np.ones(days)
    trend = 1.0 + rng.uniform(0.4, 1.0) * frac if shape == "trending" else np.ones(days)
    noise = np.exp(rng.uniform(0.2, 0.35) * rng.standard_t(6, days) * 0.8)
    return pd.Series(level * weekly * trend * noise, index=index, name="spend_usd")
