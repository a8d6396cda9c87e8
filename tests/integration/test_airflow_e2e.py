"""The provider operators on a real Airflow (scheduler, triggerer, workers) driven through the REST API.

Covers what dag.test() cannot: tasks that start in the triggerer (``start_from_trigger``), a cleared task that
re-uses the response already paid for, retries and fatal errors as Airflow records them, and an API key that
appears in no log file, XCom, rendered template or analytics row.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor_lib.store import Store
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.connections import CANARY_KEY
from tests.support.stack import provider_stack

pytestmark = pytest.mark.slow

DAGS = {
    "e2e_calls.py": """
        from airflow.sdk import DAG
        from supervisor_lib import AnthropicOperator, OpenAIOperator

        with DAG("e2e_calls", schedule=None, tags=["e2e"], default_args={"owner": "tests", "retries": 0}):
            # default_pool: a task in a bounded pool (its provider's, by default) starts on a worker instead
            first = AnthropicOperator(task_id="first", model="claude-haiku-4-5", prompt="E2E-FIRST {{ params.n }}",
                                      pool="default_pool")
            second = OpenAIOperator(task_id="second", model="gpt-4.1-mini",
                                    prompt="E2E-SECOND {{ ti.xcom_pull(task_ids='first')['text'] }}")
            sync = AnthropicOperator(task_id="sync", model="claude-haiku-4-5", prompt="E2E-SYNC", deferrable=False)
            first >> second >> sync
    """,
    "e2e_faults.py": """
        from datetime import timedelta
        from airflow.sdk import DAG
        from supervisor_lib import AnthropicOperator
        from supervisor_lib.providers.policy import AttemptPolicy

        fast = AttemptPolicy(base_delay_s=0.1, max_delay_s=0.2)
        # default_pool: the tasks start in the triggerer. In a provider pool they would start on a worker and defer,
        # and Airflow 3.3.2 can then retry a task that failed on resuming when the deferring worker is slow to
        # report (an executor event for the same try arrives while the resumed run is on): docs/routing.md
        with DAG("e2e_faults", schedule=None, tags=["e2e"],
                 default_args={"owner": "tests", "retries": 2, "retry_delay": timedelta(seconds=1),
                               "pool": "default_pool"}):
            AnthropicOperator(task_id="flaky", model="claude-haiku-4-5", prompt="E2E-FLAKY", attempt_policy=fast)
            AnthropicOperator(task_id="unauthorised", model="claude-haiku-4-5", prompt="E2E-AUTH", attempt_policy=fast)
            AnthropicOperator(task_id="exhausted", model="claude-haiku-4-5", prompt="E2E-EXHAUST", attempt_policy=fast)
            AnthropicOperator(task_id="limited", model="claude-haiku-4-5", prompt="E2E-LIMITED", attempt_policy=fast)
    """,
}


SPEC = """
    schedule: null
    tags: [e2e]
    owner: tests
    defaults: {provider: anthropic, model: claude-haiku-4-5, retries: 0}
    params:
      version: {type: string, pattern: "^[0-9]+\\\\.[0-9]+$"}
      depth: {type: integer, minimum: 1, default: 2}
    tasks:
      - id: notes
        type: llm
        prompt: E2E-SPEC notes for {{ params.version }} at depth {{ params.depth }}
"""


@pytest.fixture(scope="module")
def stack(
    fake: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    base = tmp_path_factory.mktemp("e2e")
    specs = base / "specs"
    specs.mkdir()
    (specs / "e2e_spec.yaml").write_text(textwrap.dedent(SPEC))
    (specs / "e2e_broken.yaml").write_text("tasks:\n  - id: a\n    type: llm\n    provider: antropic\n    prompt: x\n")
    dags = dict(DAGS)
    for name, call in (("e2e_specs.py", "load_dags"), ("e2e_spec_errors.py", "raise_spec_errors")):
        source = f"from supervisor_lib import {call}\n{call}(globals(), specs_dir={str(specs)!r})\n"
        dags[name] = '"""airflow dags from specs"""\n' + source
    with provider_stack(
        "e2e", base, dags, databases=DATABASES, fake=fake, analytics_url=analytics_url,
        dag_ids=("e2e_calls", "e2e_faults", "e2e_spec"), project_dir=ROOT,
    ) as running:  # fmt: skip
        yield running


def _started(row: dict[str, Any]) -> Any:
    from datetime import datetime

    value = row["started_at"]
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _rows(analytics_url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return Store.from_url(analytics_url).attempts(dag_id=dag_id, run_id=run_id)


def test_deferred_and_sync_calls_then_a_clear_costs_nothing(
    stack: AirflowStack, fake: FakeProviderServer, analytics_url: str
) -> None:
    fake.add_rules(
        [
            Rule(match="E2E-FIRST 7", text="first answer"),
            Rule(match="E2E-SECOND first answer", text="second answer"),
            Rule(match="E2E-SYNC", text="sync answer"),
        ]
    )
    run_id = stack.trigger("e2e_calls", conf={"n": 7})
    assert stack.wait("e2e_calls", run_id) == "success", "".join(stack.output[-40:])
    assert stack.xcom("e2e_calls", run_id, "second")["text"] == "second answer"
    tis = stack.task_instances("e2e_calls", run_id)
    assert tis["first"]["hostname"] in ("", None), "a start_from_trigger task never runs on a worker"
    rows = {r["task_id"]: r for r in _rows(analytics_url, "e2e_calls", run_id)}
    assert {t: (r["status"], bool(r["deferred"])) for t, r in rows.items()} == {
        "first": ("success", True),
        "second": ("success", True),
        "sync": ("success", False),
    }
    calls_before = fake.count()

    stack.clear("e2e_calls", run_id, ["first", "second", "sync"])
    assert stack.wait("e2e_calls", run_id) == "success"
    assert fake.count() == calls_before, "a cleared task must re-use the responses already paid for"
    statuses = sorted(r["status"] for r in _rows(analytics_url, "e2e_calls", run_id))
    assert statuses.count("cached") == 3 and statuses.count("success") == 3


def test_retryable_fault_recovers_and_fatal_fails_once(
    stack: AirflowStack, fake: FakeProviderServer, analytics_url: str
) -> None:
    fake.add_rules(
        [
            Rule(match="E2E-FLAKY", fault="server_error", times=1),
            Rule(match="E2E-FLAKY", text="recovered"),
            Rule(match="E2E-AUTH", fault="auth"),
            Rule(match="E2E-EXHAUST", fault="overloaded", times=3),
            Rule(match="E2E-EXHAUST", text="second try"),
            Rule(match="E2E-LIMITED", fault="rate_limit", retry_after=2, times=1),
            Rule(match="E2E-LIMITED", text="ok"),
        ]
    )
    run_id = stack.trigger("e2e_faults")
    assert stack.wait("e2e_faults", run_id) == "failed"
    tis = stack.task_instances("e2e_faults", run_id)
    assert tis["flaky"]["state"] == "success" and tis["flaky"]["try_number"] == 1
    assert stack.xcom("e2e_faults", run_id, "flaky")["attempts"] == 2
    assert tis["unauthorised"]["state"] == "failed" and tis["unauthorised"]["try_number"] == 1, "no retry for 401"
    assert fake.count(provider="anthropic") >= 3
    rows = _rows(analytics_url, "e2e_faults", run_id)
    flaky = sorted((r["attempt"], r["status"]) for r in rows if r["task_id"] == "flaky")
    assert flaky == [(1, "error"), (2, "success")]
    assert [r["error_type"] for r in rows if r["task_id"] == "unauthorised"] == ["ProviderConfigError"]
    assert "API key was rejected" in stack.logs_text()
    # three 529s use up the try's attempts; Airflow's retry (try 2) then succeeds: one row per attempt
    assert tis["exhausted"]["state"] == "success" and tis["exhausted"]["try_number"] == 2
    exhausted = sorted((r["try_number"], r["attempt"], r["status"]) for r in rows if r["task_id"] == "exhausted")
    assert exhausted == [(1, 1, "error"), (1, 2, "error"), (1, 3, "error"), (2, 1, "success")]
    # a 429's retry-after (2 s) is honoured before the next attempt
    limited = sorted((r for r in rows if r["task_id"] == "limited"), key=lambda r: r["attempt"])
    assert [r["status"] for r in limited] == ["error", "success"]
    gap = (_started(limited[1]) - _started(limited[0])).total_seconds() - limited[0]["duration_s"]
    assert gap >= 1.9, f"waited only {gap:.2f}s after a 429 with retry-after 2"


def test_rest_trigger_validates_conf_against_spec_params(stack: AirflowStack, fake: FakeProviderServer) -> None:
    import urllib.error

    fake.add_rule(Rule(match="E2E-SPEC notes for 2.4 at depth 3", text="notes"))
    with pytest.raises(urllib.error.HTTPError) as bad:
        stack.trigger("e2e_spec", conf={"version": "two"})
    assert bad.value.code == 400 and "Invalid input for param version" in bad.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as missing:
        stack.trigger("e2e_spec", conf={})
    assert missing.value.code == 400
    assert stack.api("GET", "/dags/e2e_spec/dagRuns")["total_entries"] == 0, "nothing ran"
    run_id = stack.trigger("e2e_spec", conf={"version": "2.4", "depth": 3})
    assert stack.wait("e2e_spec", run_id) == "success"
    assert stack.xcom("e2e_spec", run_id, "notes")["text"] == "notes"


def test_a_broken_spec_is_an_import_error_and_hides_nothing(stack: AirflowStack) -> None:
    errors = stack.api("GET", "/importErrors")["import_errors"]
    assert [e["filename"] for e in errors] == ["e2e_spec_errors.py"]
    assert (
        "e2e_broken.yaml:4: [tasks[0].provider] unknown provider 'antropic' (did you mean 'anthropic'?)"
        in (errors[0]["stack_trace"])
    )
    dag = stack.api("GET", "/dags/e2e_spec")
    assert dag["is_stale"] is False and dag["has_import_errors"] is False


def test_the_api_key_appears_nowhere(stack: AirflowStack, analytics_url: str) -> None:
    runs = stack.api("GET", "/dags/~/dagRuns?limit=100")["dag_runs"]
    assert runs, "run the other tests first (module order)"
    exposed = [stack.logs_text()]
    for run in runs:
        dag_id, run_id = run["dag_id"], run["dag_run_id"]
        exposed.append(json.dumps(_rows(analytics_url, dag_id, run_id), default=str))
        for ti in stack.task_instances(dag_id, run_id).values():
            detail = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}")
            exposed.append(json.dumps(detail, default=str))
            entries = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries")
            exposed.append(json.dumps(entries, default=str))
    text = "\n".join(exposed)
    assert "rendered_fields" in text and len(text) > 1000
    assert CANARY_KEY not in text
