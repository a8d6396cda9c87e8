"""Anomaly detection and spend forecasting on labelled synthetic data, against 3-sigma baselines, in one run.

Parts 1 to 4 on data from :mod:`supervisor_lib.analytics.synthetic` (ground truth known), part 5 on public data:

1. per call: ``detect_anomalies`` vs a 3-sigma baseline per workflow task, precision / recall / F1 per kind and
   overall, mean ± standard deviation over several seeds. The baseline: per ``(dag_id, task_id)``, a successful
   call whose prompt tokens (input + cache reads + cache writes), output tokens or duration lies above the mean +
   3 standard deviations of that task's successful calls over the whole history; and every failed call in a
   provider-hour whose error rate lies above the mean + 3 standard deviations of that provider's hourly error
   rates. It has no notion of a model change. Its kind is the first that fires of error burst, runaway output,
   context blow-up, latency spike.
2. per series: ``detect_series_anomalies`` vs a rolling 3-sigma rule (outside the mean ± 3 standard deviations of
   the previous 48 points) on hourly series with spikes, level shifts and strong daily/weekly seasonality. A
   spike counts as found when its point is flagged, a level shift when one of its first 6 points is; precision is
   over flagged points (a flag in no such window is a false positive).
3. forecast: ``backtest_forecast`` (rolling origins) on flat, weekly seasonal and trending daily spend: MAPE of the
   horizon's total and coverage of the 80 % bands, 7 and 28 days ahead.
4. speed: ``detect_anomalies`` on 1M calls and ``detect_series_anomalies`` on 20,000 points, time and peak memory.
5. optional, a public yardstick (``--nab DIR``, a checkout of https://github.com/numenta/NAB; never downloaded):
   ``detect_series_anomalies`` and the rolling 3-sigma rule of part 2 on the 58 series of the Numenta Anomaly
   Benchmark, scored NAB-style but simplified (not NAB's official score): the first 15 % of each series (NAB's
   probationary period) is ignored; a labelled window is found if a flagged point lies in it (recall over windows);
   flagged points outside every window are false alarms, those at most 3 points apart being one event; precision =
   windows found / (windows found + false alarm events). Per NAB category and overall.

Run: ``python -m benchmarks.anomaly [--calls 100000] [--days 28] [--seeds 5] [--skip-1m] [--nab DIR [--only-nab]]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supervisor_lib.analytics.anomaly import detect_anomalies, detect_series_anomalies
from supervisor_lib.analytics.forecast import backtest_forecast
from supervisor_lib.analytics.synthetic import (
    KINDS,
    SERIES_FAMILIES,
    SPEND_SHAPES,
    calls_history,
    labelled_series,
    spend_series,
)

GOAL_F1 = 0.9
GOAL_MARGIN = 0.15
GOAL_1M_S = 10.0
GOAL_SERIES_S = 1.0
#: how a reason's first finding names its kind
_PREFIXES = {
    "model change": "model_change",
    "error burst": "error_burst",
    "runaway output": "runaway_output",
    "context blow-up": "context_blowup",
    "latency spike": "latency_spike",
}
#: flags within this many points from the labelled point find the event
_SERIES_WINDOW = {"spike": 1, "level_shift": 6}
_SERIES_BASELINE_WINDOW = 48
_SERIES_PER_SEED = 4
#: NAB: the share of each series ignored at its start (NAB's probationary period), the gap (in points) that
#: separates two false alarm events, and the categories in NAB's order
_NAB_PROBATION = 0.15
_NAB_GAP = 3
_NAB_CATEGORIES = (
    "artificialNoAnomaly",
    "artificialWithAnomaly",
    "realAdExchange",
    "realAWSCloudwatch",
    "realKnownCause",
    "realTraffic",
    "realTweets",
)


def kind_of(reasons: pd.Series) -> np.ndarray:
    """The kind of each row's first finding (``""`` for a normal row)."""
    first = reasons.fillna("").str.split(":", n=1).str[0]
    return first.map(_PREFIXES).fillna("").to_numpy(dtype=object)


def three_sigma_calls(calls: pd.DataFrame) -> np.ndarray:
    """The 3-sigma baseline's kind for each call (``""`` normal); see the module docstring."""
    kind = np.full(len(calls), "", dtype=object)
    ok = (calls["status"] == "success").to_numpy()
    prompt = calls["input_tokens"] + calls["cache_read_tokens"].fillna(0) + calls["cache_write_tokens"].fillna(0)
    metrics = {"latency_spike": calls["duration_s"], "context_blowup": prompt, "runaway_output": calls["output_tokens"]}
    task = [calls["dag_id"], calls["task_id"]]
    for name, values in metrics.items():  # later ones win: runaway output over context blow-up over latency spike
        v = values.astype(float).where(ok)
        grouped = v.groupby(task)
        high = grouped.transform("mean") + 3 * grouped.transform("std")
        kind[(v > high).to_numpy()] = name
    live = calls[calls["status"] != "cached"]
    hour = live["started_at"].dt.floor("h")
    failed = (live["status"] == "error").astype(float)
    rate = failed.groupby([live["provider"], hour]).transform("mean")
    per_hour = failed.groupby([live["provider"], hour]).mean()
    stats = per_hour.groupby(level=0).agg(["mean", "std"])
    limit = live["provider"].map(stats["mean"] + 3 * stats["std"].fillna(0))
    burst = (failed > 0) & (rate > limit)
    kind[calls.index.get_indexer(live.index[burst.to_numpy()])] = "error_burst"
    return kind


def scores(label: np.ndarray, predicted: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Precision, recall and F1 per kind (a flag of the wrong kind is a miss and a false positive) and overall
    (any flag on any anomaly)."""
    out = {}
    for kind in (*KINDS, "overall"):
        if kind == "overall":
            truth, guess = label != "", predicted != ""
        else:
            truth, guess = label == kind, predicted == kind
        tp = int((truth & guess).sum())
        precision = tp / guess.sum() if guess.sum() else float("nan")
        recall = tp / truth.sum() if truth.sum() else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[kind] = (precision, recall, f1)
    return out


def _mean_sd(values: Iterable[float]) -> str:
    kept = [v for v in values if v == v]
    if not kept:
        return "   n/a    "
    spread = statistics.stdev(kept) if len(kept) > 1 else 0.0
    return f"{statistics.fmean(kept):.3f}±{spread:.3f}"


def _table(title: str, rows: list[str], runs: dict[str, list[dict[str, tuple[float, float, float]]]]) -> None:
    names = list(runs)
    print(title)
    header = f"  {'kind':<16}" + "".join(f" | {name + ': P / R / F1':<38}" for name in names)
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        cells = []
        for name in names:
            triple = [_mean_sd(run[row][i] for run in runs[name]) for i in range(3)]
            cells.append(f" | {' '.join(triple):<38}")
        print(f"  {row:<16}" + "".join(cells))


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def per_call(n_calls: int, days: int, seeds: list[int]) -> bool:
    runs: dict[str, list[dict[str, tuple[float, float, float]]]] = {"detect_anomalies": [], "3-sigma baseline": []}
    counts: dict[str, list[int]] = {kind: [] for kind in KINDS}
    elapsed = []
    for seed in seeds:
        calls = calls_history(n_calls, days, seed=seed)
        label = calls["label"].to_numpy(dtype=object)
        for kind in KINDS:
            counts[kind].append(int((label == kind).sum()))
        started = time.perf_counter()
        found = detect_anomalies(calls.drop(columns="label"))
        elapsed.append(time.perf_counter() - started)
        runs["detect_anomalies"].append(scores(label, kind_of(found["reason"])))
        runs["3-sigma baseline"].append(scores(label, three_sigma_calls(calls)))
    labelled = ", ".join(f"{kind} {statistics.fmean(c):.0f}" for kind, c in counts.items())
    _table(
        f"1. Per-call detection: {n_calls:,} calls over {days} days, seeds {seeds[0]}..{seeds[-1]} "
        f"(mean±sd over {len(seeds)} seeds; labelled per seed: {labelled}; detect {statistics.fmean(elapsed):.2f} s)",
        [*KINDS, "overall"],
        runs,
    )
    ours = statistics.fmean(run["overall"][2] for run in runs["detect_anomalies"])
    theirs = statistics.fmean(run["overall"][2] for run in runs["3-sigma baseline"])
    ok_f1, ok_margin = ours >= GOAL_F1, ours - theirs >= GOAL_MARGIN
    print(
        f"  Goal F1 ≥ {GOAL_F1} overall: {_verdict(ok_f1)} ({ours:.3f}); ≥ {GOAL_MARGIN} above the baseline: "
        f"{_verdict(ok_margin)} (+{ours - theirs:.3f} over {theirs:.3f})"
    )
    return ok_f1 and ok_margin


def rolling_three_sigma(values: pd.Series, window: int = _SERIES_BASELINE_WINDOW) -> np.ndarray:
    """Flags of the rolling 3-sigma rule: outside the mean ± 3 sd of the previous ``window`` points."""
    previous = values.shift(1).rolling(window, min_periods=window // 2)
    return ((values - previous.mean()).abs() > 3 * previous.std()).fillna(False).to_numpy(dtype=bool)


def series_scores(label: np.ndarray, flags: np.ndarray) -> tuple[int, int, int, int]:
    """(events found, events, flagged points in an event window, flagged points outside any)."""
    window = np.zeros(len(label), dtype=bool)
    found = events = 0
    for position in np.flatnonzero(label != "").tolist():
        span = slice(position, position + _SERIES_WINDOW[label[position]])
        window[span] = True
        events += 1
        found += bool(flags[span].any())
    return found, events, int((flags & window).sum()), int((flags & ~window).sum())


def _prf(found: int, events: int, tp: int, fp: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = found / events if events else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def per_series(seeds: list[int]) -> bool:
    detectors: dict[str, Callable[[pd.Series], np.ndarray]] = {
        "detect_series_anomalies": lambda s: detect_series_anomalies(s)["is_anomaly"].to_numpy(dtype=bool),
        "rolling 3-sigma": rolling_three_sigma,
    }
    runs: dict[str, list[dict[str, tuple[float, float, float]]]] = {name: [] for name in detectors}
    for seed in seeds:
        totals = {name: {family: np.zeros(4, dtype=int) for family in SERIES_FAMILIES} for name in detectors}
        for family in SERIES_FAMILIES:
            for part in range(_SERIES_PER_SEED):
                frame = labelled_series(family, 1000 * seed + part)
                label = frame["label"].to_numpy(dtype=object)
                for name, detect in detectors.items():
                    totals[name][family] += series_scores(label, detect(frame["value"]))
        for name in detectors:
            run = {family: _prf(*totals[name][family]) for family in SERIES_FAMILIES}
            run["overall"] = _prf(*sum(totals[name].values()))  # type: ignore[arg-type]
            runs[name].append(run)
    _table(
        f"2. Series detection: hourly series of 8 weeks, {_SERIES_PER_SEED} per family and seed, "
        f"seeds {seeds[0]}..{seeds[-1]} "
        "(spike found if its point is flagged, level shift if one of its first 6 points is)",
        [*SERIES_FAMILIES, "overall"],
        runs,
    )
    ours = statistics.fmean(run["overall"][2] for run in runs["detect_series_anomalies"])
    theirs = statistics.fmean(run["overall"][2] for run in runs["rolling 3-sigma"])
    print(f"  F1 overall {ours:.3f} vs {theirs:.3f} for the rolling 3-sigma rule")
    return ours > theirs


def forecasts(seeds: list[int], days: int = 120) -> None:
    print(
        f"3. Spend forecast: rolling-origin backtests on {days}-day series (origins every 2 days from day 21), "
        f"seeds {seeds[0]}..{seeds[-1]}, 80 % bands"
    )
    print(f"  {'shape':<10} {'horizon':>7} | {'MAPE total':>13} | {'coverage total':>14} | "
          f"{'WAPE daily':>13} | {'coverage daily':>14} | methods")  # fmt: skip
    for shape in SPEND_SHAPES:
        for horizon in (7, 28):
            results = [backtest_forecast(spend_series(shape, days, seed), horizon=horizon, step=2) for seed in seeds]
            methods: dict[str, int] = {}
            for result in results:
                for method, count in result["methods"].items():
                    methods[method] = methods.get(method, 0) + count
            print(
                f"  {shape:<10} {horizon:>5} d | {_mean_sd(r['mape'] for r in results):>13} | "
                f"{_mean_sd(r['coverage'] for r in results):>14} | {_mean_sd(r['daily_wape'] for r in results):>13} | "
                f"{_mean_sd(r['daily_coverage'] for r in results):>14} | "
                + ", ".join(f"{m} {c}" for m, c in sorted(methods.items()))
            )


def _measure(run: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best wall time in s over ``repeat`` runs, peak traced memory in MB of one more run)."""
    best = min(_timed(run) for _ in range(repeat))
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return best, peak


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def speed(skip_1m: bool) -> bool:
    print("4. Speed (wall time, best of the runs; peak memory traced by tracemalloc over one more run)")
    ok = True
    if skip_1m:
        print("  detect_anomalies at 1M calls: skipped (--skip-1m)")
    else:
        calls = calls_history(1_000_000, 60, seed=7).drop(columns="label")
        seconds, peak = _measure(lambda: detect_anomalies(calls), repeat=2)
        ok &= seconds <= GOAL_1M_S
        print(
            f"  detect_anomalies, 1,000,000 calls:        {seconds:6.2f} s, peak {peak:6.0f} MB "
            f"(goal ≤ {GOAL_1M_S:.0f} s: {_verdict(seconds <= GOAL_1M_S)})"
        )
    values = pd.concat([labelled_series(family, 1, points=24 * 280)["value"] for family in SERIES_FAMILIES])
    series = pd.Series(values.to_numpy()[:20_000], index=pd.date_range("2026-01-01", periods=20_000, freq="h"))
    seconds, peak = _measure(lambda: detect_series_anomalies(series), repeat=3)
    ok &= seconds <= GOAL_SERIES_S
    print(
        f"  detect_series_anomalies, 20,000 points:   {seconds:6.3f} s, peak {peak:6.1f} MB "
        f"(goal ≤ {GOAL_SERIES_S:.0f} s: {_verdict(seconds <= GOAL_SERIES_S)})"
    )
    return ok


def _nab_commit(root: Path) -> str:
    """The commit of ``root`` if it is the top of a git checkout, else ``"unknown"`` (e.g. an export)."""
    git = ["git", "-C", str(root), "rev-parse"]
    try:
        top = subprocess.run([*git, "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip()
        if Path(top).resolve() != root.resolve():
            return "unknown"
        return subprocess.run([*git, "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_nab(root: Path) -> Iterable[tuple[str, pd.Series, list[tuple[pd.Timestamp, pd.Timestamp]]]]:
    """``(category, series, labelled windows)`` per NAB data file, the series on naive timestamps, sorted (stably:
    one file steps back 55 minutes once)."""
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    for key in sorted(labels):
        frame = pd.read_csv(root / "data" / key)
        stamps = pd.to_datetime(frame["timestamp"])
        series = pd.Series(frame["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(stamps))
        windows = [(pd.Timestamp(start), pd.Timestamp(end)) for start, end in labels[key]]
        yield key.split("/", 1)[0], series.sort_index(kind="stable"), windows


def nab_scores(
    stamps: pd.DatetimeIndex, windows: list[tuple[pd.Timestamp, pd.Timestamp]], flags: np.ndarray
) -> np.ndarray:
    """``[windows found, windows scored, false alarm events]`` of one series after its probationary period.

    A window is scored unless it ends inside the probationary period, and found if a flag after that period lies in
    it (its ends included); flags outside every window are false alarm events, flags at most :data:`_NAB_GAP`
    points apart being one event.
    """
    scored = np.arange(len(flags)) >= int(_NAB_PROBATION * len(flags))
    inside = np.zeros(len(flags), dtype=bool)
    found = counted = 0
    for start, end in windows:
        span = ((stamps >= start) & (stamps <= end)) & scored
        inside |= span
        if span.any():
            counted += 1
            found += bool((flags & span).any())
    alarms = np.flatnonzero(flags & scored & ~inside)
    events = int(len(alarms) > 0) + int((np.diff(alarms) > _NAB_GAP).sum())
    return np.array([found, counted, events])


def _nab_prf(found: int, windows: int, events: int) -> tuple[float, float, float]:
    precision = found / (found + events) if found + events else float("nan")
    recall = found / windows if windows else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return precision, recall, f1


def nab(root: Path | None) -> None:
    """Part 5: both series detectors on the Numenta Anomaly Benchmark's series and labelled windows."""
    if root is None:
        print("5. NAB: skipped (nothing is downloaded); to run it: git clone https://github.com/numenta/NAB, --nab NAB")
        return
    started = time.perf_counter()
    detectors: dict[str, Callable[[pd.Series], np.ndarray]] = {
        "detect_series_anomalies": lambda s: detect_series_anomalies(s)["is_anomaly"].to_numpy(dtype=bool),
        "rolling 3-sigma": rolling_three_sigma,
    }
    totals = {name: {c: np.zeros(3, dtype=int) for c in _NAB_CATEGORIES} for name in detectors}
    series_count = dict.fromkeys(_NAB_CATEGORIES, 0)
    labelled = points = 0
    seconds = dict.fromkeys(detectors, 0.0)
    for category, series, windows in read_nab(root):
        series_count[category] = series_count.get(category, 0) + 1
        labelled += len(windows)
        points += len(series)
        for name, detect in detectors.items():
            clock = time.perf_counter()
            flags = detect(series)
            seconds[name] += time.perf_counter() - clock
            counts = nab_scores(pd.DatetimeIndex(series.index), windows, flags)
            totals[name][category] = totals[name].get(category, np.zeros(3, dtype=int)) + counts
    for name in detectors:
        totals[name]["overall"] = np.sum(list(totals[name].values()), axis=0)
    series_count["overall"] = sum(series_count.values())
    scored = int(totals["detect_series_anomalies"]["overall"][1])
    print(
        f"5. NAB (Numenta Anomaly Benchmark, MIT) in {root}, commit {_nab_commit(root)}: {series_count['overall']} "
        f"series, {points:,} points, {labelled} labelled windows ({labelled - scored} end in the probationary period, "
        "not scored)"
    )
    print(
        "  Simplified NAB-style scoring, not NAB's official score: the first "
        f"{_NAB_PROBATION * 100:.0f} % of each series (NAB's probationary period) is ignored for both detectors; "
        "a window is found if a flagged point lies in it "
        "(recall over windows); flagged points outside every window are false alarms, flags at most "
        f"{_NAB_GAP} points apart being one; precision = windows found / (windows found + false alarms)."
    )
    names = list(detectors)
    header = f"  {'category':<22} {'series':>6} {'windows':>7}" + "".join(
        f" | {name + ': P / R / F1 (found, false alarms)':<50}" for name in names
    )
    print(header.rstrip())
    print("  " + "-" * (len(header) - 2))
    for category, count in series_count.items():
        cells = []
        for name in names:
            found, scored, events = (int(v) for v in totals[name][category])
            triple = " ".join(f"{v:5.3f}" if v == v else "  n/a" for v in _nab_prf(found, scored, events))
            cells.append(f" | {f'{triple} ({found}, {events})':<50}")
        print((f"  {category:<22} {count:>6} {scored:>7}" + "".join(cells)).rstrip())  # scored windows: alike for both
    print(
        f"  took {time.perf_counter() - started:.1f} s (detect_series_anomalies {seconds[names[0]]:.1f} s, "
        f"rolling 3-sigma {seconds[names[1]]:.1f} s, the rest reading and scoring)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per synthetic history (default 100,000)")
    parser.add_argument("--days", type=int, default=28, help="days the history spans (default 28)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per part (default 5)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--skip-1m", action="store_true", help="skip the 1M-call timing")
    parser.add_argument(
        "--nab",
        type=Path,
        metavar="DIR",
        help="run part 5 on the Numenta Anomaly Benchmark: DIR holds a checkout or export of "
        "https://github.com/numenta/NAB (data/ and labels/combined_windows.json); nothing is downloaded",
    )
    parser.add_argument("--only-nab", action="store_true", help="run part 5 only (needs --nab)")
    args = parser.parse_args(argv)
    if args.only_nab and args.nab is None:
        parser.error("--only-nab needs --nab DIR")
    if args.nab is not None and not (args.nab / "labels" / "combined_windows.json").is_file():
        parser.error(f"--nab {args.nab}: no labels/combined_windows.json there (a checkout of numenta/NAB?)")
    seeds = list(range(args.first_seed, args.first_seed + max(args.seeds, 1)))
    started = time.perf_counter()
    if not args.only_nab:
        per_call(args.calls, args.days, seeds)
        print()
        per_series(seeds)
        print()
        forecasts(seeds)
        print()
        speed(args.skip_1m)
        print()
    nab(args.nab)
    print(f"\n(benchmark ran {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
