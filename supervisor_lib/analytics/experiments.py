"""Model experiments: per-arm pass rate, cost, tokens, latency and iterations with confidence intervals, each arm
compared with the first (the baseline), and a plain verdict. Read by ``supervisor experiment report``, the plugin's
Experiments view and ``python -m benchmarks.coding --arms``; the maths is :mod:`.experiment_stats`.

The verdict, per arm against the baseline, from the 95 % intervals of the differences:

- pass rate **higher** / **lower**: the difference's interval excludes 0;
- **no measurable loss**: the interval includes 0 and its low end is above ``-margin`` (10 points by default): the
  arm may be worse by less than the margin, no more;
- otherwise **not enough runs to tell**, with the runs per arm a two-sample comparison at 80 % power needs to tell
  the observed difference (at least the margin) apart;
- cost and latency: cheaper / costlier, faster / slower when their bootstrap interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from supervisor_lib.analytics.experiment_stats import (
    Interval,
    bootstrap_diff,
    bootstrap_mean,
    newcombe_diff,
    runs_needed_rate,
    wilson,
)
from supervisor_lib.store.experiments import arm_runs, experiment_names

if TYPE_CHECKING:
    from supervisor_lib.store.db import Store

__all__ = ["CONFIDENCE", "MARGIN", "experiment_report", "format_report", "summarize"]

CONFIDENCE = 0.95
#: the loss of pass rate (absolute) that still counts as "no measurable loss"
MARGIN = 0.10
#: the per-run metrics summarised with a bootstrap interval of their mean
METRICS = ("cost_usd", "tokens", "duration_s", "iterations")


def experiment_report(
    store: Store, experiment: str | None = None, *, dag_ids: Collection[str] | None = None,
    since: datetime | None = None, margin: float = MARGIN,
) -> dict[str, Any]:  # fmt: skip
    """The report of ``experiment`` (default: the one with the newest row) over the DAGs of ``dag_ids`` (``None``:
    every DAG), as JSON-ready values; ``experiments`` lists every experiment there is to choose from."""
    names = experiment_names(store, dag_ids=dag_ids)
    chosen = experiment if experiment is not None else (names[0] if names else None)
    rows = arm_runs(store, chosen, dag_ids=dag_ids, since=since) if chosen is not None else []
    return {"experiments": names, **summarize(chosen, rows, margin=margin)}


def summarize(experiment: str | None, rows: Sequence[dict[str, Any]], *, margin: float = MARGIN) -> dict[str, Any]:
    """Per-arm statistics and the comparisons with the baseline arm, from ``experiment_runs`` rows."""
    arms = _arms(rows)
    summaries = [_arm_summary(name, runs) for name, runs in arms]
    comparisons = [_compare(arms[0], arm, margin) for arm in arms[1:]]
    times = [row["recorded_at"] for row in rows if row.get("recorded_at") is not None]
    return {
        "experiment": experiment,
        "confidence": CONFIDENCE,
        "margin_points": round(margin * 100, 6),  # the pass-rate loss that counts as none, in percentage points
        "runs": len(rows),
        "dags": sorted({row["dag_id"] for row in rows}),
        "first_at": min(times).isoformat() if times else None,
        "last_at": max(times).isoformat() if times else None,
        "arms": summaries,
        "comparisons": comparisons,
        "verdict": _overall(experiment, arms, comparisons),
    }


def _arms(rows: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The arms in declared order (``arm_index``; the name breaks ties), each with its rows."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["arm"], []).append(row)
    order = sorted(grouped, key=lambda name: (min(r["arm_index"] for r in grouped[name]), name))
    return [(name, grouped[name]) for name in order]


def _values(runs: Sequence[dict[str, Any]], metric: str) -> list[float]:
    return [float(run[metric]) for run in runs if run[metric] is not None]


def _arm_summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    passed = sum(run["passed"] for run in runs)
    return {
        "arm": name,
        "models": sorted({f"{run['provider']}:{run['model']}" if run["model"] else run["provider"] for run in runs}),
        "runs": len(runs),
        "passed": passed,
        "pass_rate": wilson(passed, len(runs), CONFIDENCE).as_dict(),
        **{metric: bootstrap_mean(_values(runs, metric), CONFIDENCE).as_dict() for metric in METRICS},
        "statuses": _counts(run["status"] for run in runs),
    }


def _counts(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def _compare(base: tuple[str, list[dict[str, Any]]], arm: tuple[str, list[dict[str, Any]]],
             margin: float) -> dict[str, Any]:  # fmt: skip
    (base_name, base_runs), (name, runs) = base, arm
    rates = (sum(r["passed"] for r in base_runs), len(base_runs)), (sum(r["passed"] for r in runs), len(runs))
    pass_diff = newcombe_diff(*rates, CONFIDENCE)
    diffs = {m: bootstrap_diff(_values(base_runs, m), _values(runs, m), CONFIDENCE) for m in METRICS}
    needed = _runs_needed(rates, pass_diff, margin)
    return {
        "arm": name,
        "baseline": base_name,
        "pass_rate_diff": pass_diff.as_dict(),
        **{f"{m}_diff": diffs[m].as_dict() for m in METRICS},
        "pass_rate": _pass_state(pass_diff, margin),
        "runs_needed_per_arm": needed,
        "more_runs_needed": max(0, needed - min(len(base_runs), len(runs))) if needed else 0,
        "verdict": _verdict(name, base_name, pass_diff, diffs, margin, needed, rates),
    }


def _pass_state(diff: Interval, margin: float) -> str:
    if diff.low is None or diff.high is None:
        return "unknown"
    if diff.low > 0:
        return "higher"
    if diff.high < 0:
        return "lower"
    return "no_loss" if diff.low >= -margin else "unknown"


def _runs_needed(rates: tuple[tuple[int, int], tuple[int, int]], diff: Interval, margin: float) -> int:
    """Runs per arm to settle the pass-rate question; 0 when it is settled already."""
    if _pass_state(diff, margin) != "unknown":
        return 0
    observed = abs(diff.estimate) if diff.estimate is not None else 0.0
    return runs_needed_rate(*rates, difference=max(observed, margin), confidence=CONFIDENCE)


def _verdict(name: str, base: str, pass_diff: Interval, diffs: dict[str, Interval], margin: float, needed: int,
             rates: tuple[tuple[int, int], tuple[int, int]]) -> str:  # fmt: skip
    state = _pass_state(pass_diff, margin)
    cost = _cost_phrase(diffs["cost_usd"])
    speed = _speed_phrase(diffs["duration_s"])
    extra = "".join(f"; {p}" for p in (speed,) if p)
    if state in ("higher", "lower"):
        more = "more" if state == "higher" else "less"
        costs = f"; {cost}" if cost else ""
        return f"arm {name} passes {more} often than arm {base} ({_points(pass_diff)}){costs}{extra}"
    if state == "no_loss":
        loss = f"no measurable loss of pass rate (at most {margin * 100:.0f} points below arm {base})"
        if cost and cost.startswith("cheaper"):
            return f"arm {name} is {cost} at {loss}{extra}"
        return f"arm {name}: {cost or 'no measurable cost difference'}, and {loss}{extra}"
    missing = max(0, needed - min(n for _, n in rates))
    head = f"arm {name} is {cost}, but " if cost and cost.startswith("cheaper") else ""
    return (f"{head}not enough runs to tell arm {name}'s pass rate from arm {base}'s: {missing} more runs per arm "
            f"needed ({needed} per arm in all)")  # fmt: skip


def _points(diff: Interval) -> str:
    assert diff.estimate is not None and diff.low is not None and diff.high is not None
    return f"{diff.estimate * 100:+.0f} points, 95% CI [{diff.low * 100:+.0f}, {diff.high * 100:+.0f}]"


def _cost_phrase(diff: Interval) -> str | None:
    if not diff.excludes_zero():
        return None
    assert diff.estimate is not None and diff.low is not None and diff.high is not None
    word = "cheaper" if diff.estimate < 0 else "costlier"
    near, far = sorted((abs(diff.low), abs(diff.high)))
    return f"{word} by ${abs(diff.estimate):.4f} per task (95% CI ${near:.4f}-${far:.4f})"


def _speed_phrase(diff: Interval) -> str | None:
    if not diff.excludes_zero():
        return None
    assert diff.estimate is not None
    return f"{'faster' if diff.estimate < 0 else 'slower'} by {abs(diff.estimate):.1f} s per task"


def _overall(experiment: str | None, arms: list[tuple[str, list[dict[str, Any]]]],
             comparisons: list[dict[str, Any]]) -> str:  # fmt: skip
    if experiment is None:
        return "no experiment has recorded runs yet"
    if len(arms) < 2:
        return f"only {len(arms)} arm has recorded runs: nothing to compare yet"
    return "; ".join(comparison["verdict"] for comparison in comparisons)


# -- text ------------------------------------------------------------------------------------------------------------
_COLUMNS = (("arm", 12, "<"), ("model", 28, "<"), ("runs", 5, ">"), ("pass rate", 19, ">"), ("cost $/task", 26, ">"),
            ("tokens/task", 20, ">"), ("latency s", 17, ">"), ("iterations", 16, ">"))  # fmt: skip
_FORMATS = {"cost_usd": "{:.4f}", "tokens": "{:.0f}", "duration_s": "{:.1f}", "iterations": "{:.1f}"}


def _interval_text(value: dict[str, float | None], fmt: str) -> str:
    if value["estimate"] is None:
        return "-"
    text = fmt.format(value["estimate"])
    if value["low"] is None or value["high"] is None:
        return text
    return f"{text} [{fmt.format(value['low'])}, {fmt.format(value['high'])}]"


def _row(cells: Sequence[str]) -> str:
    return "  ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, _COLUMNS, strict=True))


def format_report(report: dict[str, Any]) -> str:
    """The report as text: a heading, the per-arm table with intervals, and the verdict."""
    if report["experiment"] is None:
        return "No experiment has recorded runs yet."
    head = (f"experiment {report['experiment']}: {len(report['arms'])} arms, {report['runs']} runs in "
            f"{', '.join(report['dags'])} ({report['first_at'] or '-'} .. {report['last_at'] or '-'}); "
            f"{report['confidence'] * 100:.0f}% intervals")  # fmt: skip
    header = _row([name for name, _, _ in _COLUMNS])
    lines = [head, header, "-" * len(header)]
    for arm in report["arms"]:
        rate = _interval_text(arm["pass_rate"], "{:.0%}")
        cells = [arm["arm"], ", ".join(arm["models"]), str(arm["runs"]), rate,
                 *(_interval_text(arm[m], _FORMATS[m]) for m in METRICS)]  # fmt: skip
        lines.append(_row(cells))
    lines += ["-" * len(header), f"verdict: {report['verdict']}"]
    return "\n".join(lines)
