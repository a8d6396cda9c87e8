"""Supervisor on the CeleryExecutor, as ``make run EXECUTOR=celery`` starts it: two Celery workers on the machine's
Redis, a PostgreSQL metadata DB that also holds Celery's results, and two triggerers.

The shipped DAGs run green offline: the demo, a spec DAG that fans out (``release_notes``: mapped drafts and
translations, then a human approval) and the REST-first ``supervisor_task`` (a supervised bug fix, reviewed and
approved through the REST API). Both workers take tasks, and both triggerers take deferred calls.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor_lib.store import Store
from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.integration.test_shipped_specs import readme_conf
from tests.support.connections import CANARY_KEY
from tests.support.databases import fresh_database_url
from tests.support.stack import CELERY_ARGS, REDIS, celery_broker, store_connection

REDIS_DB = 11


def _redis_problem() -> str | None:
    try:
        with socket.create_connection(REDIS, timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return None if conn.recv(16).startswith(b"+PONG") else "Redis at 127.0.0.1:6379 did not answer PING"
    except OSError as err:
        return f"no Redis at 127.0.0.1:6379 ({err}): start redis-server to run it"


_PROBLEM = (
    "the CeleryExecutor needs a PostgreSQL metadata DB: none at 127.0.0.1:5432"
    if DATABASES.dialect != "postgresql"
    else _redis_problem()
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.scaleout,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or ""),
]


@pytest.fixture(scope="module")
def stack(demo: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("celery")
    with celery_broker(REDIS_DB) as broker:
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_database_url(DATABASES, "supervisor_it_celery", base),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": store_connection(analytics_url),
            "ANTHROPIC_API_KEY": CANARY_KEY,
            "ANTHROPIC_BASE_URL": demo.anthropic_base_url,
            "OPENAI_API_KEY": CANARY_KEY,
            "OPENAI_BASE_URL": demo.openai_base_url,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # a triggerer takes every unassigned trigger up to its capacity: with 2, the fan-out's concurrent
            # deferred calls need both triggerers (with the default, 1,000, whichever polls first may take them all)
            "AIRFLOW__TRIGGERER__CAPACITY": "2",
        }
        with AirflowStack(ROOT / "dags", home=base / "home", env=env, project_dir=ROOT,
                          launcher_args=CELERY_ARGS) as running:  # fmt: skip
            for dag_id in ("supervisor_demo", "payments_bugfix", "release_notes", "supervisor_task"):
                running.wait_for_dag(dag_id)
            yield running


def _received(log: str) -> int:
    """Workloads a Celery worker's log says it received."""
    return len(re.findall(r"Task \S*execute_workload\[[^\]]+\] received", log))


def test_shipped_dags_run_green_on_two_celery_workers_and_two_triggerers(
    stack: AirflowStack, demo: FakeProviderServer, analytics_url: str
) -> None:
    runs = {
        "supervisor_demo": stack.trigger("supervisor_demo"),
        "payments_bugfix": stack.trigger("payments_bugfix"),
        "release_notes": stack.trigger("release_notes", conf=readme_conf("release_notes")),
        "supervisor_task": stack.trigger("supervisor_task", conf=readme_conf("supervisor_task")),
    }
    stack.answer("release_notes", runs["release_notes"], "publish", "Publish", timeout_s=600)
    stack.answer("supervisor_task", runs["supervisor_task"], "approve", "Approve", timeout_s=600)
    outcome = {dag_id: stack.wait(dag_id, run_id, timeout_s=600) for dag_id, run_id in runs.items()}
    states = {d: {k: t["state"] for k, t in stack.task_instances(d, r).items()} for d, r in runs.items()}
    assert outcome == dict.fromkeys(runs, "success"), f"{states}\n" + "".join(stack.output[-40:])

    notes = states["release_notes"]
    assert [notes[f"draft_section[{i}]"] for i in range(3)] == ["success"] * 3  # the fan-out ran in full
    result = stack.xcom("supervisor_task", runs["supervisor_task"], "result")
    assert result["status"] == "passed" and "+    percent_part" in result["patch"]

    # both workers ran tasks, both triggerers ran deferred calls
    logs = stack.home / "logs"
    received = {n: _received((logs / f"celery-worker-{n}.log").read_text(errors="replace")) for n in (1, 2)}
    assert all(received.values()), f"each Celery worker took tasks: {received}"
    # a deferred call's log is <task log>.trigger.<triggerer job id>.log: two triggerers ran them
    triggerers = {
        path.name.rsplit(".trigger.", 1)[1].removesuffix(".log") for path in logs.rglob("*.log.trigger.*.log")
    }
    assert len(triggerers) == 2, f"the deferred calls ran in triggerer jobs {sorted(triggerers)}"

    # one analytics row per provider request
    generations = [c for c in demo.calls if c.path in ("/v1/messages", "/v1/chat/completions", "/v1/responses")]
    rows = Store.from_url(analytics_url).attempts()
    assert len(rows) == len(generations) and {r["status"] for r in rows} == {"success"}
