"""The REST-first ``supervisor_task`` DAG on a real Airflow, driven only with the official Python client
(``apache-airflow-client``) as a CI job would: token, find the DAG by tag, read its params schema, trigger, poll,
approve through ``hitlDetails``, read the results; a bad conf is a 400 naming the field; a repository outside the
allowed roots is refused before any model call, naming the setting."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import airflow_client.client as af
import pytest
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.x_com_api import XComApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody
from airflow_client.client.models.update_hitl_detail_payload import UpdateHITLDetailPayload

from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.coding import APPROVE, GOOD_FIX, REPORTS
from tests.support.stack import provider_stack

pytestmark = pytest.mark.slow

DAG_ID = "supervisor_task"
CALCULATOR = ROOT / "tests" / "fixtures" / "repos" / "calculator"


@pytest.fixture(scope="module")
def stack(
    fake: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    base = tmp_path_factory.mktemp("rest")
    repos = base / "repos"
    shutil.copytree(CALCULATOR, repos / "calculator")
    (base / "outside").mkdir()
    shutil.copytree(CALCULATOR, base / "outside" / "calculator")
    source = (ROOT / "dags" / "supervisor_task.py").read_text()
    env = {"SUPERVISOR_TASK_REPO_ROOTS": str(repos), "SUPERVISOR_TASK_PROVIDER": "anthropic",
           **{f"SUPERVISOR_{name}": str(base / folder) for name, folder in
              (("WORKSPACE_ROOT", "ws"), ("REPO_CACHE", "cache"), ("ARTIFACTS_ROOT", "artifacts"))}}  # fmt: skip
    with provider_stack(
        "rest", base, {"supervisor_task.py": source}, databases=DATABASES, fake=fake, analytics_url=analytics_url,
        dag_ids=(), project_dir=ROOT, env=env,
    ) as running:  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def client(stack: AirflowStack) -> Iterator[af.ApiClient]:
    """The official client with a token from ``POST /auth/token``, as a CI job gets one."""
    body = json.dumps({"username": "admin", "password": stack.password}).encode()
    request = urllib.request.Request(f"{stack.base_url}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        token = json.loads(answer.read())["access_token"]
    with af.ApiClient(af.Configuration(host=stack.base_url, access_token=token)) as api:
        _wait_for_dag(DAGApi(api))
        yield api


def _wait_for_dag(dags: DAGApi, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            dags.get_dag(DAG_ID)
            return
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(1)


def _trigger(api: af.ApiClient, conf: dict[str, Any]) -> str:
    run = DagRunApi(api).trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf=conf))
    return str(run.dag_run_id)


def _wait(api: af.ApiClient, run_id: str, *, until: tuple[str, ...] = ("success", "failed"),
          approve_with: str | None = None, timeout_s: float = 300) -> str:  # fmt: skip
    """Poll the run; with ``approve_with``, answer the approval a few seconds after it asks (as a person would)."""
    runs, tis = DagRunApi(api), TaskInstanceApi(api)
    deadline, asked = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        state = str(runs.get_dag_run(DAG_ID, run_id).state.value)
        if state in until:
            return state
        if approve_with:
            approve = tis.get_task_instance(DAG_ID, run_id, "approve")
            if approve.state is not None and approve.state.value == "awaiting_input":
                asked = asked or time.monotonic()
                if time.monotonic() - asked >= 3:
                    payload = UpdateHITLDetailPayload(chosen_options=[approve_with], params_input={})
                    tis.update_hitl_detail(DAG_ID, run_id, "approve", -1, payload)
                    approve_with = None
        time.sleep(1)
    raise TimeoutError(f"{DAG_ID}/{run_id} did not finish within {timeout_s:.0f}s")


def _xcom(api: af.ApiClient, run_id: str, task_id: str, key: str = "return_value") -> Any:
    entry = XComApi(api).get_xcom_entry(DAG_ID, task_id, run_id, key, map_index=-1, deserialize=True)
    return entry.actual_instance.value  # the anyOf wrapper of the native (deserialized) answer


def test_the_dag_is_found_by_tag_and_publishes_its_request_schema(client: af.ApiClient) -> None:
    found = DAGApi(client).get_dags(tags=["supervisor", "rest"], tags_match_mode="all")
    assert [dag.dag_id for dag in found.dags] == [DAG_ID]
    params = DAGApi(client).get_dag_details(DAG_ID).params
    assert params is not None
    assert params["task_type"]["schema"]["enum"][:2] == ["bug_fix", "feature"]
    assert (
        params["repo"]["schema"]["type"] == "string" and "SUPERVISOR_TASK_REPO_ROOTS" in params["repo"]["description"]
    )
    assert params["budget_usd"]["schema"]["maximum"] == 5.0


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"repo": "calculator", "task_type": "bug_fix"}, "instructions"),  # required, missing
        ({"repo": "calculator", "task_type": "rewrite_everything", "instructions": "x"}, "task_type"),
        ({"repo": "calculator", "task_type": "bug_fix", "instructions": "x", "budget_usd": 500}, "budget_usd"),
        ({"repo": "calculator", "task_type": "bug_fix", "instructions": "x", "ref": "--output=/tmp/x"}, "ref"),
    ],
)
def test_a_bad_conf_is_a_400_naming_the_field(client: af.ApiClient, conf: dict[str, Any], field: str) -> None:
    before = DagRunApi(client).get_dag_runs(DAG_ID).total_entries
    with pytest.raises(ApiException) as refused:
        _trigger(client, conf)
    assert refused.value.status == 400
    assert field in str(refused.value.body)
    assert DagRunApi(client).get_dag_runs(DAG_ID).total_entries == before  # nothing ran


def test_a_fix_is_reviewed_approved_and_read_back_through_the_api(
    client: af.ApiClient, stack: AirflowStack, fake: FakeProviderServer
) -> None:
    fake.add_rules([Rule(provider="openai", match="# Review a bug_fix change", json=APPROVE),
                    Rule(provider="anthropic", match="REST-FIX add", text=GOOD_FIX)])  # fmt: skip
    run_id = _trigger(client, {
        "repo": str(stack.dags_folder.parent / "repos" / "calculator"), "task_type": "bug_fix",
        "instructions": "REST-FIX add() subtracts; {{ this stays text }}", "validate": "python -m pytest -q",
        "provider": "anthropic", "model": "claude-haiku-4-5", "reviewer_provider": "openai",
        "reviewer_model": "gpt-4.1-mini", "budget_usd": 0.5, "approval": True,
    })  # fmt: skip
    assert _wait(client, run_id, approve_with="Approve") == "success", "".join(stack.output[-60:])
    result = _xcom(client, run_id, "result")
    assert result["status"] == "passed" and result["task_type"] == "bug_fix"
    assert "+    return a + b" in result["patch"] and result["files_changed"] == ["calculator/core.py"]
    assert result["review"]["decision"] == "approve"
    assert result["validation"]["passed"] is True
    assert result["cost_usd"] > 0 and result["tokens"]["input"] > 0
    assert _xcom(client, run_id, "approve")["approved"] is True
    prompts = [json.dumps(call.body) for call in fake.calls if "REST-FIX" in json.dumps(call.body)]
    assert prompts and all("{{ this stays text }}" in body for body in prompts)  # data, never a template
    path = result["transcript"]["api"].removeprefix(stack.base_url)
    assert path.startswith(f"/supervisor/api/dags/{DAG_ID}/runs/") and path.endswith("/tasks/change/-1")
    transcript = stack.request("GET", path)
    assert {call["provider"] for call in transcript["calls"]} == {"anthropic", "openai"}  # author and reviewer
    assert "patch.diff" in transcript["artifacts"]


def test_a_report_needs_no_validation_and_no_approval(
    client: af.ApiClient, stack: AirflowStack, fake: FakeProviderServer
) -> None:
    fake.add_rules([Rule(match="# Report: code_analysis", json=REPORTS["code_analysis"])])
    repo = str(stack.dags_folder.parent / "repos" / "calculator")
    run_id = _trigger(client, {"repo": repo, "task_type": "code_analysis", "instructions": "Find bugs."})
    assert _wait(client, run_id) == "success", "".join(stack.output[-60:])
    result = _xcom(client, run_id, "result")
    assert result["status"] == "passed" and result["task_id"] == "report" and result["patch"] is None
    assert result["report"]["findings"][0]["message"] == "add() subtracts"
    states = {ti.task_id: ti.state.value for ti in TaskInstanceApi(client).get_task_instances(DAG_ID, run_id)
              .task_instances if ti.state is not None}  # fmt: skip
    assert states == {"request": "success", "change": "skipped", "report": "success", "result": "success",
                      "approve": "skipped"}  # fmt: skip


def test_a_repository_outside_the_roots_is_refused_before_any_model_call(
    client: af.ApiClient, stack: AirflowStack, fake: FakeProviderServer
) -> None:
    calls = fake.count()
    outside = stack.dags_folder.parent / "outside" / "calculator"
    link = stack.dags_folder.parent / "repos" / "sneaky"
    link.symlink_to(outside)
    for repo in (str(outside), str(link), "file:///etc", "https://example.com/x.git"):
        run_id = _trigger(client, {"repo": repo, "task_type": "bug_fix", "instructions": "REST-FIX add"})
        assert _wait(client, run_id) == "failed"
        tis = {ti.task_id: ti.state.value for ti in TaskInstanceApi(client).get_task_instances(DAG_ID, run_id)
               .task_instances if ti.state is not None}  # fmt: skip
        assert tis["request"] == "failed" and tis["change"] == "upstream_failed", repo
        result = _xcom(client, run_id, "result")
        assert result["status"] == "refused", repo
        assert ("SUPERVISOR_TASK_REPO_ROOTS" if "://" not in repo else "transport" if "file" in repo
                else "SUPERVISOR_TASK_REPO_REMOTES") in result["error"], result["error"]  # fmt: skip
    assert fake.count() == calls, "a refused request reached no model"
