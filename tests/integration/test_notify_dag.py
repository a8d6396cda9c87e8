"""A spec task's ``notify`` block in Airflow (``dag.test()``): when the task fails, its ``on_failure`` notifiers send a
mail to a real SMTP server and post JSON to a real webhook endpoint (its connection's token as the bearer), its
``on_success`` notifier stays silent, and neither message carries the key the failing provider echoed.

DAG-level callbacks cannot be run by ``dag.test()`` with a templated notifier (``supervisor_lib/compat.py``, 9):
``test_notify_stack.py`` checks them on a real Airflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import CANARY_KEY, use_fake_provider
from tests.support.dagtest import run_dag_file, task_states
from tests.support.smtp_receiver import SmtpReceiver
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

WEBHOOK_TOKEN = "whk-canary-0c1d2e3f4a5b6c7d"

SPEC = """
dag_id: notify_it
schedule: null
defaults: {provider: anthropic, model: claude-haiku-4-5, retries: 0, deferrable: false}
tasks:
  - id: ask
    type: llm
    prompt: FAIL please
    notify:
      on_failure:
        - notifier: smtp
          kwargs: {to: oncall@example.com, from_email: supervisor@example.com}
        - notifier: webhook
          kwargs: {conn_id: notify_it_webhook}
      on_success:
        - notifier: smtp
          kwargs: {to: never@example.com, from_email: supervisor@example.com}
"""


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SmtpReceiver, WebhookReceiver]]:
    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                      "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
        webhook = {"conn_type": "http", "host": hook.url, "password": WEBHOOK_TOKEN, "extra": {"endpoint": "/hooks/x"}}
        monkeypatch.setenv("AIRFLOW_CONN_NOTIFY_IT_WEBHOOK", json.dumps(webhook))
        yield smtp, hook


def test_a_failing_task_notifies_smtp_and_a_webhook(
    airflow_db: object, fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, dags_folder: Path,
    tmp_path: Path, receivers: tuple[SmtpReceiver, WebhookReceiver],
) -> None:  # fmt: skip
    smtp, hook = receivers
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.add_rules([Rule(match="FAIL please", fault="bad_request", message="bad key {api_key} refused")])
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "notify_it.yaml").write_text(SPEC)
    loader = f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), {str(specs)!r})\n'

    run = run_dag_file(dags_folder, "notify_it_loader.py", loader, "notify_it")

    assert task_states(run) == {"ask": "failed"}
    assert [m.recipients for m in smtp.messages] == [["oncall@example.com"]]  # on_success never fired
    mail = smtp.messages[0]
    assert mail.subject == "Supervisor: notify_it.ask failed"
    assert f"Run: {run.run_id}" in mail.body() and "Task: ask, try 1" in mail.body()
    assert "HTTP 400" in mail.body() and "bad key *** refused" in mail.body()
    assert CANARY_KEY not in mail.body()
    assert [post.path for post in hook.posts] == ["/hooks/x"]
    posted = hook.posts[0]
    assert posted.headers["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert posted.body["event"] == "task_failed" and posted.body["dag_id"] == "notify_it"
    assert posted.body["title"] == "Supervisor: notify_it.ask failed" and posted.body["task_id"] == "ask"
    assert "Error: anthropic model 'claude-haiku-4-5': HTTP 400" in posted.body["text"]
    assert posted.body["run_id"] == run.run_id
    assert CANARY_KEY not in posted.raw and WEBHOOK_TOKEN not in posted.raw
