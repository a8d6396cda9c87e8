"""``supervisor_anomaly_scan`` runs in Airflow (``dag.test()``, the shipped DAG file's factory): its ``scan`` task
finds the anomalies of the last day in the analytics store and its ``alert`` task sends them through Airflow's
SmtpNotifier to a real SMTP server, one message per group; a second run finds and sends nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.dagtest import run_dag_file, task_states, xcom
from tests.support.smtp_receiver import SmtpReceiver

pytestmark = pytest.mark.slow

DAG_SOURCE = """
# an Airflow DAG file (the DAG processor skips files that do not say so)
from supervisor_lib.build.scan_dag import anomaly_scan_dag

dag = anomaly_scan_dag(dag_id="anomaly_scan_it")
"""


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": receiver.port,
                      "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
        notifier = {"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
                    "kwargs": {"to": "oncall@example.com", "from_email": "supervisor@example.com"}}  # fmt: skip
        monkeypatch.setenv("SUPERVISOR_ALERTS", json.dumps({"notifiers": [notifier]}))
        yield receiver


def test_the_scan_dag_stores_findings_and_alerts_once(airflow_db: object, dags_folder: Path, smtp: SmtpReceiver
                                                      ) -> None:  # fmt: skip
    from supervisor_lib.analytics import findings
    from supervisor_lib.analytics.synthetic import calls_history, to_rows
    from supervisor_lib.store import get_store

    now = datetime.now(UTC)
    frame = calls_history(8000, days=8, seed=5, start=now - timedelta(days=8))
    frame = frame[frame["started_at"] < now].assign(dag_id=lambda f: "scan_it_" + f["dag_id"])
    store = get_store()
    rows = to_rows(frame)
    for chunk in range(0, len(rows), 4000):
        store.insert_attempts(rows[chunk : chunk + 4000])
    last_day = frame[(frame["label"] != "") & (frame["started_at"] >= now - timedelta(days=1))]
    assert len(last_day) > 5  # the generator put anomalies in the last day: the first scan looks back one day

    run = run_dag_file(dags_folder, "anomaly_scan_it.py", DAG_SOURCE, "anomaly_scan_it")
    assert task_states(run) == {"scan": "success", "alert": "success"}
    scanned, alerted = xcom(run, "scan"), xcom(run, "alert")
    assert scanned["calls_scanned"] > 0 and scanned["new_findings"] > 0
    stored = findings.listed(store, now - timedelta(days=1), now + timedelta(minutes=1), limit=1000)
    ours = {f["call_id"] for f in stored if (f["dag_id"] or "").startswith("scan_it_")}
    assert last_day["call_id"].isin(list(ours)).mean() >= 0.6
    assert alerted["findings"] == scanned["new_findings"] and alerted["messages"] == len(smtp.messages) > 0
    assert all(m.subject.startswith("Supervisor: ") for m in smtp.messages)
    assert findings.unalerted(store) == []

    again = run_dag_file(dags_folder, "anomaly_scan_it.py", DAG_SOURCE, "anomaly_scan_it",
                         logical_date=now + timedelta(minutes=1))  # fmt: skip
    assert task_states(again) == {"scan": "success", "alert": "success"}
    assert xcom(again, "scan")["new_findings"] == 0 and xcom(again, "alert")["messages"] == 0
