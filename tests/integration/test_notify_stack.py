"""A spec's ``notify`` blocks on a real Airflow (scheduler, DAG processor, triggerer, API server), as a user runs them:
the run is triggered through the REST API, its model task fails (the provider refuses the call, echoing the key),
the task's ``on_failure`` mails a real SMTP server from the task's process, and the workflow's ``notify.on_failure``
posts the run's failure to a real webhook from the DAG processor, which runs Airflow's DAG callbacks. Neither message
carries the key or the webhook's token. ``test_notify_dag.py`` covers the task-level notifiers under ``dag.test()``,
which cannot run a templated DAG-level one (``supervisor_lib/compat.py``, 9)."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.connections import CANARY_KEY
from tests.support.smtp_receiver import SmtpReceiver
from tests.support.stack import provider_stack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DAG_ID = "notify_stack"
WEBHOOK_TOKEN = "whk-canary-9a8b7c6d5e4f3a2b"

SPEC = """
    dag_id: notify_stack
    schedule: null
    defaults: {provider: anthropic, model: claude-haiku-4-5, retries: 0}
    notify:
      on_failure:
        - notifier: webhook
          kwargs: {conn_id: notify_stack_hook}
    tasks:
      - id: ask
        type: llm
        prompt: NOTIFY-STACK fail please
        notify:
          on_failure:
            - notifier: smtp
              kwargs: {to: oncall@example.com, from_email: supervisor@example.com}
"""


@dataclass
class Stack:
    airflow: AirflowStack
    smtp: SmtpReceiver
    hook: WebhookReceiver


@pytest.fixture(scope="module")
def stack(fake: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("notify")
    specs = base / "specs"
    specs.mkdir()
    (specs / f"{DAG_ID}.yaml").write_text(textwrap.dedent(SPEC))
    loader = f'"""airflow dags"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), {str(specs)!r})\n'
    with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        mail = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5}}  # fmt: skip
        webhook = {"conn_type": "http", "host": hook.url, "password": WEBHOOK_TOKEN, "extra": {"endpoint": "/runs"}}
        env = {"AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(mail), "AIRFLOW_CONN_NOTIFY_STACK_HOOK": json.dumps(webhook)}
        with provider_stack(
            "notify", base, {"notify_stack_loader.py": loader}, databases=DATABASES, fake=fake,
            analytics_url=analytics_url, dag_ids=(DAG_ID,), project_dir=ROOT, env=env,
        ) as running:  # fmt: skip
            yield Stack(running, smtp, hook)


def _eventually(what: str, found: Callable[[], bool], stack: AirflowStack, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not found():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:.0f}s\n" + "".join(stack.output[-40:]))
        time.sleep(0.5)


def test_a_failed_run_mails_from_the_task_and_posts_from_the_dag_processor(
    stack: Stack, fake: FakeProviderServer
) -> None:
    fake.add_rules([Rule(match="NOTIFY-STACK fail please", fault="bad_request", message="bad key {api_key} refused")])
    run_id = stack.airflow.trigger(DAG_ID)
    assert stack.airflow.wait(DAG_ID, run_id, timeout_s=120) == "failed", "".join(stack.airflow.output[-40:])
    assert stack.airflow.task_instances(DAG_ID, run_id)["ask"]["state"] == "failed"

    # the task's own notifier, in the task's process after its last try
    _eventually("no mail arrived", lambda: bool(stack.smtp.messages), stack.airflow)
    assert [m.recipients for m in stack.smtp.messages] == [["oncall@example.com"]]
    mail = stack.smtp.messages[0]
    assert mail.subject == f"Supervisor: {DAG_ID}.ask failed"
    assert f"Run: {run_id}" in mail.body() and "Task: ask, try 1" in mail.body()
    assert "HTTP 400" in mail.body() and "bad key *** refused" in mail.body()
    assert CANARY_KEY not in mail.body()

    # the run's notifier, in the DAG processor (Airflow's DAG on_failure_callback)
    _eventually("no run-failure post arrived", lambda: bool(stack.hook.posts), stack.airflow)
    assert [post.path for post in stack.hook.posts] == ["/runs"]
    posted = stack.hook.posts[0]
    assert posted.headers["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert posted.body["event"] == "run_failed" and posted.body["title"] == f"Supervisor: {DAG_ID} run failed"
    assert posted.body["dag_id"] == DAG_ID and posted.body["run_id"] == run_id and posted.body["task_id"] == "ask"
    assert posted.body["text"].startswith(f"Run: {run_id}\nTask: ask, try 1\nLog: {stack.airflow.base_url}/dags/")
    assert posted.body["text"].endswith("\nReason: task_failure\n")  # the task that failed the run, and why
    assert CANARY_KEY not in posted.raw and WEBHOOK_TOKEN not in posted.raw
