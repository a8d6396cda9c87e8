"""Regressions found by the reliability suite's plugin API matrix (``benchmarks/reliability/plugin_api.py``): inputs
the store or JSON cannot take are a 4xx naming the parameter (they were a 503 or a 500), acknowledging a finding
works whatever the store's dialect (a 500 on PostgreSQL), and a user limited to some DAGs learns nothing of another
DAG's mutes and findings.

Uses ``test_app``'s app (Airflow's own, with the plugin mounted and a seeded store) and its users: ``alice`` may read
``dag_a`` only; ``admin`` reads everything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from fastapi.testclient import TestClient

from supervisor_lib.analytics import findings
from supervisor_lib.plugin.airflow_plugin import SupervisorPlugin
from tests.unit.plugin.test_app import _get, _token
from tests.unit.plugin.test_app import client as client  # the fixture: Airflow's app with the plugin and a store

MUTES = "/supervisor/api/anomalies/mutes"


def test_a_map_index_beyond_the_store_s_integer_is_a_422_not_a_503(client: TestClient) -> None:
    admin = _token(client, "admin", "admin")
    for index in ("2147483648", "99999999999999999999", "-2"):
        answer = _get(client, f"dags/dag_a/runs/r1/tasks/fix/{index}", admin)
        assert answer.status_code == 422 and "map_index" in answer.text, (index, answer.status_code, answer.text)
    assert _get(client, "dags/dag_a/runs/r1/tasks/fix/2147483647", admin).status_code == 200


def test_a_nul_in_a_path_dag_id_is_a_400_before_the_access_check(client: TestClient) -> None:
    # Airflow's access check looks the DAG's team up in its DB: on PostgreSQL a NUL there was a 500
    for user in (_token(client, "admin", "admin"), _token(client, "alice", "viewer")):
        for route in ("dags/a%00b", "dags/a%00b/runs/r1", "dags/a%00b/runs/r1/tasks/fix/-1"):
            answer = _get(client, route, user)
            assert answer.status_code == 400 and answer.json()["detail"].startswith("dag_id:"), (route, answer.text)
    assert _get(client, "dags/a%00b").status_code == 401  # the token is still checked first


def test_a_nul_in_the_anomalies_text_filters_is_a_422(client: TestClient) -> None:
    # PostgreSQL refuses NUL in text: the store's error was a 503
    admin = _token(client, "admin", "admin")
    for param in ("kind", "run_id", "task_id"):
        answer = client.get("/supervisor/api/anomalies", params={param: "x\x00y"}, headers=admin)
        assert answer.status_code == 422 and param in answer.text, (param, answer.text)
    muted = client.post(MUTES, json={"kind": "*", "scope": "dag:x\x00y", "days": 1}, headers=admin)
    assert muted.status_code == 422 and "scope" in muted.text, muted.text


def test_a_restricted_user_sees_no_mute_of_another_dag(client: TestClient) -> None:
    store = SupervisorPlugin.fastapi_apps[0]["app"].state.stores.get()
    keys = ("context_blowup|task:dag_b.fix", "error_burst|dag:dag_b", "latency_spike|dag:dag_a", "*|*")
    for key in keys:
        findings.mute(store, key, "admin", datetime.now(UTC), 1)
    try:
        admin, alice = _token(client, "admin", "admin"), _token(client, "alice", "viewer")
        assert {m["mute_key"] for m in _get(client, "anomalies/mutes", admin).json()} >= set(keys)
        assert {m["mute_key"] for m in _get(client, "anomalies/mutes", alice).json()} == {keys[2], keys[3]}
    finally:
        for key in keys:
            findings.unmute(store, key)


def test_another_dag_s_finding_is_a_404_like_a_missing_one(client: TestClient) -> None:
    admin, alice = _token(client, "admin", "admin"), _token(client, "alice", "viewer")
    others = [f for f in _get(client, "anomalies", admin).json() if f["dag_id"] != "dag_a"]
    assert {f["dag_id"] for f in others} == {"dag_b", None}  # another DAG's, and a provider's
    for finding in others:
        answer = client.post(f"/supervisor/api/anomalies/{quote(finding['finding_id'])}/status", json={}, headers=alice)
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"detail": f"finding_id: no finding {finding['finding_id']!r}"}  # as if missing


def test_a_body_value_json_cannot_carry_back_is_a_422_not_a_500(client: TestClient) -> None:
    # FastAPI's own 422 echoes the value sent: NaN, Infinity or a lone surrogate could not be written back (a 500)
    headers = {**_token(client, "admin", "admin"), "Content-Type": "application/json"}
    for url, body, param in ((MUTES, '{"kind": NaN, "scope": "*"}', "kind"),
                             (MUTES, '{"kind": "*", "scope": "*", "days": Infinity}', "days"),
                             (MUTES, '{"kind": "*", "scope": "dag:\\ud800"}', "scope"),
                             ("/supervisor/api/anomalies/nope/status", '{"status": "\\ud800"}', "status")):  # fmt: skip
        answer = client.post(url, content=body, headers=headers)
        assert answer.status_code == 422, (body, answer.status_code, answer.text)
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", param] and "input" not in error, error
