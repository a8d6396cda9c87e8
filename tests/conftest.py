"""Test-session set-up shared by every test.

Before anything imports Airflow, point it at a throw-away Airflow home and pick the metadata DB: a fresh
PostgreSQL database when the server on 127.0.0.1:5432 answers (CI and this machine), else SQLite — and say which
in the report header, so every run log shows the dialect it used. The DB itself is migrated lazily, only for the
tests that need it (the ``airflow_db`` fixture).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import DatabaseChoice, choose_databases

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="supervisor-tests-"))
DATABASES: DatabaseChoice = choose_databases(_HOME)

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": DATABASES.airflow_url,
        # dag.test() needs its DAG file inside the configured DAGs folder: tests write theirs here.
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API_AUTH__JWT_SECRET": "supervisor-tests-" + "0" * 47,  # 64 bytes, as HS512 wants
        "SUPERVISOR_HOME": str(_HOME),
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": DATABASES.analytics_connection(),
        # Validation may run unsandboxed where no isolation works (a fresh laptop): the isolation tests then skip
        # and say why; tests of the refusal set "isolated" themselves.
        "SUPERVISOR_SANDBOX_MIN": "none",
    }
)
# Tests never see real provider keys, whatever the developer's shell holds.
for _key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
    os.environ.pop(_key, None)

pytest_plugins = ["supervisor_lib.testing.pytest_plugin"]


#: ``SUPERVISOR_REQUIRE=security,browser,ui,scaleout`` (what ``.ci/run`` sets): a test with one of these markers that
#: skips fails instead, so CI can never go green without the sandbox, browser, UI and Celery tests having run
REQUIRED = {name.strip() for name in os.environ.get("SUPERVISOR_REQUIRE", "").split(",") if name.strip()}


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.support.optional import describe_optional_parts

    return [
        f"metadata DB: {DATABASES.describe()}",
        f"analytics store: {DATABASES.analytics_url.split('://', 1)[0]}",
        *describe_optional_parts(),
        f"required to run (SUPERVISOR_REQUIRE): {', '.join(sorted(REQUIRED)) or 'nothing'}",
        f"AIRFLOW_HOME: {_HOME}",
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    required = REQUIRED.intersection(mark.name for mark in item.iter_markers())
    if report.skipped and required and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"a {'/'.join(sorted(required))} test may not skip here (SUPERVISOR_REQUIRE): {reason}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if "airflow.settings" in sys.modules:  # close pooled connections before the databases are dropped
        sys.modules["airflow.settings"].dispose_orm()
    DATABASES.drop()
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[DatabaseChoice]:
    """A migrated Airflow metadata DB (PostgreSQL when reachable, else SQLite), shared by the session."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    yield DATABASES


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The configured DAGs folder, where tests put the DAG files they run with ``dag.test()``."""
    folder = _HOME / "dags"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example plugin package (examples/supervisor-openai-compatible) installed into a folder of its own, which
    is first on ``sys.path`` and ``PYTHONPATH`` for the session (``tests/support/plugins.py`` says how and why)."""
    from tests.support.plugins import install_example, on_path

    with on_path(install_example(tmp_path_factory.mktemp("site-packages"))) as folder:
        yield folder
