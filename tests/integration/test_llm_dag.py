"""dag.test() runs the provider operators, sync and deferrable, through the real SDKs against the fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import CANARY_KEY, use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

pytestmark = pytest.mark.slow

DAG_SOURCE = """
from airflow.sdk import DAG
from supervisor_lib import AnthropicOperator, OpenAIOperator

with DAG("{dag_id}", schedule=None, tags=["test"], default_args={{"owner": "tests", "retries": 0}}):
    claude = AnthropicOperator(task_id="claude", model="claude-haiku-4-5", prompt="Q1 {{{{ params.topic }}}}",
                               system="be brief", deferrable={deferrable})
    gpt = OpenAIOperator(task_id="gpt", model="gpt-4.1-mini", deferrable={deferrable},
                         prompt="Q2 review: {{{{ ti.xcom_pull(task_ids='claude')['text'] }}}}",
                         output_schema={{"type": "object", "properties": {{"ok": {{"type": "boolean"}}}},
                                         "required": ["ok"]}})
    claude >> gpt
"""


@pytest.fixture
def server(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.strict = True
    fake_provider.add_rule(Rule(provider="anthropic", match="Q1", text="claude says hi"))
    fake_provider.add_rule(Rule(provider="openai", match="Q2 review: claude says hi", json={"ok": True}))
    return fake_provider


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_both_operators_run(
    airflow_db: object, server: FakeProviderServer, dags_folder: Path, deferrable: bool, capfd: pytest.CaptureFixture
) -> None:
    from supervisor_lib.store.ledger import ledger_for

    dag_id = f"llm_ops_{'deferred' if deferrable else 'sync'}"
    run = run_dag_file(
        dags_folder,
        f"{dag_id}.py",
        DAG_SOURCE.format(dag_id=dag_id, deferrable=deferrable),
        dag_id,
        run_conf={"topic": "testing"},
    )
    assert task_states(run) == {"claude": "success", "gpt": "success"}
    claude, gpt = xcom(run, "claude"), xcom(run, "gpt")
    assert claude["text"] == "claude says hi" and claude["provider"] == "anthropic" and claude["attempts"] == 1
    assert claude["usage"]["input_tokens"] > 0 and claude["cost_usd"] > 0 and claude["request_id"]
    assert gpt["output"] == {"ok": True} and gpt["model"] == "gpt-4.1-mini"
    assert server.count(provider="anthropic") == 1 and server.count(provider="openai") == 1
    rows = ledger_for().store.attempts(dag_id=dag_id, run_id=run.run_id)
    assert sorted((r["task_id"], r["status"], bool(r["deferred"])) for r in rows) == [
        ("claude", "success", deferrable),
        ("gpt", "success", deferrable),
    ]
    everything = capfd.readouterr().out + capfd.readouterr().err + json.dumps([claude, gpt, rows], default=str)
    assert CANARY_KEY not in everything
