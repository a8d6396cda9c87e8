"""dag.test() runs the batch operators, sync and deferrable, through the real SDKs against the fake server:
per-item results, the batch price, one analytics row per item, re-attaching on retry, budgets and cancelling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.types import Usage
from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import CANARY_KEY, use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

pytestmark = pytest.mark.slow

CREATE_PATHS = {"anthropic": "/v1/messages/batches", "openai": "/v1/batches"}

DAG_SOURCE = """
from airflow.sdk import DAG
from supervisor_lib.operators.batch import AnthropicBatchOperator, OpenAIBatchOperator

SCHEMA = {{"type": "object", "properties": {{"score": {{"type": "integer"}}}}, "required": ["score"]}}

with DAG("{dag_id}", schedule=None, tags=["test"], default_args={{"owner": "tests", "retries": 0}}):
    AnthropicBatchOperator(task_id="claude", model="claude-haiku-4-5", system="be brief", poll_interval_s=0.05,
                           prompts=["summarise {{{{ params.topic }}}}", "poison pill", "hello"],
                           deferrable={deferrable})
    OpenAIBatchOperator(task_id="gpt", model="gpt-4.1-mini", output_schema=SCHEMA, poll_interval_s=0.05,
                        messages_list=[[{{"role": "user", "content": f"grade {{x}}"}}] for x in "AB"],
                        budget_usd=1.0, deferrable={deferrable})
"""

#: an operator that dies after collecting: the retry must neither resubmit, nor record, nor count the cost twice
CRASH = """
class CrashAfterCollecting(AnthropicBatchOperator):
    def collect(self, context, *args, **kwargs):
        result = super().collect(context, *args, **kwargs)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after collecting")
        return result
"""

RETRY_SOURCE = """
from datetime import timedelta

from airflow.sdk import DAG
from supervisor_lib.operators.batch import AnthropicBatchOperator, OpenAIBatchOperator

{crash}

with DAG("{dag_id}", schedule=None, default_args={{"owner": "tests", "retries": 4, "retry_delay": timedelta(0)}}):
    CrashAfterCollecting(task_id="claude", model="claude-haiku-4-5", prompts=["a", "b"], poll_interval_s=0.05,
                         deferrable={deferrable})
    # the batch outlives the first tries' deadline: each retry re-attaches until it ends
    OpenAIBatchOperator(task_id="gpt", model="gpt-4.1-mini", prompts=["c", "d"], poll_interval_s=0.05,
                        timeout_s=0.3, deferrable={deferrable})
"""

FAILING_SOURCE = """
from airflow.sdk import DAG
from supervisor_lib.operators.batch import AnthropicBatchOperator, OpenAIBatchOperator

with DAG("{dag_id}", schedule=None, default_args={{"owner": "tests", "retries": 0}}):
    AnthropicBatchOperator(task_id="strict", model="claude-haiku-4-5", prompts=["fine", "poison pill"],
                           poll_interval_s=0.05, fail_on_item_error=True)
    OpenAIBatchOperator(task_id="over_budget", model="gpt-4.1-mini", prompts=["x"] * 50, max_tokens=4000,
                        budget_usd=0.01, poll_interval_s=0.05)
"""


@pytest.fixture
def server(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.batch_delay = 0.2
    fake_provider.add_rule(Rule(match="poison", fault="overloaded"))
    fake_provider.add_rule(Rule(provider="anthropic", match="summarise testing", text="a summary"))
    fake_provider.add_rule(Rule(provider="openai", match="grade A", json={"score": 3}))
    fake_provider.add_rule(Rule(provider="openai", match="grade B", json={"score": "high"}))
    return fake_provider


def creates(server: FakeProviderServer, provider: str) -> int:
    return sum(1 for call in server.calls if call.method == "POST" and call.path == CREATE_PATHS[provider])


def rows_of(run: Any) -> list[dict[str, Any]]:
    from supervisor_lib.store.ledger import ledger_for

    return ledger_for().store.attempts(dag_id=run.dag_id, run_id=run.run_id)


def batch_price(model: str, usage: dict[str, int]) -> float:
    return load_prices().cost_usd(model, Usage(**usage)) * 0.5  # type: ignore[operator]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_batch_operators(
    airflow_db: object, server: FakeProviderServer, dags_folder: Path, deferrable: bool, capfd: pytest.CaptureFixture
) -> None:
    dag_id = f"batch_ops_{'deferred' if deferrable else 'sync'}"
    source = DAG_SOURCE.format(dag_id=dag_id, deferrable=deferrable)
    run = run_dag_file(dags_folder, f"{dag_id}.py", source, dag_id, run_conf={"topic": "testing"})

    assert task_states(run) == {"claude": "success", "gpt": "success"}
    claude, gpt = xcom(run, "claude"), xcom(run, "gpt")
    assert [(i["custom_id"], i["status"]) for i in claude["items"]] == [
        ("item-0", "succeeded"),
        ("item-1", "errored"),
        ("item-2", "succeeded"),
    ]
    assert claude["items"][0]["text"] == "a summary" and claude["items"][1]["error"]["type"] == "overloaded_error"
    assert (claude["succeeded"], claude["failed"], claude["provider"]) == (2, 1, "anthropic")
    assert gpt["items"][0]["output"] == {"score": 3} and gpt["items"][1]["error"]["type"] == "invalid_output"
    for result in (claude, gpt):
        for item in result["items"]:
            expected = batch_price(result["model"], item["usage"]) if item["usage"]["output_tokens"] else 0.0
            assert item["cost_usd"] == pytest.approx(expected)
        assert result["cost_usd"] == pytest.approx(sum(i["cost_usd"] for i in result["items"])) and result["cost_usd"]
    assert (creates(server, "anthropic"), creates(server, "openai")) == (1, 1)

    rows = rows_of(run)
    assert sorted((r["task_id"], r["status"], r["task_type"], r["deferred"]) for r in rows) == sorted(
        [("claude", s, "batch", deferrable) for s in ("success", "error", "success")]
        + [("gpt", s, "batch", deferrable) for s in ("success", "error")]
    )
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(claude["cost_usd"] + gpt["cost_usd"])
    everything = capfd.readouterr().out + capfd.readouterr().err + json.dumps([claude, gpt, rows], default=str)
    assert CANARY_KEY not in everything


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_a_retry_reattaches_instead_of_paying_twice(
    airflow_db: object, server: FakeProviderServer, dags_folder: Path, deferrable: bool
) -> None:
    server.batch_delay = 1.0
    dag_id = f"batch_retry_{'deferred' if deferrable else 'sync'}"
    run = run_dag_file(
        dags_folder, f"{dag_id}.py", RETRY_SOURCE.format(dag_id=dag_id, deferrable=deferrable, crash=CRASH), dag_id
    )

    assert task_states(run) == {"claude": "success", "gpt": "success"}
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["claude"] == 2 and tries["gpt"] >= 2
    assert (creates(server, "anthropic"), creates(server, "openai")) == (1, 1)
    assert xcom(run, "claude")["succeeded"] == 2 and xcom(run, "gpt")["succeeded"] == 2
    rows = rows_of(run)
    assert sorted((r["task_id"], r["try_number"]) for r in rows) == [("claude", 1)] * 2 + [("gpt", 1)] * 2


def test_item_failures_and_budget(airflow_db: object, server: FakeProviderServer, dags_folder: Path) -> None:
    dag_id = "batch_failing"
    run = run_dag_file(dags_folder, f"{dag_id}.py", FAILING_SOURCE.format(dag_id=dag_id), dag_id)

    assert task_states(run) == {"strict": "failed", "over_budget": "failed"}
    strict = xcom(run, "strict")  # pushed before failing, so all_done downstreams can read it
    assert (strict["succeeded"], strict["failed"]) == (1, 1)
    assert [r["task_id"] for r in rows_of(run)] == ["strict", "strict"]
    assert creates(server, "openai") == 0  # the worst case did not fit the budget: nothing was sent


def test_on_kill_cancels_the_submitted_batch(airflow_db: object, server: FakeProviderServer) -> None:
    from supervisor_lib.operators.batch import OpenAIBatchOperator, SubmittedBatch
    from supervisor_lib.providers.batches import build_requests
    from supervisor_lib.store.ledger import ledger_for

    server.batch_delay = 30
    operator = OpenAIBatchOperator(task_id="killed", model="gpt-4.1-mini", prompts=["x"])
    requests = build_requests(model="gpt-4.1-mini", default_model=None, prompts=["x"])
    status = operator.adapter().submit(requests)
    store = ledger_for().store
    store.batch_put(provider="openai", batch_id=status.batch_id, dag_id="kill", run_id="r", task_id="killed",
                    map_index=-1, try_number=1, model="gpt-4.1-mini", item_count=1, fingerprint="f")  # fmt: skip
    operator._batch = SubmittedBatch(status.batch_id, 1)

    operator.on_kill()

    assert operator.adapter().poll(status.batch_id).state == "cancelled"
    assert store.batch_get("kill", "r", "killed")["state"] == "canceled"  # type: ignore[index]
    operator.on_kill()  # the provider refuses to cancel a finished batch: logged, never raised


BUDGET_SOURCE = """
from datetime import timedelta

from airflow.sdk import DAG
from supervisor_lib.operators.batch import AnthropicBatchOperator

{crash}

COMMON = dict(model="claude-haiku-4-5", poll_interval_s=0.05, deferrable={deferrable}, budget={{"per_run_usd": 0.008}})
with DAG("{dag_id}", schedule=None, default_args={{"owner": "tests", "retries": 0, "retry_delay": timedelta(0)}}):
    first = CrashAfterCollecting(task_id="first", prompts=["a", "b"], retries=1, **COMMON)
    second = AnthropicBatchOperator(task_id="second", prompts=["c", "d"], **COMMON)
    third = AnthropicBatchOperator(task_id="third", prompts=["e", "f", "g", "h"], **COMMON)
    first >> second >> third
"""


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_a_batch_holds_its_worst_case_against_the_budget_until_its_results_are_in(
    airflow_db: object,
    server: FakeProviderServer,
    dags_folder: Path,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from supervisor_lib.store.ledger import ledger_for
    from supervisor_lib.store.routing_state import RoutingState

    dag_id = f"batch_budget_{'deferred' if deferrable else 'sync'}"
    source = BUDGET_SOURCE.format(dag_id=dag_id, deferrable=deferrable, crash=CRASH)
    run = run_dag_file(dags_folder, f"{dag_id}.py", source, dag_id)

    # Each two-item batch may cost up to ~$0.0051 at the batch price, against a run budget of $0.008: the second
    # fits only because the first was settled at what it cost (cents of a cent), not at its worst case; the
    # four-item third (~$0.0102) cannot fit at all, so it is never submitted.
    assert task_states(run) == {"first": "success", "second": "success", "third": "failed"}
    assert creates(server, "anthropic") == 2
    output = capfd.readouterr()
    [refused] = [line for line in (output.out + output.err).splitlines() if "BudgetExceededError: " in line]
    assert f"task 'third' (batch of 4): the per-run budget of DAG '{dag_id}' ($0.008), run " in refused
    assert "would be exceeded" in refused and "the call was not sent" in refused
    store = ledger_for().store
    recorded = sum(row["cost_usd"] for row in rows_of(run))
    assert 0 < recorded < 0.001
    # the retried first task re-attached and collected again, but its cost counts once
    assert RoutingState(store).spent(f"run:{dag_id}:run", run.run_id) == pytest.approx(recorded)
    held = store.run(lambda cur: cur.execute("SELECT COUNT(*) FROM budget_reservations WHERE run_id = ?",
                                             (run.run_id,)).fetchone()[0])  # fmt: skip
    assert held == 0
