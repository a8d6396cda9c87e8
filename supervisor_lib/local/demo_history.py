"""``make demo-history``: a realistic month of recorded model calls in the local store, clearly marked as demo data,
so the Supervisor page has something to show: trends, weekday patterns, a spend forecast, anomalies with their
reasons and a budget that runs out.

The calls come from :func:`supervisor_lib.analytics.synthetic.calls_history` (seven workflows on two providers,
prompt caching, response-cache hits, retries, an unpriced model, and injected anomalies: context blow-ups, latency
spikes, runaway output, error bursts, a silent model change), moved so the month ends now. Everything it writes is
marked: DAG ids start with ``demo_``, runs with ``demo_history__``, call ids with ``demo-`` and every call carries
the tag ``demo-history``. Then one anomaly scan runs over the month (what ``supervisor_anomaly_scan`` does every 15
minutes), so the findings and the budget forecasts show at once.

It writes to the store ``make run`` uses (``.airflow/analytics.db``; ``--url`` for another one), runs once per store
(``--remove`` takes the demo data out again, findings included) and never touches a real call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supervisor_lib.store.cursor import StoreCursor
from supervisor_lib.store.db import Store
from supervisor_lib.store.rollups import DROPPED, derived_backfill_sql

PREFIX = "demo_"
RUN_PREFIX = "demo_history__"
CALL_PREFIX = "demo-"
TAG = "demo-history"
#: where the seeding scan leaves a mark, so ``--remove`` finds the findings it made (by their detection time)
MARK_SCOPE = "demo_history"
#: the demo's budgets: a month budget that runs out before the month ends, and a day budget well within its limit
BUDGET_DAGS = ("demo_pr_review", "demo_support_reply")
_DEMO_DAGS = f"{PREFIX}%"


def seed(store: Store, *, calls: int, days: int, seed_value: int, now: datetime | None = None) -> dict[str, Any]:
    """Record the demo month in ``store``, run the anomaly scan over it, and say what was written."""
    from supervisor_lib.analytics import scan
    from supervisor_lib.analytics.findings import set_watermark
    from supervisor_lib.analytics.synthetic import calls_history, to_rows

    now = now or datetime.now(UTC)
    if demo_calls(store):
        raise SystemExit(
            f"the store already holds demo history ({demo_calls(store):,} calls); take it out first with"
            " `make demo-history ARGS=--remove` (or `python -m supervisor_lib.local.demo_history --remove`)"
        )
    start = now - timedelta(days=days)
    frame = calls_history(calls, days=days, seed=seed_value, start=start)
    frame = frame[frame["started_at"] < now]
    frame = frame.assign(
        dag_id=PREFIX + frame["dag_id"],
        run_id=RUN_PREFIX + frame["run_id"],
        call_id=CALL_PREFIX + frame["call_id"],
        tags=frame["tags"].map(lambda tags: f"{tags},{TAG}" if tags else TAG),
    )
    rows = to_rows(frame)
    for chunk in range(0, len(rows), 5000):
        store.insert_attempts(rows[chunk : chunk + 5000])
    budgets = _budgets(store, frame, now)
    result = scan.scan(store, now=now, since=start)
    set_watermark(store, MARK_SCOPE, now, now)
    kinds: dict[str, int] = {}
    for finding in result.new:
        kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    return {"calls": len(rows), "spend_usd": float(frame["cost_usd"].fillna(0).sum()), "first": start, "last": now,
            "dags": sorted(frame["dag_id"].unique()), "findings": kinds, "budgets": budgets}  # fmt: skip


def _budgets(store: Store, frame: Any, now: datetime) -> list[str]:
    """A month budget for one demo DAG, set so it runs out before the month ends at its pace; a day budget for
    another, with room left. Their settled spend is what the demo calls of this month (today) cost."""
    from supervisor_lib.routing.budgets import Charge, Limit, Period, window_of
    from supervisor_lib.store.routing_state import RoutingState

    state = RoutingState(store)
    made = []
    for dag_id, period in zip(BUDGET_DAGS, (Period.MONTH, Period.DAY), strict=True):
        window, start, end = window_of(period, now, "demo")
        assert start is not None and end is not None
        mine = frame[(frame["dag_id"] == dag_id) & (frame["started_at"] >= start)]
        spent = float(mine["cost_usd"].fillna(0).sum())
        elapsed = max((now - start) / (end - start), 0.02)
        # the month one: half-way between what is spent and where the pace leads, so it runs out on the way
        limit = spent + 0.5 * (spent / elapsed - spent) if period is Period.MONTH else max(2 * spent / elapsed, 1.0)
        limit = round(max(limit, spent + 1.0), 2)
        charge = Charge(Limit("dag", dag_id, period, limit, "demo history"), window, start, end)
        reservation = f"{RUN_PREFIX}{dag_id}-{period}"
        state.reserve([charge], 0.0, reservation_id=reservation, owner=(dag_id, "demo", "demo"), now=now, ttl_s=60)
        state.settle_windows(reservation, [(charge.key, charge.window)], spent, now)
        made.append(f"{charge.describe()}: ${spent:,.2f} settled")
    return made


def demo_calls(store: Store) -> int:
    """How many demo calls ``store`` holds."""
    return int(store.run(lambda cur: cur.execute(
        "SELECT COUNT(*) FROM call_attempts WHERE dag_id LIKE ?", (_DEMO_DAGS,)).fetchone()[0]))  # fmt: skip


def remove(store: Store) -> int:
    """Take the demo data out of ``store`` (calls, rollups, transcripts, budgets, the seeding scan's findings);
    return how many demo calls there were."""
    from supervisor_lib.analytics.findings import watermark

    count = demo_calls(store)
    seeded_at = watermark(store, MARK_SCOPE)

    def work(cur: StoreCursor) -> None:
        for table in ("call_attempts", "call_rollups", "run_rollups", "call_transcripts", "routing_decisions"):
            cur.execute(f"DELETE FROM {table} WHERE dag_id LIKE ?", (_DEMO_DAGS,))
        for grain, dropped in DROPPED.items():  # a grain without the DAG: made again from the day rows left
            if "dag_id" in dropped:
                cur.execute("DELETE FROM call_rollups WHERE grain = ?", (grain,))
                cur.execute(derived_backfill_sql(grain))
        cur.execute("DELETE FROM anomalies WHERE dag_id LIKE ? OR call_id LIKE ?", (_DEMO_DAGS, f"{CALL_PREFIX}%"))
        if seeded_at is not None:  # series findings (per provider, per model) the seeding scan made
            cur.execute("DELETE FROM anomalies WHERE detected_at = ?", (seeded_at,))
        for table in ("budget_spend", "budget_reservations"):
            cur.execute(f"DELETE FROM {table} WHERE budget_key LIKE ?", (f"dag:{_DEMO_DAGS}",))
        cur.execute("DELETE FROM anomaly_watermarks WHERE scope = ?", (MARK_SCOPE,))

    store.run(work, transaction=True)
    return count


def _store(args: argparse.Namespace) -> tuple[Store, str]:
    """The store to write to and a description of it safe to print (no password)."""
    from supervisor_lib.store.targets import target_for_url

    url = args.url
    if not url:
        home = (args.home or Path(".airflow")).resolve()
        url = f"sqlite:///{os.environ.get('SUPERVISOR_ANALYTICS_SQLITE') or home / 'analytics.db'}"
    return Store.from_url(url, name="demo history"), target_for_url(url).description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="the `make run` home (default: .airflow)")
    parser.add_argument("--url", help="another store: postgresql://... or sqlite:///path")
    parser.add_argument("--calls", type=int, default=40_000, help="how many calls (default: 40,000)")
    parser.add_argument("--days", type=int, default=30, help="how many days, ending now (default: 30)")
    parser.add_argument("--seed", type=int, default=7, help="the generator's seed (default: 7)")
    parser.add_argument("--remove", action="store_true", help="take the demo data out of the store again")
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 2_000_000:
        parser.error("--calls: between 1 and 2,000,000")
    if not 7 <= args.days <= 120:
        parser.error("--days: between 7 and 120")
    store, where = _store(args)
    try:
        if args.remove:
            print(f"Removed the demo history ({remove(store):,} calls) from {where}.")
            return 0
        began = time.monotonic()
        done = seed(store, calls=args.calls, days=args.days, seed_value=args.seed)
    finally:
        store.close()
    found = ", ".join(f"{n} {kind}" for kind, n in sorted(done["findings"].items())) or "none"
    print(
        f"Recorded {done['calls']:,} demo calls (${done['spend_usd']:,.2f}) from {done['first']:%Y-%m-%d %H:%M} to "
        f"{done['last']:%Y-%m-%d %H:%M} UTC in {where} ({time.monotonic() - began:.0f} s)."
    )
    print(f"  DAGs (demo data, not in Airflow): {', '.join(done['dags'])}; every call tagged '{TAG}'")
    print(f"  Budgets: {'; '.join(done['budgets'])}")
    print(f"  Anomaly scan over the month: {found}")
    print("  See them on the Supervisor page (range 30 d); remove them with `make demo-history ARGS=--remove`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
