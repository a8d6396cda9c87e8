"""Routing end to end: real SDKs, ``dag.test()``, the fake provider with faults, a fresh analytics store per test.

The catalogue is cut down (``$SUPERVISOR_CATALOG``) to two economy models — ``claude-haiku-4-5`` (the pinned
primary) and ``gpt-4o-mini`` — with a 3-second cool-down, so the scenarios run in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from supervisor_lib.testing import AUTH, OVERLOADED, FakeProviderServer, Rule
from tests.support.connections import use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COOLDOWN_S = 3
KEEP = {"claude-haiku-4-5", "gpt-4o-mini", "gpt-4.1-mini"}


@pytest.fixture
def routing_env(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, airflow_db: Any
) -> dict[str, Any]:
    """The fake provider, a small catalogue and a fresh analytics store (its connection id is returned)."""
    use_fake_provider(monkeypatch, fake_provider)
    base = yaml.safe_load((ROOT / "include" / "catalog.yaml").read_text())
    override = {
        "models": {name: None for name in base["models"] if name not in KEEP},
        "routing": {"health": {"window_s": 120, "consecutive_failures": 2, "cooldown_s": COOLDOWN_S}},
    }
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(override))
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(tmp_path / "catalog.yaml"))
    conn_id = f"routing_e2e_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", _store_connection(airflow_db, conn_id, tmp_path))
    return {"server": fake_provider, "conn_id": conn_id}


def _store_connection(databases: Any, name: str, tmp_path: Path) -> str:
    if databases.dialect != "postgresql":
        return json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "analytics.db")})
    from tests.support.databases import PG_HOST, PG_PORT, PG_USER, fresh_database_url

    database = fresh_database_url(databases, name, tmp_path).rsplit("/", 1)[1]
    return json.dumps({"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER, "schema": database})


def _dag(dag_id: str, conn_id: str, tasks: str) -> str:
    return textwrap.dedent(f'''
        from airflow.sdk import DAG
        from supervisor_lib.operators.routed import RoutedOperator
        from supervisor_lib.providers.policy import AttemptPolicy

        FAST = AttemptPolicy(max_attempts=2, base_delay_s=0.01)
        COMMON = dict(analytics_conn_id={conn_id!r}, attempt_policy=FAST, max_tokens=200, deferrable=False)

        with DAG({dag_id!r}, schedule=None, tags=["test"], default_args={{"owner": "tests", "retries": 0}}):
        ''') + textwrap.indent(textwrap.dedent(tasks), "    ")  # fmt: skip


def _state(conn_id: str) -> Any:
    from supervisor_lib.store.db import get_store
    from supervisor_lib.store.routing_state import RoutingState

    return RoutingState(get_store(conn_id))


BREAKER_TASKS = """
t1 = RoutedOperator(task_id="t1", model="claude-haiku-4-5", prompt="Q1", **COMMON)
t2 = RoutedOperator(task_id="t2", model="claude-haiku-4-5", prompt="Q2", **COMMON)
t3 = RoutedOperator(task_id="t3", model="claude-haiku-4-5", prompt="Q3", **{**COMMON, "deferrable": True})
t1 >> t2 >> t3
"""


def test_failover_then_open_breaker_then_a_probe_closes_it(routing_env: dict[str, Any], dags_folder: Path) -> None:
    server, conn_id = routing_env["server"], routing_env["conn_id"]
    server.add_rule(Rule(provider="anthropic", fault=OVERLOADED))
    server.add_rule(Rule(provider="openai", text="secondary answers"))
    source = _dag("routing_breaker", conn_id, BREAKER_TASKS)

    first = run_dag_file(dags_folder, "routing_breaker.py", source, "routing_breaker")
    assert task_states(first) == {"t1": "success", "t2": "success", "t3": "success"}
    t1, t2, t3 = (xcom(first, task) for task in ("t1", "t2", "t3"))
    assert t1["provider"] == "openai" and t1["routed"]["failovers"][0]["model"] == "claude-haiku-4-5"
    assert t2["routed"]["failovers"] == [] and t3["provider"] == "openai"  # t3 routed in the trigger
    assert any("breaker anthropic: open until" in reason for reason in t2["routed"]["reasons"])
    assert server.count(provider="anthropic") == 2  # t1's two attempts; nothing while the breaker is open
    assert server.count(provider="openai") == 3

    time.sleep(COOLDOWN_S + 0.5)  # half-open: one probe may go through
    server.reset()
    server.add_rule(Rule(provider="anthropic", text="primary is back"))
    second = run_dag_file(dags_folder, "routing_breaker.py", source, "routing_breaker")
    assert [xcom(second, task)["provider"] for task in ("t1", "t2", "t3")] == ["anthropic"] * 3
    assert server.count(provider="anthropic") == 3 and server.count(provider="openai") == 0
    assert _state(conn_id).breakers()["anthropic"].reset_at is not None  # the probe closed it
    outcomes = [(d["task_id"], d["outcome"], d["provider"]) for d in _state(conn_id).decisions("routing_breaker")]
    assert outcomes.count(("t1", "success", "anthropic")) == 1 and len(outcomes) == 6


def test_a_rejected_key_fails_clearly_without_failover(routing_env: dict[str, Any], dags_folder: Path) -> None:
    server, conn_id = routing_env["server"], routing_env["conn_id"]
    server.add_rule(Rule(provider="anthropic", fault=AUTH))
    tasks = 'RoutedOperator(task_id="ask", model="claude-haiku-4-5", prompt="Q", **COMMON)\n'
    run = run_dag_file(dags_folder, "routing_auth.py", _dag("routing_auth", conn_id, tasks), "routing_auth")
    assert task_states(run) == {"ask": "failed"}
    assert server.count(provider="anthropic") == 1 and server.count(provider="openai") == 0
    [decision] = _state(conn_id).decisions("routing_auth")
    assert decision["outcome"] == "failed" and "HTTP 401" in decision["detail"]["tried"][0]["reason"]


def test_capabilities_hold_at_parse_time_and_at_run_time(
    routing_env: dict[str, Any], dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, conn_id = routing_env["server"], routing_env["conn_id"]
    server.add_rule(Rule(text="answer"))
    tasks = 'RoutedOperator(task_id="long", prompt="Q", capabilities=["long_context"], tier="economy", **COMMON)\n'
    run = run_dag_file(dags_folder, "routing_caps.py", _dag("routing_caps", conn_id, tasks), "routing_caps")
    long = xcom(run, "long")
    assert long["model"] != "gpt-4o-mini"  # the cheapest economy model, but it lacks long_context
    assert "openai/gpt-4o-mini: [capabilities] lacks long_context" in long["routed"]["reasons"]

    from airflow.dag_processing.dagbag import BundleDagBag

    impossible = 'RoutedOperator(task_id="see", prompt="Q", capabilities=["vision"], provider="anthropic", **COMMON)\n'
    folder = dags_folder / "routing_bad"
    folder.mkdir(exist_ok=True)
    (folder / "routing_bad.py").write_text(_dag("routing_bad", conn_id, impossible))
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=str(folder), bundle_name="dags-folder")
    assert "no model in" in str(bag.import_errors) and "needs vision" in str(bag.import_errors)

    # At run time the Variable may remove what parse time saw: then the task fails with NoRouteError.
    monkeypatch.setenv("AIRFLOW_VAR_SUPERVISOR_CATALOG", "models: {claude-haiku-4-5: null, gpt-4.1-mini: null}")
    run = run_dag_file(dags_folder, "routing_caps.py", _dag("routing_caps", conn_id, tasks), "routing_caps")
    assert task_states(run) == {"long": "failed"}
    assert _state(conn_id).decisions("routing_caps", run.run_id)[0]["outcome"] == "no_route"


PARALLEL_RUN = """
import json, sys
from airflow.dag_processing.dagbag import BundleDagBag
from tests.support.dagtest import task_states
path, dag_id = sys.argv[1], sys.argv[2]
folder = path.rsplit("/", 1)[0]
bag = BundleDagBag(dag_folder=path, bundle_path=folder, bundle_name="dags-folder")
run = bag.dags[dag_id].test()
print("STATES=" + json.dumps(task_states(run)))
"""


def test_two_runs_in_parallel_never_jointly_overshoot_a_daily_budget(
    routing_env: dict[str, Any], dags_folder: Path
) -> None:
    server, conn_id = routing_env["server"], routing_env["conn_id"]
    # the answer costs what the call could cost at most, and is slow enough for both runs to be in flight at once
    server.add_rule(
        Rule(provider="anthropic", text="ok", latency=3.0, usage={"input_tokens": 20, "output_tokens": 200})
    )
    worst = (20 * 1.0 + 200 * 5.0) / 1e6  # claude-haiku-4-5's prices: the router's estimate for this prompt
    limit = round(worst * 1.5, 6)
    tasks = f'RoutedOperator(task_id="spend", model="claude-haiku-4-5", provider="anthropic", prompt="Q", ' \
            f'budget={{"per_day_usd": {limit}}}, **COMMON)\n'  # fmt: skip
    path = dags_folder / "routing_budget.py"
    path.write_text(_dag("routing_budget", conn_id, tasks))
    _sync_dags_folder(dags_folder)  # dag.test() syncs the whole folder: two first syncs at once would race on inserts
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", PARALLEL_RUN, str(path), "routing_budget"]
    runs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=240)[0] for run in runs]
    assert all("STATES=" in out for out in outputs), "\n\n".join(out[-3000:] for out in outputs)
    states = sorted(json.loads(out.split("STATES=")[-1].splitlines()[0])["spend"] for out in outputs)

    assert states == ["failed", "success"], outputs
    refused = next(out for out in outputs if '"spend": "failed"' in out)
    assert "BudgetExceededError" in refused and "per-day budget of DAG 'routing_budget'" in refused
    print(next(line for line in refused.splitlines() if "would be exceeded" in line or "would exceed" in line))
    assert server.count(provider="anthropic") == 1  # the refused run sent nothing
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert 0 < _state(conn_id).spent("dag:routing_budget:day", day) <= limit
    recorded = sum(row["cost_usd"] or 0 for row in _store_rows(conn_id, "routing_budget"))
    assert 0 < recorded <= limit


def _sync_dags_folder(folder: Path) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=str(folder), bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)


def _store_rows(conn_id: str, dag_id: str) -> list[dict[str, Any]]:
    from supervisor_lib.store.db import get_store

    return get_store(conn_id).attempts(dag_id=dag_id)


# -- routed coding tasks: every call of the loop (and the review) is routed --------------------------------------
CALCULATOR = ROOT / "tests" / "fixtures" / "repos" / "calculator"
CODING_TASK = """
from supervisor_lib.operators.coding import CodingTaskOperator

CodingTaskOperator(
    task_id="fix", task_kind="bug_fix", repo={repo!r}, instructions="CASE-RF fix add.", provider={provider!r},
    route={route!r}, validate_command="python -m pytest -q", max_tokens=2000, analytics_conn_id={conn_id!r},
    reviewer_provider={reviewer!r}, model={model!r}, budget={budget!r},
)
"""


@pytest.fixture
def coding_env(routing_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """``routing_env`` with two code editors — ``claude-haiku-4-5`` (economy, first) and ``gpt-5-mini``
    (standard) — and the coding task's workspace, repo cache and artifacts under ``tmp_path``."""
    base = yaml.safe_load((ROOT / "include" / "catalog.yaml").read_text())
    keep = {"claude-haiku-4-5", "gpt-5-mini"}
    override = {
        "models": {name: None for name in base["models"] if name not in keep},
        "routing": {"health": {"window_s": 120, "consecutive_failures": 2, "cooldown_s": 60}},
    }
    (tmp_path / "coding_catalog.yaml").write_text(yaml.safe_dump(override))
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(tmp_path / "coding_catalog.yaml"))
    for name, folder in (("WORKSPACE_ROOT", "ws"), ("REPO_CACHE", "cache"), ("ARTIFACTS_ROOT", "artifacts")):
        monkeypatch.setenv(f"SUPERVISOR_{name}", str(tmp_path / folder))
    return routing_env


def _coding_dag(
    dag_id: str, conn_id: str, route: dict[str, Any] | None, reviewer: str | None = None, **pinned: Any
) -> str:
    """A DAG of one coding task: routed with ``route``, else pinned to ``provider``/``model`` (``pinned``)."""
    fields = {"provider": "auto", "model": None, "budget": None, **pinned}
    task = CODING_TASK.format(repo=str(CALCULATOR), route=route, conn_id=conn_id, reviewer=reviewer, **fields)
    return _dag(dag_id, conn_id, task)


def test_a_routed_coding_task_fails_over_and_its_review_is_routed(
    coding_env: dict[str, Any], dags_folder: Path
) -> None:
    import re

    from tests.support.coding import APPROVE, GOOD_FIX

    server, conn_id = coding_env["server"], coding_env["conn_id"]
    server.add_rule(Rule(provider="anthropic", fault=OVERLOADED))
    server.add_rule(Rule(provider="openai", match=re.compile(r"(?s)CASE-RF.*\+\s+return a \+ b"), json=APPROVE))
    server.add_rule(Rule(provider="openai", match="CASE-RF", text=GOOD_FIX))
    source = _coding_dag("routing_coding", conn_id, {"tier": "economy"}, reviewer="auto")

    run = run_dag_file(dags_folder, "routing_coding.py", source, "routing_coding")
    assert task_states(run) == {"fix": "success"}
    result = xcom(run, "fix")
    routed = result["routed"]
    assert (routed["provider"], routed["model"]) == ("openai", "gpt-5-mini")
    assert routed["failovers"][0]["model"] == "claude-haiku-4-5" and routed["failovers"][0]["outcome"] == "failed"
    assert routed["models"] == ["openai/gpt-5-mini"]
    # the author was planned on Anthropic, so the auto reviewer is routed among OpenAI's models
    assert result["review"]["decision"] == "approve" and result["review"]["reviewer"] == "openai gpt-5-mini"
    # the fix's first call tried the primary (its attempts), then the open breaker kept traffic away
    assert server.count(provider="anthropic") == 3
    assert server.count(provider="openai") == 2  # the fix and the review
    decisions = _state(conn_id).decisions("routing_coding", run.run_id)
    assert [(d["outcome"], d["provider"], d["failovers"]) for d in decisions] == [
        ("success", "openai", 1),  # the author's call, after failing over
        ("success", "openai", 0),  # the review
    ]


@pytest.mark.parametrize("routed", [True, False], ids=["routed", "named-provider"])
def test_a_coding_task_stops_before_the_call_that_would_cross_its_budget(
    coding_env: dict[str, Any], dags_folder: Path, routed: bool
) -> None:
    from tests.support.coding import WRONG_FIX

    server, conn_id = coding_env["server"], coding_env["conn_id"]
    # the first answer costs nearly its worst case (1,900 of 2,000 output tokens at $5/M) and fails the tests,
    # so the loop asks again: that second call cannot fit the run's budget with the first one's spend
    server.add_rule(Rule(match="CASE-RF", text=WRONG_FIX, usage={"input_tokens": 20, "output_tokens": 1900}))
    limit = 0.016
    budget = {"per_run_usd": limit}
    if routed:
        source = _coding_dag("routing_coding_budget", conn_id, {"tier": "economy", "provider": "anthropic",
                                                                 "budget": budget})  # fmt: skip
    else:  # not routed, but the DAG's budget still holds for each of its calls
        source = _coding_dag("routing_coding_budget", conn_id, None, provider="anthropic", model="claude-haiku-4-5",
                             budget=budget)  # fmt: skip
    run = run_dag_file(dags_folder, "routing_coding_budget.py", source, "routing_coding_budget")
    assert task_states(run) == {"fix": "failed"}
    assert server.count() == 1  # the second call was never sent
    recorded = sum(row["cost_usd"] or 0 for row in _store_rows(conn_id, "routing_coding_budget"))
    assert 0.0095 <= recorded <= limit
    assert _state(conn_id).spent("run:routing_coding_budget:run", run.run_id) == pytest.approx(recorded)
    outcomes = [d["outcome"] for d in _state(conn_id).decisions("routing_coding_budget", run.run_id)]
    assert outcomes == ["success", "budget_exceeded"]


# -- tasks that name their provider: not routed, but every budget that applies holds for their calls -------------
PINNED_SPEC = """
dag_id: routing_pinned
schedule: null
tags: [test]
owner: tests
budget: {{per_run_usd: {limit}}}
defaults: {{provider: anthropic, model: claude-haiku-4-5, retries: 0, max_tokens: 200}}
tasks:
  - {{id: first, type: llm, prompt: "Q1", deferrable: false}}
  - {{id: second, type: llm, prompt: "Q2", depends_on: [first], deferrable: true}}
"""


def test_a_specs_budget_holds_for_tasks_that_name_their_provider(
    fake_provider: FakeProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    dags_folder: Path,
    tmp_path: Path,
    airflow_db: Any,
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    # each answer costs nearly its worst case (190 of 200 tokens at $5/M): the second cannot fit beside the first
    fake_provider.add_rule(Rule(text="ok", usage={"input_tokens": 10, "output_tokens": 190}))
    limit = 0.0015
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "routing_pinned.yaml").write_text(PINNED_SPEC.format(limit=limit))
    loader = (
        f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), specs_dir={str(specs)!r})\n'
    )
    run = run_dag_file(dags_folder, "routing_pinned.py", loader, "routing_pinned")

    assert task_states(run) == {"first": "success", "second": "failed"}  # the second was deferred: the trigger's path
    first = xcom(run, "first")
    assert first["provider"] == "anthropic" and "routed" not in first  # not routed: only the budget was checked
    assert fake_provider.count() == 1  # the second call was never sent
    state = _state("supervisor_analytics")
    assert 0 < state.spent("run:routing_pinned:run", run.run_id) <= limit
    decisions = state.decisions("routing_pinned", run.run_id)
    assert [(d["task_id"], d["outcome"], d["model"]) for d in decisions] == [
        ("first", "success", "claude-haiku-4-5"),
        ("second", "budget_exceeded", None),
    ]


def test_a_global_budget_holds_for_a_plain_operator(
    routing_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, dags_folder: Path, tmp_path: Path
) -> None:
    server, conn_id = routing_env["server"], routing_env["conn_id"]
    server.add_rule(Rule(text="never sent"))
    (tmp_path / "budgets.yaml").write_text("dags:\n  routing_global:\n    per_run_usd: 0.00001\n")
    monkeypatch.setenv("SUPERVISOR_BUDGETS", str(tmp_path / "budgets.yaml"))
    tasks = f"""
    from supervisor_lib.operators.llm import OpenAIOperator

    OpenAIOperator(task_id="plain", prompt="Q", model="gpt-4o-mini", analytics_conn_id={conn_id!r},
                   max_tokens=200, deferrable=False)
    """
    run = run_dag_file(dags_folder, "routing_global.py", _dag("routing_global", conn_id, tasks), "routing_global")
    assert task_states(run) == {"plain": "failed"}
    assert server.count() == 0
    [decision] = _state(conn_id).decisions("routing_global", run.run_id)
    assert decision["outcome"] == "budget_exceeded"
    assert "per-run budget of DAG 'routing_global' ($0.00001)" in json.dumps(decision["detail"])
