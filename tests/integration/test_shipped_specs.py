"""Every DAG we ship and every example the README shows runs green offline on a real Airflow.

The project's own ``dags/`` folder (the demo DAG and every spec in ``include/specs``) is served by a real scheduler,
DAG processor, triggerer and API server, its provider connections pointing at the offline demo provider with the
script ``make run`` uses (``include/demo/fake_provider.yaml``). The provider is strict here: a request the script
does not answer fails, so a green run proves the offline demo covers it. Runs are triggered through the REST API
with the confs the README and the specs document; human approvals are answered through the REST API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.reliability._world import dump_tables
from supervisor_lib.store import Store
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.connections import CANARY_KEY
from tests.support.databases import fresh_database_url
from tests.support.stack import store_connection

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SHIPPED = ("supervisor_demo", "payments_bugfix", "release_notes", "triage", "nightly_health", "supervisor_task")


def readme_conf(dag_id: str) -> dict[str, Any]:
    """The ``conf`` of the README's ``curl`` example that triggers ``dag_id``."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"/dags/{dag_id}/dagRuns")
    body = re.search(r"-d '(\{.*?\})'", readme[start:], re.S)
    assert body is not None, f"the README shows no REST trigger of {dag_id}"
    return dict(json.loads(body.group(1))["conf"])


def spec_conf(dag_id: str) -> dict[str, Any]:
    """The example ``conf`` a spec's header comment documents (``#   conf: {...}``)."""
    text = (ROOT / "include" / "specs" / f"{dag_id}.yaml").read_text()
    found = re.search(r"^#\s+conf: (\{.*\})$", text, re.M)
    assert found is not None, f"include/specs/{dag_id}.yaml documents no example conf"
    return dict(json.loads(found.group(1)))


@pytest.fixture(scope="module")
def stack(demo: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("shipped")
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_database_url(DATABASES, "supervisor_it_shipped", base),
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": store_connection(analytics_url),
        "ANTHROPIC_API_KEY": CANARY_KEY,
        "ANTHROPIC_BASE_URL": demo.anthropic_base_url,
        "OPENAI_API_KEY": CANARY_KEY,
        "OPENAI_BASE_URL": demo.openai_base_url,
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # nightly_health runs when triggered, not at 2 AM
    }
    with AirflowStack(ROOT / "dags", home=base / "home", env=env, project_dir=ROOT) as running:
        for dag_id in SHIPPED:
            running.wait_for_dag(dag_id)
        yield running


def _states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    return {key: str(ti["state"]) for key, ti in stack.task_instances(dag_id, run_id).items()}


def test_every_shipped_dag_runs_green_offline(
    stack: AirflowStack, demo: FakeProviderServer, analytics_url: str
) -> None:
    runs = {
        "supervisor_demo": stack.trigger("supervisor_demo"),
        "payments_bugfix": stack.trigger("payments_bugfix"),
        "release_notes": stack.trigger("release_notes", conf=readme_conf("release_notes")),
        "triage": stack.trigger("triage", conf=spec_conf("triage")),
        "nightly_health": stack.trigger("nightly_health", run_id="shipped_nightly"),
        "supervisor_task": stack.trigger("supervisor_task", conf=readme_conf("supervisor_task")),
    }
    stack.answer("release_notes", runs["release_notes"], "publish", "Publish", timeout_s=600)
    stack.answer("nightly_health", runs["nightly_health"], "approve", "Approve", timeout_s=600)
    stack.answer("supervisor_task", runs["supervisor_task"], "approve", "Approve", timeout_s=600)
    outcome = {dag_id: stack.wait(dag_id, run_id, timeout_s=600) for dag_id, run_id in runs.items()}
    detail = {dag_id: _states(stack, dag_id, run_id) for dag_id, run_id in runs.items()}
    assert outcome == dict.fromkeys(SHIPPED, "success"), json.dumps(detail, indent=1) + "".join(stack.output[-30:])
    generations = [c for c in demo.calls if c.path in ("/v1/messages", "/v1/chat/completions", "/v1/responses")]
    assert not [c for c in generations if c.rule_index is None], "every model call was answered by the demo script"

    # mapped tasks ran in full, over a literal list and over an upstream result
    notes = detail["release_notes"]
    assert [notes[f"draft_section[{i}]"] for i in range(3)] == ["success"] * 3
    assert [notes[f"translations[{i}]"] for i in range(2)] == ["success"] * 2
    assert notes["migration_guide"] == "skipped"  # `when`: the classification says nothing breaks
    nightly = detail["nightly_health"]
    assert [nightly[f"per_module_docs[{i}]"] for i in range(2)] == ["success"] * 2
    sections = [stack.xcom("release_notes", runs["release_notes"], "draft_section", i)["text"] for i in range(3)]
    assert [s.splitlines()[0] for s in sections] == ["## Features", "## Fixes", "## Documentation"]

    # triage: each write task builds on the one before it, so the last diff holds only its own change
    tidy = stack.xcom("triage", runs["triage"], "tidy")
    tests = stack.xcom("triage", runs["triage"], "tests")
    assert tidy["status"] == tests["status"] == "passed"
    assert tidy["base_commit"] == stack.xcom("triage", runs["triage"], "implement")["commit"]
    assert tests["base_commit"] == tidy["commit"]
    assert "BASIS_POINTS_PER_UNIT" not in tests["diff_preview"]
    assert "test_a_hundred_dollar_charge" in tests["diff_preview"]

    # the README's REST-first task: the bundled repo fixed, tested, reviewed, approved, readable from one XCom
    result = stack.xcom("supervisor_task", runs["supervisor_task"], "result")
    assert result["status"] == "passed" and result["review"]["decision"] == "approve"
    assert "+    percent_part = (amount_cents * FEE_BASIS_POINTS + 5_000) // 10_000" in result["patch"]
    assert stack.xcom("supervisor_task", runs["supervisor_task"], "approve")["approved"] is True

    # one analytics row per provider request, none of them an error
    rows = Store.from_url(analytics_url).attempts()
    assert len(rows) == len(generations) and {r["status"] for r in rows} == {"success"}
    assert {r["dag_id"] for r in rows} == set(SHIPPED)


def test_the_api_key_appears_nowhere_supervisor_writes_or_shows(stack: AirflowStack, analytics_url: str) -> None:
    """The connections' key (a canary) in none of: every file under the Airflow home (task, trigger and component
    logs, coding artifacts: conversations, validation logs, patches; the spool), the REST API's task instances with
    their rendered templates and every XCom value, every table of the analytics store, and every answer of the
    plugin's API (transcripts included)."""
    exposed: list[str] = []
    needle = CANARY_KEY.encode()
    leaking = [
        str(p.relative_to(stack.home)) for p in stack.home.rglob("*") if p.is_file() and needle in p.read_bytes()
    ]
    assert leaking == [], "files under the Airflow home hold the key"
    runs = stack.api("GET", "/dags/~/dagRuns?limit=100")["dag_runs"]
    assert {run["dag_id"] for run in runs} >= set(SHIPPED), "run after test_every_shipped_dag_runs_green_offline"
    for run in runs:
        dag_id, run_id = run["dag_id"], run["dag_run_id"]
        exposed.append(json.dumps(run))
        base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        for ti in stack.api("GET", f"{base}?limit=200")["task_instances"]:
            exposed.append(json.dumps(ti))  # rendered_fields included
            entries = stack.api("GET", f"{base}/{ti['task_id']}/xcomEntries?map_index={ti['map_index']}")
            for entry in entries["xcom_entries"]:
                exposed.append(json.dumps(stack.api("GET", f"{base}/{ti['task_id']}/xcomEntries/{entry['key']}"
                                                           f"?map_index={ti['map_index']}")))  # fmt: skip
            plugin = f"/supervisor/api/dags/{dag_id}/runs/{run_id}/tasks/{ti['task_id']}/{ti['map_index']}"
            exposed.append(json.dumps(stack.request("GET", plugin)))
    views = ("overview", "series?metric=calls&group_by=dag", "top?by=dag", "errors", "providers", "budgets")
    for route in (*views, "decisions", "facets", "anomalies", "forecast", *(f"dags/{d}" for d in SHIPPED)):
        exposed.append(json.dumps(stack.request("GET", f"/supervisor/api/{route}")))
    exposed.append(dump_tables(Store.from_url(analytics_url)))
    text = "\n".join(exposed)
    assert "rendered_fields" in text and '"transcript' in text and len(text) > 100_000
    assert CANARY_KEY not in text
