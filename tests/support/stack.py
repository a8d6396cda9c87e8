"""A real Airflow for one test module: its DAG files, a fresh metadata DB, an analytics store and the fake provider.

Starting the stack costs most of a module's run time, so a module starts one (module-scoped fixture) and its tests
share it, each with prompts of its own.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from supervisor_lib.testing import FakeProviderServer
from supervisor_lib.testing.stack import AirflowStack
from tests.support.connections import CANARY_KEY
from tests.support.databases import DatabaseChoice, fresh_database_url


def store_connection(url: str) -> str:
    """The Airflow connection (JSON form) of an analytics store URL (``sqlite:///...`` or ``postgresql+...://``)."""
    if url.startswith("sqlite:///"):
        return json.dumps({"conn_type": "sqlite", "host": url.removeprefix("sqlite:///")})
    rest = url.split("://", 1)[1]
    user_host, name = rest.rsplit("/", 1)
    user, host_port = user_host.split("@")
    host, port = host_port.split(":")
    return json.dumps({"conn_type": "postgres", "host": host, "port": int(port), "login": user, "schema": name})


@contextmanager
def provider_stack(
    name: str,
    base: Path,
    dags: Mapping[str, str],
    *,
    databases: DatabaseChoice,
    fake: FakeProviderServer,
    analytics_url: str,
    dag_ids: Iterable[str],
    project_dir: Path,
    env: Mapping[str, str] | None = None,
    launcher_args: Sequence[str] = (),
) -> Iterator[AirflowStack]:
    """Airflow serving ``dags`` (file name → source, dedented) from ``base/dags``, with a fresh metadata DB
    (``supervisor_it_{name}``), its provider connections on ``fake`` (key :data:`CANARY_KEY`) and its
    ``supervisor_analytics`` connection on ``analytics_url``; yielded once the DAGs ``dag_ids`` are parsed and
    unpaused. ``env`` adds to the stack's environment (e.g. ``SUPERVISOR_CATALOG``)."""
    folder = base / "dags"
    folder.mkdir(exist_ok=True)
    for file_name, source in dags.items():
        (folder / file_name).write_text(textwrap.dedent(source))
    env = {
        **(env or {}),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_database_url(databases, f"supervisor_it_{name}", base),
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": store_connection(analytics_url),
        "ANTHROPIC_API_KEY": CANARY_KEY,
        "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
        "OPENAI_API_KEY": CANARY_KEY,
        "OPENAI_BASE_URL": fake.openai_base_url,
    }
    with AirflowStack(folder, env=env, project_dir=project_dir, launcher_args=launcher_args) as running:
        for dag_id in dag_ids:
            running.wait_for_dag(dag_id)
        yield running


#: the machine's Redis, the CeleryExecutor tests' broker
REDIS = ("127.0.0.1", 6379)
#: ``make run EXECUTOR=celery``'s launcher with two workers and two triggerers
CELERY_ARGS = ("--executor", "celery", "--workers", "2", "--triggerers", "2")


@contextmanager
def celery_broker(db: int) -> Iterator[str]:
    """A Redis database of its own for one stack's Celery messages (its URL), emptied before and after: messages
    left by another run are never picked up."""
    import redis

    redis.Redis(*REDIS, db=db).flushdb()
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{db}"
    finally:
        redis.Redis(*REDIS, db=db).flushdb()
