"""``supervisor_anomaly_scan``: the DAG that scans recorded calls for anomalies and sends the alerts.

Every 15 minutes by default (``$SUPERVISOR_ANOMALY_SCAN_SCHEDULE``, a cron expression or ``@hourly``; read when the
DAG file is parsed), unpaused from its creation. Two tasks: ``scan`` stores the new findings (incremental, from the
scan's watermark) and the budgets' forecasts, then ``alert`` sends the findings through the notifiers of
``supervisor_alerts`` and of the specs in ``specs_dir`` that ask for them (``notify.on_anomaly``, ``notify.on_budget``:
the scan records the budget shares those specs watch). A failed notifier fails ``alert``, which Airflow retries; the
findings wait for it. pandas is imported only when the tasks run.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

SCHEDULE_ENV = "SUPERVISOR_ANOMALY_SCAN_SCHEDULE"
DEFAULT_SCHEDULE = "*/15 * * * *"
DAG_ID = "supervisor_anomaly_scan"


def anomaly_scan_dag(dag_id: str = DAG_ID, schedule: str | None = None, conn_id: str | None = None,
                     specs_dir: str | os.PathLike[str] | None = None) -> DAG:  # fmt: skip
    """The scan DAG (``conn_id``: the analytics store's connection; default ``supervisor_analytics``; ``specs_dir``:
    the spec folder whose ``notify`` blocks are read when the tasks run)."""
    specs = os.fspath(specs_dir) if specs_dir is not None else None
    with DAG(
        dag_id=dag_id,
        description="Scan recorded model calls for anomalies and alert through Airflow notifiers",
        schedule=schedule or os.environ.get(SCHEDULE_ENV) or DEFAULT_SCHEDULE,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # findings from the first 15 minutes on; pause it in the UI to stop it
        tags=["supervisor", "anomaly"],
        default_args={"owner": "supervisor", "retries": 2, "retry_delay": timedelta(minutes=1)},
        doc_md=__doc__,
    ) as dag:

        @task(task_id="scan")
        def scan_calls() -> dict[str, Any]:
            """Store the findings in what was recorded since the last scan."""
            from supervisor_lib.analytics.alerts import routes_from_specs
            from supervisor_lib.analytics.scan import scan
            from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store
            from supervisor_lib.store.intents import adopt_stale

            store = get_store(conn_id or DEFAULT_CONN_ID)
            lost = adopt_stale(store)  # calls whose process died and whose task was not retried: recorded first
            shares = {dag: route.shares for dag, route in routes_from_specs(specs).items() if route.shares}
            result = scan(store, budget_shares=shares)
            return {"calls_scanned": result.calls_scanned, "series_scanned": result.series_scanned,
                    "new_findings": len(result.new), "lost_attempts": lost, "summary": result.summary()}  # fmt: skip

        @task(task_id="alert")
        def send_alerts() -> dict[str, Any]:
            """Send the findings not alerted yet, one message per burst."""
            from datetime import UTC, datetime

            from supervisor_lib.analytics import alerts
            from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store

            config = alerts.load_config()
            routes = alerts.routes_from_specs(specs)
            sent = alerts.send(get_store(conn_id or DEFAULT_CONN_ID), config, datetime.now(UTC), routes=routes)
            summary = {"messages": sent.messages, "findings": sent.findings, "notifiers": alerts.describe(config)}
            if sent.failures:
                raise RuntimeError(f"{len(sent.failures)} notification(s) failed (retried): {'; '.join(sent.failures)}")
            return summary

        scan_calls() >> send_alerts()
    return dag
