"""What specs ask to hear from the anomaly scan (``notify.on_anomaly``, ``notify.on_budget``): a DAG's budget share
is a finding once per window and share crossed, and its message (like any anomaly of the DAG) goes to the spec's
notifiers, here a webhook notifier posting to a real HTTP server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supervisor_lib.analytics import alerts, findings, scan
from supervisor_lib.analytics.findings import Finding
from supervisor_lib.routing.budgets import Charge, Limit, Period
from supervisor_lib.store import Store
from supervisor_lib.store.routing_state import RoutingState
from tests.support.webhook_receiver import WebhookReceiver

NOW = datetime(2026, 12, 10, 12, tzinfo=UTC)
SPEC = """
dag_id: watched
budget: {per_day_usd: 10.0}
notify:
  on_anomaly: [{notifier: webhook, kwargs: {conn_id: team_hook}}]
  on_budget:
    share: [0.5, 0.8, 0.95]
    notifiers: [{notifier: webhook, kwargs: {conn_id: team_hook, payload: {budget: "{{ alert.title }}"}}}]
tasks:
  - {id: ask, type: llm, provider: anthropic, prompt: hi}
"""


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_TEAM_HOOK", json.dumps({"conn_type": "http", "host": receiver.url}))
        yield receiver


@pytest.fixture
def routes(tmp_path: Path) -> dict[str, alerts.Route]:
    (tmp_path / "watched.yaml").write_text(SPEC)
    (tmp_path / "quiet.yaml").write_text("tasks: [{id: a, type: llm, provider: anthropic, prompt: hi}]\n")
    (tmp_path / "broken.yaml").write_text("tasks: 3\n")
    return alerts.routes_from_specs(tmp_path)


def _spend(store: Store, usd: float, reservation: str) -> None:
    day = Charge(Limit("dag", "watched", Period.DAY, 10.0, "spec"), "2026-12-10",
                 datetime(2026, 12, 10, tzinfo=UTC), datetime(2026, 12, 11, tzinfo=UTC))  # fmt: skip
    state = RoutingState(store)
    state.reserve([day], 0.0, reservation_id=reservation, owner=("watched", "r", "ask"), now=NOW, ttl_s=60)
    state.settle_windows(reservation, [(day.key, day.window)], usd, NOW)


def test_routes_come_from_the_valid_specs_that_ask(routes: dict[str, alerts.Route]) -> None:
    assert list(routes) == ["watched"]
    assert routes["watched"].shares == (0.5, 0.8, 0.95)
    assert routes["watched"].notifiers("budget_share")[0]["kwargs"]["payload"] == {"budget": "{{ alert.title }}"}
    assert routes["watched"].notifiers("spend_spike") == ({"class": "webhook", "kwargs": {"conn_id": "team_hook"}},)


def test_a_budget_share_is_announced_once_per_crossing_to_the_specs_notifier(
    store: Store, routes: dict[str, alerts.Route], hook: WebhookReceiver
) -> None:
    shares = {dag: route.shares for dag, route in routes.items()}
    _spend(store, 8.2, "r1")  # past 50 % and 80 % at once: one message for the window
    crossed = [f for f in scan.scan(store, now=NOW, budget_shares=shares).new if f.kind == "budget_share"]
    assert sorted(f.about or "" for f in crossed) == [
        "dag:watched:day|2026-12-10|0.5",
        "dag:watched:day|2026-12-10|0.8",
    ]
    sent = alerts.send(store, alerts.AlertConfig(), NOW, ui_url="http://x", routes=routes)
    assert (sent.messages, sent.failures) == (2, [])  # and, to on_anomaly, the day projected over its limit
    bodies = sorted((post.body for post in hook.posts), key=len)
    assert bodies[0] == {"budget": "Supervisor: budget share reached in watched (2 findings)"}
    assert bodies[1]["kind"] == "budget_runout" and bodies[1]["title"] == "Supervisor: budget running out in watched"

    _spend(store, 0.5, "r2")  # still under 95 %: nothing new, nothing sent again
    later = NOW + timedelta(minutes=15)
    assert [f for f in scan.scan(store, now=later, budget_shares=shares).new if f.kind == "budget_share"] == []
    assert alerts.send(store, alerts.AlertConfig(), later, ui_url="http://x", routes=routes).messages == 0
    _spend(store, 1.0, "r3")  # past 95 %
    [third] = [f for f in scan.scan(store, now=later, budget_shares=shares).new if f.kind == "budget_share"]
    assert "$9.70 spent, past 95% of the $10.00 limit" in third.reason
    assert alerts.send(store, alerts.AlertConfig(), later, ui_url="http://x", routes=routes).messages == 1
    assert len(hook.posts) == 3 and hook.posts[2].body == {"budget": "Supervisor: budget share reached in watched"}


def test_an_anomaly_of_the_dag_reaches_the_specs_notifier_and_others_do_not(
    store: Store, routes: dict[str, alerts.Route], hook: WebhookReceiver
) -> None:
    store.migrate()
    findings.record(store, [_finding("watched"), _finding("elsewhere")], NOW)
    sent = alerts.send(store, alerts.AlertConfig(), NOW, ui_url="http://x", routes=routes)
    assert sent.messages == 2 and len(hook.posts) == 1  # the other DAG's message is only logged
    body = hook.posts[0].body
    assert body["event"] == "anomaly" and body["kind"] == "spend_spike" and body["dag_id"] == "watched"
    assert body["title"] == "Supervisor: spend spike in watched"


def _finding(dag: str) -> Finding:
    return Finding(kind="spend_spike", subject=f"dag:{dag}", occurred_at=NOW, score=4.0,
                   reason=f"hourly spend of dag {dag}: spike", group_key=f"spend_spike|dag:{dag}|2026-12-10",
                   dag_id=dag)  # fmt: skip
