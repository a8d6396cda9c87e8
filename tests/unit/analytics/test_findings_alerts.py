"""The anomaly scan's findings in the store (deduplicated, muted, acknowledged, visible per DAG) and their alerts,
sent through Airflow's own SmtpNotifier to a real SMTP server on a loopback port: grouped, never repeated, kept
for the next scan when a notifier fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from supervisor_lib.analytics import alerts, findings
from supervisor_lib.analytics.findings import Finding, mute_key
from supervisor_lib.store import Store
from tests.support.smtp_receiver import SmtpReceiver

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SMTP = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"


def _call_finding(n: int, kind: str = "context_blowup", task: str = "triage", dag: str = "nightly") -> Finding:
    return Finding(kind=kind, subject=f"call:c{n}", occurred_at=NOW - timedelta(minutes=n), score=5.0 + n,
                   reason=f"input {48_000 + n:,} tokens, 11.8x the median of 412 earlier calls of {dag}/{task}",
                   group_key=f"{kind}|task:{dag}.{task}|2026-12-06", dag_id=dag, run_id="r1", task_id=task,
                   map_index=-1, call_id=f"c{n}", provider="anthropic", model="claude-haiku-4-5")  # fmt: skip


def _burst(n: int) -> Finding:
    return Finding(kind="error_burst", subject=f"call:e{n}", occurred_at=NOW - timedelta(minutes=n), score=3.0,
                   reason=f"anthropic failed 14 of 20 calls in 10 minutes (usually 1%), call {n}",
                   group_key="error_burst|provider:anthropic|2026-12-06T11", dag_id=f"dag_{n % 2}", run_id="r",
                   task_id="t", map_index=-1, call_id=f"e{n}", provider="anthropic", model="m")  # fmt: skip


@pytest.fixture
def migrated(store: Store) -> Store:
    store.migrate()
    return store


def test_a_finding_is_stored_once_and_a_mute_silences_its_kind(migrated: Store) -> None:
    first = findings.record(migrated, [_call_finding(1), _call_finding(2)], NOW)
    assert len(first) == 2 and findings.record(migrated, [_call_finding(1)], NOW) == []
    findings.mute(migrated, mute_key("context_blowup", "task:nightly.triage"), "alice", NOW, days=7)
    assert findings.record(migrated, [_call_finding(3), _call_finding(4, task="other")], NOW) == [
        _call_finding(4, task="other")
    ]
    later = NOW + timedelta(days=8)  # the mute has ended
    assert findings.record(migrated, [_call_finding(5)], later) == [_call_finding(5)]


def test_findings_are_listed_per_readable_dag_and_acknowledged(migrated: Store) -> None:
    findings.record(migrated, [_call_finding(1), _call_finding(2, dag="billing"), _burst(1)], NOW)
    window = (NOW - timedelta(days=1), NOW + timedelta(hours=1))
    assert len(findings.listed(migrated, *window)) == 3
    mine = findings.listed(migrated, *window, dag_ids=frozenset({"billing"}))
    assert [f["dag_id"] for f in mine] == ["billing"]
    assert findings.open_count(migrated, None, window[0]) == 3
    assert findings.set_status(migrated, mine[0]["finding_id"], "acknowledged", "bob", NOW)
    assert findings.open_count(migrated, None, window[0]) == 2
    assert findings.listed(migrated, *window, status="acknowledged")[0]["status_by"] == "bob"
    # one finding reads as the list shows it, times as ISO text on both stores (PostgreSQL returns datetimes: the
    # plugin's acknowledge answer could not be JSON there)
    got = findings.get(migrated, mine[0]["finding_id"])
    assert (
        got is not None and json.loads(json.dumps(got)) == findings.listed(migrated, *window, status="acknowledged")[0]
    )
    assert not findings.set_status(migrated, "no-such-finding", "acknowledged", "bob", NOW)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": receiver.port,
                      "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
        yield receiver


def _smtp_config(**kwargs: object) -> alerts.AlertConfig:
    notifier = {"class": SMTP, "kwargs": {"to": "oncall@example.com", "from_email": "supervisor@example.com",
                                          **kwargs}}  # fmt: skip
    return alerts.AlertConfig.parse(json.dumps({"notifiers": [notifier]}), "test")


def test_alerts_reach_a_real_smtp_server_one_message_per_burst_and_never_twice(
    migrated: Store, smtp: SmtpReceiver
) -> None:
    findings.record(migrated, [_call_finding(1), *(_burst(n) for n in range(1, 8))], NOW)
    sent = alerts.send(migrated, _smtp_config(), NOW, ui_url="http://airflow.example/x")
    assert (sent.messages, sent.findings, sent.failures) == (2, 8, [])
    assert len(smtp.messages) == 2 and all(m.recipients == ["oncall@example.com"] for m in smtp.messages)
    burst = next(m for m in smtp.messages if "error burst" in m.subject)
    assert burst.subject == "Supervisor: error burst in provider anthropic (7 findings)"
    assert "anthropic failed 14 of 20 calls" in burst.body()
    blowup = next(m for m in smtp.messages if "context blow-up" in m.subject)
    assert "11.8x the median of 412 earlier calls of nightly/triage" in blowup.body()
    assert "http://airflow.example/x/dags/nightly/runs/r1/tasks/triage/plugin/supervisor-task" in blowup.body()
    again = alerts.send(migrated, _smtp_config(), NOW, ui_url="http://airflow.example/x")
    assert again.messages == 0 and len(smtp.messages) == 2


def test_a_failing_notifier_keeps_the_findings_for_the_next_scan(
    migrated: Store, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings.record(migrated, [_call_finding(1)], NOW)
    broken = {"conn_type": "smtp", "host": "127.0.0.1", "port": 1, "extra": {"disable_tls": True,
              "disable_ssl": True, "retry_limit": 0, "timeout": 2}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(broken))
    failed = alerts.send(migrated, _smtp_config(), NOW, ui_url="http://x")
    assert failed.messages == 0 and len(failed.failures) == 1 and "SmtpNotifier" in failed.failures[0]
    assert len(findings.unalerted(migrated)) == 1
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({**broken, "port": smtp.port}))
    assert alerts.send(migrated, _smtp_config(), NOW, ui_url="http://x").messages == 1
    assert len(smtp.messages) == 1 and findings.unalerted(migrated) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("notifiers: 3", "notifiers must be a list"), ("{notifiers: [{kwargs: {}}]}", "notifiers[0] needs a 'class'"),
     ("{notifier: []}", "unknown key 'notifier'"), ("[1, 2]", "expected a mapping"),
     ("{min_score: high}", "min_score must be a number")],
)  # fmt: skip
def test_a_bad_alert_configuration_says_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(alerts.AlertConfigError, match=r"^supervisor_alerts: .*" + expected.replace("[", r"\[")):
        alerts.AlertConfig.parse(text, "supervisor_alerts")
