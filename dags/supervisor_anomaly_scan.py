"""Supervisor's anomaly scan, an Airflow DAG: every 15 minutes (``$SUPERVISOR_ANOMALY_SCAN_SCHEDULE``), look at
the model calls recorded since the last scan, store what is anomalous (context blow-ups, latency spikes, runaway
output, error bursts, silent model changes, hourly spend and p95 latency spikes, budgets forecast to run out) and
alert through the notifiers in the ``supervisor_alerts`` Variable and those the specs in include/specs/ declare
(``notify.on_anomaly``, ``notify.on_budget``). The findings show on the Supervisor page."""

from pathlib import Path

from supervisor_lib.build.scan_dag import anomaly_scan_dag

dag = anomaly_scan_dag(specs_dir=Path(__file__).resolve().parents[1] / "include" / "specs")
