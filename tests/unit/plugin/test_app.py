"""The plugin's API inside Airflow's own app (``create_app("core")``, which mounts the plugin the way the API
server does): every route answers only with a valid token, and a user sees only the DAGs they may read.

The auth manager is Airflow's SimpleAuthManager with one restricted user (``tests/support/restricted_auth.py``):
``alice`` may read ``dag_a`` only; ``admin`` reads everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from supervisor_lib.plugin.airflow_plugin import SupervisorPlugin
from supervisor_lib.plugin.stores import StorePool
from supervisor_lib.routing.budgets import Charge, Limit, Period
from supervisor_lib.store import CallRecord, Store
from supervisor_lib.store.routing_state import RoutingState
from tests.support.restricted_auth import ONLY

NOW = datetime.now(UTC).replace(microsecond=0)
#: every data route, with the DAG it is about (``None``: across the DAGs the user may read)
ROUTES: list[tuple[str, str | None]] = [
    ("overview", None), ("series?metric=calls&group_by=dag", None), ("top?by=dag", None), ("top?by=run", None),
    ("errors", None), ("providers", None), ("budgets", None), ("decisions", None), ("tile", None), ("stamp", None),
    ("facets", None), ("anomalies", None), ("anomalies/mutes", None), ("forecast", None), ("experiments", None),
    ("dags/dag_a", "dag_a"), ("dags/dag_a/runs/r1", "dag_a"), ("dags/dag_a/runs/r1/tasks/fix/-1", "dag_a"),
    ("dags/dag_b", "dag_b"), ("dags/dag_b/runs/r2", "dag_b"), ("dags/dag_b/runs/r2/tasks/fix/-1", "dag_b"),
]  # fmt: skip


def _seed(store: Store) -> None:
    records = []
    for dag, run, n_calls in (("dag_a", "r1", 3), ("dag_b", "r2", 5)):
        for n in range(n_calls):
            records.append(CallRecord(
                call_id=f"{dag}-{n}", dag_id=dag, run_id=run, task_id="fix", provider="anthropic",
                model="claude-sonnet-4-5", task_type="bug_fix", started_at=NOW - timedelta(minutes=10 - n),
                status="error" if n == 0 else "success", attempt=n + 1, duration_s=0.4, input_tokens=100,
                output_tokens=10, cost_usd=0.01 if dag == "dag_a" else 0.1,
                error_type="RateLimitError" if n == 0 else None,
                transcript={"request": {"messages": [{"role": "user", "content": f"secret plan of {dag}"}]}},
            ))  # fmt: skip
    store.insert_attempts([r.to_row() for r in records], {r.call_id: r.transcript for r in records if r.transcript})
    from supervisor_lib.analytics import findings
    from supervisor_lib.analytics.findings import Finding

    findings.record(store, [
        Finding(kind="context_blowup", subject=f"call:{dag}-1", occurred_at=NOW - timedelta(minutes=5), score=9.0,
                reason=f"input 48,210 tokens, 11.8x the median of {dag}/fix", group_key=f"g-{dag}", dag_id=dag,
                run_id=run, task_id="fix", map_index=-1, call_id=f"{dag}-1", provider="anthropic", model="m")
        for dag, run in (("dag_a", "r1"), ("dag_b", "r2"))
    ] + [Finding(kind="error_burst", subject="provider:anthropic", occurred_at=NOW - timedelta(minutes=3),
                 score=4.0, reason="anthropic failed 14 of 20 calls", group_key="g-p", provider="anthropic")],
        NOW)  # fmt: skip
    from supervisor_lib.store.experiments import ArmOutcome, record_outcome

    for dag, n, arm, index in [(d, n, a, i) for d in ("dag_a", "dag_b") for n in range(3)
                               for i, a in enumerate(("base", "cheap"))]:  # fmt: skip
        record_outcome(store, ArmOutcome(
            experiment=f"models_{dag}", arm=arm, arm_index=index, dag_id=dag, run_id=f"r{n}", task_id="fix",
            map_index=index, try_number=1, task_type="bug_fix", provider="anthropic", model=f"m{index}",
            status="passed", passed=True, review=None, iterations=1, tokens=100, duration_s=2.0,
            cost_usd=(0.01 if dag == "dag_a" else 0.1) / (index + 1), recorded_at=NOW - timedelta(hours=n),
        ))  # fmt: skip
    state = RoutingState(store)
    for dag, run in (("dag_a", "r1"), ("dag_b", "r2")):
        state.log_decision({"decision_id": f"d-{dag}", "dag_id": dag, "run_id": run, "task_id": "fix",
                            "map_index": -1, "try_number": 1, "task_type": "bug_fix", "decided_at": NOW,
                            "outcome": "routed", "provider": "openai", "model": "gpt-5", "failovers": 1,
                            "detail": {"reason": f"anthropic overloaded ({dag})"}})  # fmt: skip
        limit = Limit("dag", dag, Period.DAY, 5.0, "spec")
        start = NOW.replace(hour=0, minute=0, second=0)
        charge = Charge(limit, start.date().isoformat(), start, start + timedelta(days=1))
        # the budgets view counts the reservations not expired by the real clock: this one outlives the session
        state.reserve([charge], 0.5, reservation_id=f"res-{dag}", owner=(dag, run, "fix"), now=NOW, ttl_s=6 * 3600)


@pytest.fixture(scope="module")
def client(airflow_db: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app, purge_cached_app

    folder = tmp_path_factory.mktemp("plugin")
    store = Store.from_url(f"sqlite:///{folder / 'analytics.db'}", name="plugin-test")
    _seed(store)
    artifacts = folder / "artifacts"
    fix = artifacts / "dag_a" / "r1" / "fix"
    fix.mkdir(parents=True)
    (fix / "patch.diff").write_text("--- a/fee.py\n+++ b/fee.py\n@@ -1 +1 @@\n-return 0\n+return 1\n")
    (fix / "validation-1.log").write_text("1 passed\n")
    (fix / "review.json").write_text(json.dumps({"verdict": "approve", "password": "hunter2-topsecret"}))
    saved = {name: __import__("os").environ.get(name) for name in ("AIRFLOW__CORE__AUTH_MANAGER",
                                                                    "SUPERVISOR_ARTIFACTS_ROOT")}  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER", "tests.support.restricted_auth.RestrictedAuthManager")
    mp.setenv("SUPERVISOR_ARTIFACTS_ROOT", str(artifacts))
    purge_cached_app()
    app = create_app("core")
    plugin_app = SupervisorPlugin.fastapi_apps[0]["app"]
    original = plugin_app.state.stores
    plugin_app.state.stores = StorePool(size=1, make=lambda: store)
    with TestClient(app) as test_client:
        test_client.app_state = app.state  # type: ignore[attr-defined]
        yield test_client
    plugin_app.state.stores = original
    mp.undo()
    purge_cached_app()
    store.close()
    assert saved is not None


def _token(client: TestClient, username: str, role: str) -> dict[str, str]:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = client.app_state.auth_manager  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))}"}


def _get(client: TestClient, route: str, headers: dict[str, str] | None = None) -> Any:
    return client.get(f"/supervisor/api/{route}", headers=headers or {})


@pytest.mark.parametrize(("route", "dag"), ROUTES)
def test_every_route_needs_a_valid_token(client: TestClient, route: str, dag: str | None) -> None:
    assert _get(client, route).status_code == 401
    assert _get(client, route, {"Authorization": "Bearer not.a.token"}).status_code == 403
    assert _get(client, route, _token(client, "admin", "admin")).status_code == 200


@pytest.mark.parametrize(("route", "dag"), ROUTES)
def test_a_restricted_user_sees_only_their_dags(client: TestClient, route: str, dag: str | None) -> None:
    answer = _get(client, route, _token(client, "alice", "viewer"))
    if dag is not None and dag not in ONLY["alice"]:
        assert answer.status_code == 403, answer.text
        return
    assert answer.status_code == 200, answer.text
    assert "dag_b" not in answer.text and "0.1" not in json.dumps(answer.json())


def test_the_numbers_each_user_sees(client: TestClient) -> None:
    admin, alice = _token(client, "admin", "admin"), _token(client, "alice", "viewer")
    assert _get(client, "overview", admin).json()["calls"] == 8
    mine = _get(client, "overview", alice).json()
    assert mine["calls"] == 3 and mine["spend_usd"] == pytest.approx(0.03) and mine["failed"] == 1
    assert {b["budget_key"] for b in _get(client, "budgets", admin).json()} == {"dag:dag_a:day", "dag:dag_b:day"}
    [budget] = _get(client, "budgets", alice).json()
    assert budget["reserved_usd"] == 0.5 and budget["left_usd"] == 4.5 and budget["forecast_usd"] is not None
    assert [d["dag_id"] for d in _get(client, "decisions", alice).json()] == ["dag_a"]
    for user, spent in ((admin, 0.53), (alice, 0.03)):  # the forecast's history: today (or yesterday at midnight)
        assert sum(day["spend_usd"] for day in _get(client, "forecast", user).json()["history"]) == pytest.approx(spent)
    assert _get(client, "tile", alice).json()["errors_today"] in (0, 1)  # 1 unless the test runs at midnight


def test_the_experiments_view_per_user(client: TestClient) -> None:
    admin, alice = _token(client, "admin", "admin"), _token(client, "alice", "viewer")
    assert set(_get(client, "experiments", admin).json()["experiments"]) == {"models_dag_a", "models_dag_b"}
    mine = _get(client, "experiments", alice).json()
    assert mine["experiments"] == ["models_dag_a"] and mine["experiment"] == "models_dag_a"
    base, cheap = mine["arms"]
    assert (base["arm"], base["runs"], base["passed"], cheap["arm"]) == ("base", 3, 3, "cheap")
    assert base["pass_rate"]["low"] == pytest.approx(0.4385, abs=1e-4)  # Wilson, 3 of 3
    assert cheap["cost_usd"]["estimate"] == pytest.approx(0.005)
    assert "not enough runs to tell" in mine["verdict"]
    assert _get(client, "experiments?experiment=models_dag_b", alice).json()["arms"] == []  # not hers: nothing
    csv_lines = _get(client, "experiments?format=csv", alice).text.strip().splitlines()
    assert csv_lines[0].startswith("arm,models,runs,passed,pass_rate.estimate") and len(csv_lines) == 3


def test_the_transcript_tab_shows_calls_and_artifacts_masked(client: TestClient) -> None:
    answer = _get(client, "dags/dag_a/runs/r1/tasks/fix/-1", _token(client, "alice", "viewer")).json()
    assert [c["attempt"] for c in answer["calls"]] == [1, 2, 3]
    assert answer["calls"][0]["error_type"] == "RateLimitError"
    assert answer["calls"][1]["content"]["request"]["messages"][0]["content"] == "secret plan of dag_a"
    assert answer["artifacts"]["patch.diff"].endswith("+return 1\n")
    assert answer["artifacts"]["validation-1.log"] == "1 passed\n"
    assert answer["artifacts"]["review.json"]["verdict"] == "approve"
    assert "hunter2" not in json.dumps(answer)  # a sensitive field name: Airflow's masker hides its value


def test_export_as_csv(client: TestClient) -> None:
    admin = _token(client, "admin", "admin")
    answer = _get(client, "top?by=dag&format=csv", admin)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "supervisor-top-dag.csv" in answer.headers["content-disposition"]
    lines = answer.text.strip().splitlines()
    assert lines[0].split(",")[:2] == ["dag_id", "cost_usd"] and lines[1].startswith("dag_b,0.5")
    series = _get(client, "series?metric=calls&group_by=dag&format=csv", admin).text.splitlines()
    assert series[0] == "time,dag_b,dag_a" and len(series) - 1 in (24, 25)  # hours the last 24 h touch
    forecast = _get(client, "forecast?format=csv", admin).text.splitlines()
    if (NOW - timedelta(minutes=10)).date() == NOW.date():  # the seeded calls are today's: no complete day yet
        assert forecast[0] == "date,spend_usd" and len(forecast) == 31  # 30 days, nothing to forecast from
    else:  # the suite was collected just after midnight (UTC): yesterday's calls are a complete day to forecast from
        assert forecast[0].startswith("date,spend_usd,forecast_usd")
    assert _get(client, "overview?format=xml", admin).status_code == 422


def test_bad_parameters_say_which(client: TestClient) -> None:
    admin = _token(client, "admin", "admin")
    for route, param in (("series?metric=vibes", "metric"), ("overview?start=yesterday", "start"),
                         ("top?by=planet", "by"), ("series?group_by=x", "group_by"),
                         ("overview?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "start")):  # fmt: skip
        answer = _get(client, route, admin)
        assert answer.status_code == 400 and answer.json()["detail"].startswith(f"{param}:"), (route, answer.text)


def test_no_public_docs_and_the_bundle_needs_no_token(client: TestClient) -> None:
    for route in ("docs", "redoc", "openapi.json"):
        assert client.get(f"/supervisor/{route}").status_code == 404
    bundle = Path(__file__).resolve().parents[3] / "supervisor_lib" / "plugin" / "static" / "supervisor.js"
    if bundle.exists():
        answer = client.get("/supervisor/static/supervisor.js")
        assert answer.status_code == 200 and "javascript" in answer.headers["content-type"]


#: hostile values for every parameter: SQL, NUL, huge, unicode, path tricks, numbers out of range
HOSTILE = ["' OR 1=1 --", "x\x00y", "a" * 5000, "😀∑", "../../etc/passwd", "-1", "99999999999999999999", "%", "_",
           "1e309", "2026-13-45T25:61:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59Z", ""]  # fmt: skip
PARAMS = ["start", "end", "dag_id", "provider", "model", "team", "tag", "metric", "group_by", "by", "limit", "format"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_parameters_get_a_4xx_never_a_500_or_a_slow_answer(client: TestClient, value: str) -> None:
    import time

    admin = _token(client, "admin", "admin")
    for route, _dag in ROUTES:
        path = route.split("?")[0]
        for param in PARAMS:
            started = time.perf_counter()
            answer = client.get(f"/supervisor/api/{path}", params={param: value}, headers=admin)
            assert answer.status_code in (200, 400, 422), (route, param, value[:20], answer.status_code, answer.text)
            # a slow answer here means a scan or a runaway pattern (seconds to minutes); 5 s, not 1, because the
            # whole suite on 2 cores once held one of these requests for 1.01 s
            assert time.perf_counter() - started < 5.0, (route, param)
    for bad_id in (value, "x\x00y", "d" * 300):  # in the path: DAG, run and task ids
        if not bad_id.strip("./"):
            continue
        answer = client.get(f"/supervisor/api/dags/dag_a/runs/{quote(bad_id, safe='')}/tasks/fix/-1", headers=admin)
        assert answer.status_code in (200, 400, 404), (bad_id[:20], answer.status_code, answer.text)


def test_a_store_that_is_down_is_a_503_with_the_reason(client: TestClient) -> None:
    plugin_app = SupervisorPlugin.fastapi_apps[0]["app"]
    working = plugin_app.state.stores
    plugin_app.state.stores = StorePool(size=1, make=lambda: Store.from_url("postgresql://nobody@127.0.0.1:1/none"))
    try:
        answer = _get(client, "overview", _token(client, "admin", "admin"))
    finally:
        plugin_app.state.stores = working
    assert answer.status_code == 503 and "analytics store is unavailable" in answer.json()["detail"]


def test_anomalies_per_user_and_who_may_acknowledge_or_mute(client: TestClient) -> None:
    admin, alice = _token(client, "admin", "admin"), _token(client, "alice", "viewer")
    everything = _get(client, "anomalies", admin).json()
    assert {f["dag_id"] for f in everything} == {"dag_a", "dag_b", None}
    [mine] = _get(client, "anomalies", alice).json()
    assert mine["dag_id"] == "dag_a" and "11.8x the median" in mine["reason"]
    assert _get(client, "tile", alice).json()["open_anomalies"] == 1

    url = f"/supervisor/api/anomalies/{mine['finding_id']}/status"
    assert client.post(url, json={"status": "acknowledged"}, headers=alice).status_code == 403  # a viewer
    done = client.post(url, json={"status": "acknowledged"}, headers=admin)
    assert done.status_code == 200 and done.json()["status"] == "acknowledged" and done.json()["status_by"] == "admin"
    assert _get(client, "tile", alice).json()["open_anomalies"] == 0
    assert client.post("/supervisor/api/anomalies/nope/status", json={}, headers=admin).status_code == 404
    client.post(url, json={"status": "open"}, headers=admin)

    mutes = "/supervisor/api/anomalies/mutes"
    muted = client.post(mutes, json={"kind": "context_blowup", "scope": "task:dag_a.fix", "days": 1}, headers=admin)
    assert muted.status_code == 200 and muted.json()["mute_key"] == "context_blowup|task:dag_a.fix"
    assert [m["mute_key"] for m in _get(client, "anomalies/mutes", admin).json()] == ["context_blowup|task:dag_a.fix"]
    assert client.post(mutes, json={"kind": "vibes", "scope": "*"}, headers=admin).status_code == 400
    assert client.post(mutes, json={"kind": "*", "scope": "; DROP"}, headers=admin).status_code == 422
    assert client.post(mutes, json={"kind": "*", "scope": "*"}, headers=alice).status_code == 403
    gone = client.delete(f"{mutes}/{quote('context_blowup|task:dag_a.fix')}", headers=admin)
    assert gone.status_code == 204 and _get(client, "anomalies/mutes", admin).json() == []
