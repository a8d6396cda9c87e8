"""A spec's ``notify`` blocks become Airflow callbacks: fresh notifier instances on the DAG and its tasks, with the
message where each notifier wants it, and the ``scrub`` filter that keeps secrets out of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib import build_dag, load_spec
from supervisor_lib.notify.factory import scrub_secrets
from supervisor_lib.notify.webhook import WebhookNotifier

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "specs" / "valid" / "notify.yaml"


def test_notify_blocks_become_dag_and_task_callbacks() -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    dag = build_dag(load_spec(FIXTURE))
    [run_failed] = dag.on_failure_callback  # type: ignore[misc]
    assert isinstance(run_failed, SmtpNotifier) and run_failed.to == "oncall@example.com"
    assert run_failed.subject == "Supervisor: {{ dag.dag_id }} run failed"
    assert dag.on_success_callback is None and dag.user_defined_filters == {"scrub": scrub_secrets}
    task = dag.get_task("ask")
    [task_failed] = task.on_failure_callback  # type: ignore[misc]
    assert isinstance(task_failed, SmtpNotifier) and task_failed is not run_failed
    assert task_failed.subject == "{{ ti.task_id }} failed"  # the spec's own subject wins over the default
    assert "{{ exception | scrub | e }}" in task_failed.html_content
    [task_succeeded] = task.on_success_callback  # type: ignore[misc]
    assert isinstance(task_succeeded, WebhookNotifier) and task_succeeded.conn_id == "supervisor_webhook"
    assert task_succeeded.payload["event"] == "task_succeeded"


def test_a_spec_without_notify_gets_no_callbacks_or_filter(tmp_path: Path) -> None:
    spec = tmp_path / "plain.yaml"
    spec.write_text("tasks: [{id: a, type: llm, provider: anthropic, prompt: hi}]\n")
    dag = build_dag(spec)
    assert dag.on_failure_callback is None and dag.user_defined_filters is None
    assert dag.get_task("a").on_failure_callback == []


def test_scrub_removes_keys_supervisor_and_airflow_know(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import mask_secret

    from supervisor_lib.providers.scrub import register

    register("sk-supervisor-known-0123456789")
    mask_secret("airflow-masked-secret-9876")
    text = "401 for sk-supervisor-known-0123456789 and airflow-masked-secret-9876 and a given token-abcdef"
    assert scrub_secrets(text, "token-abcdef") == "401 for *** and *** and a given ***"
