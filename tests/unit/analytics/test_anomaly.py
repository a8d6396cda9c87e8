"""The anomaly detectors of ``supervisor_lib.analytics.anomaly``, on real data frames (nothing mocked).

Per call (``detect_anomalies``): each of the five kinds found on small hand-built histories, with a reason that names
the kind and compares with the call's peers ``(dag_id, task_id, model)``; steady tasks and a group's first
``MIN_HISTORY`` calls not flagged; error bursts need several task instances (one instance failing again and again, or
retrying, is not a burst); the result indexed like the input whatever its index and row order; robustness to empty,
tiny, null-filled and column-poor frames; causality (later calls do not change earlier calls' peer findings); and
recall / false positives on a labelled synthetic history.

Per series (``detect_series_anomalies``): spikes, dips and level shifts in an hourly seasonal series (a shift flagged
once, the new level normal afterwards); hour-of-day profile (a night at afternoon level is a spike, a clean strongly
seasonal month is not flagged); causality on prefixes; the warm-up and NaN reasons; and odd inputs (empty, one point,
constant, zeros, repeated or irregular timestamps, time zones).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from supervisor_lib.analytics.anomaly import detect_anomalies, detect_series_anomalies
from supervisor_lib.analytics.synthetic import calls_history, labelled_series

T0 = pd.Timestamp("2026-10-05 08:00", tz="UTC")
#: the product promises these (spelt out here, not imported, so a changed constant fails the tests)
MIN_HISTORY = 20
MIN_SERIES_HISTORY = 10
KIND_TEXT = {
    "context_blowup": "context blow-up",
    "latency_spike": "latency spike",
    "runaway_output": "runaway output",
    "error_burst": "error burst",
    "model_change": "model change",
}


def _calls(
    n: int,
    *,
    dag: str = "nightly",
    task: str = "triage",
    model: str = "m-a",
    provider: str = "anthropic",
    start: pd.Timestamp = T0,
    step_s: float = 60.0,
    prompt: float = 2000.0,
    output: float = 300.0,
    duration: float = 5.0,
    spread: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """``n`` successful calls of one task on one model, one task instance each, lognormal around the given habit."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "dag_id": dag,
            "task_id": task,
            "model": model,
            "provider": provider,
            "run_id": [f"{dag}-{task}-{seed}-{i}" for i in range(n)],
            "map_index": -1,
            "try_number": 1,
            "attempt": 1,
            "started_at": start + pd.to_timedelta(np.arange(n) * step_s, unit="s"),
            "status": "success",
            "input_tokens": np.round(prompt * np.exp(spread * rng.standard_normal(n))).astype(np.int64),
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": np.round(output * np.exp(spread * rng.standard_normal(n))).astype(np.int64),
            "duration_s": duration * np.exp(spread * rng.standard_normal(n)),
            "cost_usd": 0.01,
        }
    )


def _merge(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).sort_values("started_at", kind="stable").reset_index(drop=True)


def _flagged(result: pd.DataFrame) -> list[int]:
    return result.index[result["is_anomaly"]].tolist()


def _assert_shape(result: pd.DataFrame, frame: pd.DataFrame | pd.Series) -> None:
    assert list(result.columns) == ["is_anomaly", "anomaly_score", "reason"]
    assert result.index.equals(frame.index)
    assert result["is_anomaly"].dtype == bool
    assert result["anomaly_score"].dtype == float
    assert all(isinstance(reason, str) for reason in result["reason"])
    assert (result["anomaly_score"][~result["is_anomaly"]] == 0).all()
    assert (result["anomaly_score"][result["is_anomaly"]] >= 1).all()
    assert (result["reason"][result["is_anomaly"]] != "").all()


# -- per call: each kind --------------------------------------------------------------------------------------------


def test_context_blowup_is_flagged_against_the_tasks_own_habit() -> None:
    frame = _calls(60)
    frame.loc[50, "input_tokens"] = 30_000
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert _flagged(result) == [50]
    reason = result.at[50, "reason"]
    assert reason.startswith("context blow-up: input 30,000 tokens, ")
    assert "× the median (" in reason
    assert reason.endswith("of 50 earlier calls of nightly/triage on m-a")
    ratio = float(reason.split(", ")[1].split("×")[0])
    assert 12 < ratio < 18  # 30,000 against a median of about 2,000


def test_context_blowup_counts_cache_reads_and_writes_as_prompt() -> None:
    frame = _calls(60)
    frame["cache_read_tokens"] = 1000
    frame.loc[45, "cache_read_tokens"] = 40_000
    frame.loc[52, "cache_write_tokens"] = 40_000
    result = detect_anomalies(frame)
    assert _flagged(result) == [45, 52]
    assert result["reason"][[45, 52]].str.startswith("context blow-up: input 4").all()


def test_peer_groups_are_dag_task_and_model() -> None:
    small = _calls(80, task="label", prompt=1500, seed=1)
    large = _calls(80, task="summarise", prompt=40_000, seed=2, start=T0 + pd.Timedelta(seconds=20))
    other_model = _calls(80, task="label", model="m-big", prompt=40_000, seed=3, start=T0 + pd.Timedelta(seconds=40))
    frame = _merge(small, large, other_model)
    assert _flagged(detect_anomalies(frame)) == []  # each group on its own habit: nothing stands out

    row = frame.index[(frame["task_id"] == "label") & (frame["model"] == "m-a")][60]
    frame.loc[row, "input_tokens"] = 40_000  # normal for the other task and the other model, not for label on m-a
    result = detect_anomalies(frame)
    assert _flagged(result) == [row]
    assert "earlier calls of nightly/label on m-a" in result.at[row, "reason"]


def test_latency_spike_is_flagged_against_the_usual_duration() -> None:
    frame = _calls(60)
    frame.loc[52, "duration_s"] = 80.0
    result = detect_anomalies(frame)
    assert _flagged(result) == [52]
    reason = result.at[52, "reason"]
    assert reason.startswith("latency spike: 80.0 s, ")
    assert "× the usual " in reason
    assert "(median of 52 earlier calls of nightly/triage on m-a)" in reason
    assert result.at[52, "anomaly_score"] >= 1


def test_runaway_output_leads_and_explains_its_own_long_duration() -> None:
    frame = _calls(60)
    frame.loc[54, "output_tokens"] = 6000
    frame.loc[54, "duration_s"] = 5.0 * 6000 / 300  # as long as so many tokens take: not a latency spike
    result = detect_anomalies(frame)
    assert _flagged(result) == [54]
    reason = result.at[54, "reason"]
    assert reason.startswith("runaway output: 6,000 output tokens, ")
    assert "× the median (" in reason
    assert "of 54 earlier calls of nightly/triage on m-a (took 100 s)" in reason
    assert "latency spike" not in reason


def test_several_findings_on_one_call_are_listed_by_priority() -> None:
    frame = _calls(60)
    frame.loc[50, ["input_tokens", "duration_s"]] = [30_000, 300.0]
    reason = detect_anomalies(frame).at[50, "reason"]
    parts = reason.split("; ")
    assert [part.split(":")[0] for part in parts] == ["context blow-up", "latency spike"]


def test_error_burst_flags_the_failures_of_the_stretch() -> None:
    # two tasks on anthropic and one on openai, every 30 s; anthropic fails for about 15 minutes
    frames = [
        _calls(300, task="triage", step_s=60, seed=1),
        _calls(300, task="label", step_s=60, seed=2, start=T0 + pd.Timedelta(seconds=30)),
        _calls(
            600, task="draft", provider="openai", model="gpt", step_s=30, seed=3, start=T0 + pd.Timedelta(seconds=5)
        ),
    ]
    frame = _merge(*frames)
    stretch = (frame["started_at"] >= T0 + pd.Timedelta(hours=3)) & (
        frame["started_at"] < T0 + pd.Timedelta(minutes=195)
    )
    failing = frame.index[stretch & (frame["provider"] == "anthropic")]
    frame.loc[failing, "status"] = "error"
    frame.loc[failing, ["input_tokens", "output_tokens"]] = 0
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert _flagged(result) == failing.tolist()
    assert len(failing) == 30
    reason = result.at[failing[0], "reason"]
    assert reason.startswith(
        "error burst: anthropic failed 30 of 30 calls (100%) between 11:00 and 11:14 UTC on 2026-10-05"
    )
    assert reason.endswith("normally")
    assert result["reason"][failing].nunique() == 1  # judged on the whole stretch, its first failure too


def test_a_few_scattered_errors_are_not_a_burst() -> None:
    frame = _calls(600, step_s=30)
    scattered = frame.index[100::90]
    frame.loc[scattered, "status"] = "error"
    assert len(scattered) >= 5
    assert _flagged(detect_anomalies(frame)) == []


@pytest.mark.parametrize("how", ["airflow retries", "call attempts"])
def test_one_task_instance_failing_again_and_again_is_not_a_burst(how: str) -> None:
    # a quiet provider (a call every 10 min): six failures in a row of one task instance
    frame = _calls(500, step_s=600)
    rows = frame.index[400:406]
    frame.loc[rows, "status"] = "error"
    frame.loc[rows, "run_id"] = "scheduled__2026-10-08T02"
    if how == "airflow retries":
        frame.loc[rows, "try_number"] = range(1, 7)
    else:
        frame.loc[rows, "attempt"] = range(1, 7)
    assert _flagged(detect_anomalies(frame)) == []

    frame.loc[rows, "run_id"] = [f"run-{i}" for i in range(6)]  # six task instances failing in a row: a burst
    frame.loc[rows, ["try_number", "attempt"]] = 1
    assert _flagged(detect_anomalies(frame)) == rows.tolist()


def test_retries_of_one_failed_call_count_once() -> None:
    frame = _calls(500, step_s=600).drop(columns=["run_id", "map_index"])
    rows = frame.index[400:406]
    frame.loc[rows, "status"] = "error"
    frame.loc[rows, "attempt"] = [1, 2, 3, 1, 2, 3]  # two calls, each tried three times
    assert _flagged(detect_anomalies(frame)) == []
    frame.loc[rows, "attempt"] = [1, 2, 1, 2, 1, 2]  # three calls: a burst, their failed retries flagged with it
    assert _flagged(detect_anomalies(frame)) == rows.tolist()


def test_errors_at_a_few_percent_are_not_a_burst() -> None:
    # a busy provider (a call every 5 s) failing one call in 24 for an hour: far above its usual rate, below 20 %
    frame = _calls(3000, step_s=5)
    frame.loc[frame.index[1500:2220:24], "status"] = "error"
    assert _flagged(detect_anomalies(frame)) == []
    frame.loc[frame.index[1500:2220:4], "status"] = "error"  # one in four
    assert len(_flagged(detect_anomalies(frame))) == len(frame.index[1500:2220:4])


def test_cached_calls_do_not_dilute_an_error_burst() -> None:
    # the response cache answers most calls of the stretch: the provider's own calls all fail
    frame = _calls(1200, step_s=5)
    stretch = frame.index[800:1000]
    frame.loc[stretch, "status"] = "cached"
    frame.loc[stretch[::6], "status"] = "error"
    result = detect_anomalies(frame)
    assert _flagged(result) == stretch[::6].tolist()
    assert result.at[stretch[0], "reason"].startswith("error burst: anthropic failed 34 of 34 calls (100%)")


def test_a_burst_needs_evidence_against_the_providers_usual_rate() -> None:
    # three failures among four calls: for a new provider (a 2 % prior) too little evidence; after 1,000 clean calls
    # the same four calls are a burst
    new = _calls(100, step_s=10)
    new.loc[[0, 2, 3], "status"] = "error"
    assert _flagged(detect_anomalies(new)) == []
    known = _calls(1100, step_s=10)
    known.loc[[1000, 1002, 1003], "status"] = "error"
    result = detect_anomalies(known)
    assert _flagged(result) == [1000, 1002, 1003]
    assert result.at[1000, "reason"].startswith("error burst: anthropic failed 3 of 4 calls (75%) between ")
    assert result.at[1000, "reason"].endswith("vs 0.1% normally")


def test_error_burst_without_run_ids_counts_each_failure_as_an_instance() -> None:
    frame = _calls(500, step_s=600).drop(columns=["run_id", "map_index"])
    rows = frame.index[400:406]
    frame.loc[rows, "status"] = "error"
    result = detect_anomalies(frame)
    assert _flagged(result) == rows.tolist()
    assert result["reason"][rows].str.startswith("error burst: anthropic failed 6 of 6 calls").all()


def test_silent_model_change_flags_the_first_call_on_the_new_model() -> None:
    frame = _calls(70)
    frame.loc[30:, "model"] = "m-b"
    frame.loc[30:, "input_tokens"] *= 5  # another model's own habit: its group starts afresh, nothing else flagged
    result = detect_anomalies(frame)
    assert _flagged(result) == [30]
    assert result.at[30, "reason"] == (
        "model change: nightly/triage called m-b for the first time, after 30 earlier calls (the last on m-a)"
    )


def test_model_change_needs_min_history_and_a_task_mixing_models_from_its_start_is_not_flagged() -> None:
    early = _calls(40)
    early.loc[MIN_HISTORY - 1 :, "model"] = "m-b"  # after 19 calls: not judged yet
    assert _flagged(detect_anomalies(early)) == []
    late = _calls(40)
    late.loc[MIN_HISTORY:, "model"] = "m-b"  # after 20 calls
    assert _flagged(detect_anomalies(late)) == [MIN_HISTORY]

    mixed = _calls(200)
    mixed["model"] = np.where(np.arange(200) % 3 == 0, "m-b", "m-a")
    assert _flagged(detect_anomalies(mixed)) == []


def test_the_first_calls_of_a_group_are_never_judged() -> None:
    before = _calls(40)
    before.loc[MIN_HISTORY - 1, ["input_tokens", "output_tokens", "duration_s"]] = [200_000, 30_000, 900.0]
    assert _flagged(detect_anomalies(before)) == []
    at = _calls(40)
    at.loc[MIN_HISTORY, ["input_tokens", "output_tokens", "duration_s"]] = [200_000, 30_000, 900.0]
    result = detect_anomalies(at)
    assert _flagged(result) == [MIN_HISTORY]
    assert result.at[MIN_HISTORY, "reason"].startswith("runaway output: 30,000 output tokens")
    assert "context blow-up" in result.at[MIN_HISTORY, "reason"]


def test_a_noisy_group_needs_a_call_far_out_in_its_own_spread() -> None:
    frame = _calls(200, spread=0.6, seed=0)
    median = frame["input_tokens"].iloc[:150].median()
    frame.loc[150, "input_tokens"] = round(6 * median)  # 6× the median, but only ~3 of the group's own spreads
    assert _flagged(detect_anomalies(frame)) == []
    frame.loc[150, "input_tokens"] = round(60 * median)
    result = detect_anomalies(frame)
    assert _flagged(result) == [150]
    assert "60.0× the median" in result.at[150, "reason"]


@pytest.mark.parametrize("seed", range(5))
def test_steady_task_is_not_flagged(seed: int) -> None:
    frame = _calls(300, spread=0.2, seed=seed)
    result = detect_anomalies(frame)
    assert not result["is_anomaly"].any(), result[result["is_anomaly"]]
    assert (result["reason"] == "").all()


def test_only_successful_calls_are_judged_on_size() -> None:
    frame = _calls(60)
    frame.loc[50, ["input_tokens", "status"]] = [30_000, "cached"]
    frame.loc[51, ["duration_s", "status"]] = [500.0, "error"]
    assert _flagged(detect_anomalies(frame)) == []


# -- per call: index, order, robustness -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return calls_history(20_000, days=14, seed=1)


@pytest.fixture(scope="module")
def history_result(history: pd.DataFrame) -> pd.DataFrame:
    return detect_anomalies(history.drop(columns="label"))


def test_result_is_indexed_like_the_input_whatever_its_index_and_row_order(
    history: pd.DataFrame, history_result: pd.DataFrame
) -> None:
    frame = history.drop(columns="label")
    frame.index = pd.Index([f"call-{i}" for i in range(len(frame))])
    shuffled = frame.sample(frac=1.0, random_state=7)
    result = detect_anomalies(shuffled)
    _assert_shape(result, shuffled)
    assert history_result["is_anomaly"].sum() > 50  # the comparison below is over real findings
    expected = history_result.set_axis(frame.index)
    pd.testing.assert_frame_equal(result.loc[frame.index], expected)


def test_duplicate_index_labels_are_kept() -> None:
    frame = _calls(60)
    frame.loc[50, "input_tokens"] = 30_000
    frame.index = pd.Index([7] * 30 + [8] * 30)
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == [50]


def _blowup_frame() -> pd.DataFrame:
    frame = _calls(60)
    frame.loc[50, "input_tokens"] = 30_000
    return frame


@pytest.mark.parametrize(
    "make, flagged",
    [
        pytest.param(lambda: _blowup_frame().iloc[:0], [], id="empty"),
        pytest.param(pd.DataFrame, [], id="no columns"),
        pytest.param(lambda: _blowup_frame().iloc[:1], [], id="one row"),
        pytest.param(lambda: _blowup_frame().assign(input_tokens=np.nan, output_tokens=np.nan), [], id="NaN tokens"),
        pytest.param(lambda: _blowup_frame().assign(cost_usd=None), [50], id="cost all null"),
        pytest.param(
            lambda: _blowup_frame().assign(input_tokens=1000, output_tokens=100, duration_s=2.0), [], id="constant"
        ),
        pytest.param(lambda: _blowup_frame().assign(started_at=pd.NaT), [], id="no start times"),
        pytest.param(lambda: _blowup_frame().drop(columns=["started_at"]), [], id="no started_at"),
        pytest.param(lambda: _blowup_frame()[["input_tokens", "output_tokens"]], [], id="tokens only"),
        pytest.param(lambda: _blowup_frame().assign(dag_id=None, model=None, provider=None), [50], id="null names"),
        pytest.param(lambda: _blowup_frame().assign(status=None), [], id="null status"),
    ],
)
def test_odd_frames_give_sane_output(make: Callable[[], pd.DataFrame], flagged: list[int]) -> None:
    frame = make()
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert _flagged(result) == flagged


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.drop(columns=["cache_read_tokens", "cache_write_tokens"]), id="no cache columns"),
        pytest.param(lambda f: f.drop(columns=["attempt", "try_number", "run_id", "map_index"]), id="no attempt"),
        pytest.param(lambda f: f.drop(columns=["status", "provider", "cost_usd"]), id="no status"),
        pytest.param(lambda f: f.assign(started_at=f["started_at"].dt.tz_localize(None)), id="naive times"),
        pytest.param(lambda f: f.assign(started_at=f["started_at"].astype(str)), id="text times"),
        pytest.param(lambda f: f.assign(cost_usd=np.nan, duration_s=np.nan), id="no cost and duration"),
        pytest.param(lambda f: f.astype({"input_tokens": float}), id="float tokens"),
    ],
)
def test_missing_optional_columns_still_find_the_blowup(change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = change(_blowup_frame())
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert _flagged(result) == [50]
    assert result.at[50, "reason"].startswith("context blow-up: input 30,000 tokens")


def test_calls_with_unknown_tokens_are_skipped_not_flagged() -> None:
    frame = _blowup_frame().astype({"input_tokens": object, "output_tokens": float})
    unknown = frame.index[1::4].difference([50])
    frame.loc[unknown, "input_tokens"] = None
    frame.loc[unknown, "output_tokens"] = np.nan
    frame.loc[55, "input_tokens"] = "not a number"
    result = detect_anomalies(frame)
    _assert_shape(result, frame)
    assert _flagged(result) == [50]


# -- per call: causality and the labelled benchmark -------------------------------------------------------------------


@pytest.mark.parametrize("n", [3000, 9000, 16_000])
def test_later_calls_do_not_change_earlier_peer_findings(
    history: pd.DataFrame, history_result: pd.DataFrame, n: int
) -> None:
    frame = history.drop(columns="label")
    assert frame["started_at"].is_monotonic_increasing
    part = detect_anomalies(frame.iloc[:n])
    # error bursts are judged on their whole stretch (a burst cut at n may read differently): failed calls left out
    keep = frame["status"].iloc[:n] != "error"
    assert part["is_anomaly"][keep].sum() >= 10
    pd.testing.assert_frame_equal(part[keep], history_result.iloc[:n][keep])


def test_labelled_history_recall_and_false_positives(history: pd.DataFrame, history_result: pd.DataFrame) -> None:
    # measured (seed 1, 20,000 calls, 14 days): recall 0.98 (157 of 160), 22 of 19,840 normal calls flagged (0.11 %)
    labelled = history["label"] != ""
    flagged = history_result["is_anomaly"]
    recall = flagged[labelled].mean()
    false_share = flagged[~labelled].mean()
    assert recall >= 0.9, history.assign(found=flagged)[labelled].groupby("label")["found"].mean()
    assert false_share < 0.005
    for kind, text in KIND_TEXT.items():
        rows = labelled & (history["label"] == kind)
        assert rows.any()
        assert flagged[rows].mean() >= 0.75, kind
        # a labelled call that is found is found as its own kind
        assert history_result["reason"][rows & flagged].str.contains(text, regex=False).all(), kind


# -- per series -------------------------------------------------------------------------------------------------------


def _hourly(
    days: int = 21, *, seed: int = 0, noise: float = 0.05, start: str = "2026-10-01", tz: str | None = "UTC"
) -> pd.Series:
    index = pd.date_range(start, periods=24 * days, freq="h", tz=tz)
    hours = index.hour.to_numpy()
    rng = np.random.default_rng(seed)
    values = 100.0 * (1 + 0.5 * np.sin(2 * np.pi * (hours - 9) / 24)) * np.exp(noise * rng.standard_normal(len(index)))
    return pd.Series(values, index=index)


def test_a_clean_seasonal_series_is_not_flagged() -> None:
    series = _hourly()
    result = detect_series_anomalies(series)
    _assert_shape(result, series)
    assert not result["is_anomaly"].any()
    assert (result["reason"].iloc[24:] == "").all()


def test_spike_and_dip_are_flagged() -> None:
    series = _hourly()
    series.iloc[300] *= 5
    series.iloc[350] /= 5
    result = detect_series_anomalies(series)
    _assert_shape(result, series)
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == [300, 350]
    spike, dip = result["reason"].iloc[300], result["reason"].iloc[350]
    assert spike.startswith("spike: ") and " expected (" in spike
    assert dip.startswith("dip: ")
    ratio = float(spike.split("(")[1].split("×")[0])
    assert 4 < ratio < 6.5
    assert result["anomaly_score"].iloc[300] >= 1 and result["anomaly_score"].iloc[350] >= 1


@pytest.mark.parametrize("factor, side", [(3.0, "above"), (1 / 3, "below")])
def test_level_shift_is_flagged_once_and_the_new_level_is_normal(factor: float, side: str) -> None:
    series = _hourly(days=28)
    series.iloc[300:] *= factor
    result = detect_series_anomalies(series)
    reasons = result["reason"]
    shifts = np.flatnonzero(reasons.str.startswith("level shift"))
    assert len(shifts) == 1
    at = int(shifts[0])
    assert 300 <= at <= 305
    assert f"mostly {side} it" in reasons.iloc[at]
    assert reasons.iloc[at].endswith("the new level is normal from here on")
    assert not result["is_anomaly"].iloc[:300].any()
    assert not result["is_anomaly"].iloc[at + 1 :].any()
    # the points before the shift is recognised may be spikes (or dips) of their own
    assert result["reason"].iloc[300:at].str.startswith("spike" if factor > 1 else "dip").all()


def test_hour_of_day_profile_makes_a_night_at_afternoon_level_a_spike() -> None:
    index = pd.date_range("2026-10-05", periods=24 * 28, freq="h")
    hours, weekdays = index.hour.to_numpy(), index.day_of_week.to_numpy()
    daily = 0.15 + 0.85 * np.clip(np.sin(np.pi * (hours - 6) / 14), 0, None) ** 1.5
    weekly = np.where(weekdays >= 5, 0.4, 1.0)
    clean = 50 * daily * weekly * np.exp(0.08 * np.random.default_rng(4).standard_normal(len(index)))
    series = pd.Series(clean, index=index)
    night = int(np.flatnonzero((index.day == 20) & (hours == 3))[0])  # a Tuesday, 03:00
    afternoon = int(np.flatnonzero((index.day == 20) & (hours == 14))[0])
    assert not detect_series_anomalies(series)["is_anomaly"].any()
    series.iloc[night] = series.iloc[afternoon]
    result = detect_series_anomalies(series)
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == [night]
    assert result["reason"].iloc[night].startswith("spike")


@pytest.mark.parametrize("seed", range(4))
def test_strong_daily_and_weekly_seasonality_is_not_flagged(seed: int) -> None:
    index = pd.date_range("2026-10-05", periods=24 * 28, freq="h")
    hours, weekdays = index.hour.to_numpy(), index.day_of_week.to_numpy()
    daily = 0.15 + 0.85 * np.clip(np.sin(np.pi * (hours - 6) / 14), 0, None) ** 1.5
    weekly = np.where(weekdays >= 5, 0.4, 1.0)
    values = 50 * daily * weekly * np.exp(0.08 * np.random.default_rng(seed).standard_normal(len(index)))
    result = detect_series_anomalies(pd.Series(values, index=index))
    assert result["is_anomaly"].iloc[24:].sum() <= 1


@pytest.mark.parametrize("family", ["spikes", "level_shifts", "seasonal"])
def test_series_result_is_causal(family: str) -> None:
    series = labelled_series(family, 3, points=500)["value"]
    series.iloc[[40, 41, 200]] = np.nan
    full = detect_series_anomalies(series)
    assert full["is_anomaly"].any()
    for k in (1, 2, MIN_SERIES_HISTORY - 1, MIN_SERIES_HISTORY, MIN_SERIES_HISTORY + 1, 24, 42, 177, 333, 499):
        pd.testing.assert_frame_equal(detect_series_anomalies(series.iloc[:k]), full.iloc[:k])


def test_series_is_causal_with_irregular_spacing_and_zeros() -> None:
    rng = np.random.default_rng(5)
    stamps = pd.Timestamp("2026-10-01", tz="Europe/Berlin") + pd.to_timedelta(
        np.cumsum(rng.exponential(3600, 400)), unit="s"
    )
    values = np.where(rng.random(400) < 0.2, 0.0, rng.lognormal(1.0, 0.3, 400))
    values[:12] = 0.0  # the scale is learnt from the first non-zero value
    series = pd.Series(values, index=stamps)
    full = detect_series_anomalies(series)
    for k in range(1, 401, 7):
        pd.testing.assert_frame_equal(detect_series_anomalies(series.iloc[:k]), full.iloc[:k])


def test_first_points_are_too_little_history() -> None:
    result = detect_series_anomalies(_hourly())
    for i in range(MIN_SERIES_HISTORY):
        assert result["reason"].iloc[i] == f"too little history ({i} point{'s' if i != 1 else ''}) to judge"
    # then, until each hour of the day has been seen once, a new hour cannot be judged either
    assert result["reason"].iloc[MIN_SERIES_HISTORY] == (
        f"too little history ({MIN_SERIES_HISTORY} points, no earlier {MIN_SERIES_HISTORY:02d}:00) to judge"
    )
    assert result["reason"].iloc[:24].str.startswith("too little history").all()
    assert not result["is_anomaly"].iloc[:24].any()
    assert (result["anomaly_score"].iloc[:24] == 0).all()


def test_first_points_are_not_judged_even_when_wild() -> None:
    index = pd.date_range("2026-10-01", periods=60, freq="D")
    values = np.full(60, 10.0)
    values[[0, 3, 7]] = [1000.0, 0.01, 500.0]
    result = detect_series_anomalies(pd.Series(values, index=index))
    assert not result["is_anomaly"].iloc[:MIN_SERIES_HISTORY].any()


def test_nan_points_are_no_value_and_skipped() -> None:
    series = _hourly()
    series.iloc[[0, 200, 201, 202]] = np.nan
    series.iloc[203] *= 5
    result = detect_series_anomalies(series)
    for i in (0, 200, 201, 202):
        assert result["reason"].iloc[i] == "no value"
        assert not result["is_anomaly"].iloc[i]
        assert result["anomaly_score"].iloc[i] == 0
    assert result["reason"].iloc[1] == "too little history (0 points) to judge"
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == [203]


@pytest.mark.parametrize("factor, flagged", [(1.05, False), (1.1, False), (1.3, True), (0.75, True)])
def test_a_quiet_series_needs_a_change_of_more_than_ten_percent(factor: float, flagged: bool) -> None:
    # noise of 0.2 %: a 10 % step is many sigmas out, yet too small to matter
    index = pd.date_range("2025-01-01", periods=120, freq="D")
    series = pd.Series(100 * np.exp(0.002 * np.random.default_rng(0).standard_normal(120)), index=index)
    series.iloc[100] *= factor
    result = detect_series_anomalies(series)
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == ([100] if flagged else [])
    if flagged:
        expected = "spike: 130 vs about 99.9 expected (1.3×)" if factor > 1 else "dip: 75.1 vs about 99.9 expected"
        assert result["reason"].iloc[100].startswith(expected)


def test_daily_series_is_judged_without_an_hour_profile() -> None:
    index = pd.date_range("2025-01-01", periods=200, freq="D")
    values = np.random.default_rng(2).lognormal(3.0, 0.1, 200)
    values[150] *= 6
    result = detect_series_anomalies(pd.Series(values, index=index))
    assert result["is_anomaly"].to_numpy().nonzero()[0].tolist() == [150]
    assert (result["reason"].iloc[MIN_SERIES_HISTORY:150] == "").all()


_IDX = pd.date_range("2026-10-01", periods=120, freq="h")


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(pd.Series([], dtype=float, index=pd.DatetimeIndex([])), id="empty"),
        pytest.param(pd.Series([3.0], index=_IDX[:1]), id="one point"),
        pytest.param(pd.Series(5.0, index=_IDX), id="constant"),
        pytest.param(pd.Series(0.0, index=_IDX), id="all zeros"),
        pytest.param(pd.Series(np.nan, index=_IDX), id="all NaN"),
        pytest.param(pd.Series(np.arange(120), index=_IDX), id="integers"),
        pytest.param(pd.Series(-np.ones(120), index=_IDX), id="negative"),
        pytest.param(pd.Series(np.r_[np.ones(60), np.inf, np.ones(59)], index=_IDX), id="inf"),
        pytest.param(pd.Series(np.ones(120), index=pd.DatetimeIndex(np.repeat(_IDX[:60], 2))), id="repeated stamps"),
        pytest.param(pd.Series(np.ones(120), index=_IDX.tz_localize("America/New_York")), id="tz-aware"),
        pytest.param(
            pd.Series(np.ones(60), index=pd.DatetimeIndex(np.sort(np.random.default_rng(0).choice(_IDX, 60, False)))),
            id="irregular",
        ),
        pytest.param(pd.Series(np.ones(30), index=[f"k{i}" for i in range(30)]), id="text index"),
    ],
)
def test_odd_series_give_sane_output(series: pd.Series) -> None:
    result = detect_series_anomalies(series)
    _assert_shape(result, series)
    assert len(result) == len(series)
    if series.nunique() <= 1:
        assert not result["is_anomaly"].any()
    assert (result["reason"][series.isna() | ~np.isfinite(series.astype(float))] == "no value").all()


def test_time_zone_sets_the_hour_of_day() -> None:
    # the same instants read in another zone: the hour profile moves with them, the findings stay
    series = _hourly()
    series.iloc[300] *= 5
    utc = detect_series_anomalies(series)
    berlin = detect_series_anomalies(series.tz_convert("Europe/Berlin"))
    naive = detect_series_anomalies(series.tz_localize(None))
    assert berlin.index.equals(series.index.tz_convert("Europe/Berlin"))
    for other in (berlin, naive):
        assert other["is_anomaly"].to_numpy().nonzero()[0].tolist() == [300]
    assert utc["reason"].iloc[10].endswith("no earlier 10:00) to judge")
    assert berlin["reason"].iloc[10].endswith("no earlier 12:00) to judge")
