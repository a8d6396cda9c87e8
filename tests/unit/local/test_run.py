"""``make run``'s choices of processes and settings for each executor (the processes themselves run in
``tests/integration/test_make_run.py`` and ``test_celery.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib.local.run import CELERY_BROKER, Topology, airflow_env, main


def test_the_local_executor_runs_one_of_each_component() -> None:
    assert [name for name, _ in Topology().components()] == ["scheduler", "dag-processor", "triggerer", "api-server"]


def test_celery_adds_named_workers_and_several_triggerers_are_numbered() -> None:
    found = dict(Topology("celery", workers=3, triggerers=2).components())
    assert list(found) == ["scheduler", "dag-processor", "triggerer-1", "triggerer-2", "api-server", "celery-worker-1",
                           "celery-worker-2", "celery-worker-3"]  # fmt: skip
    assert found["celery-worker-2"] == ["celery", "worker", "--skip-serve-logs", "--celery-hostname", "worker2@%h"]
    assert found["triggerer-1"] == ["triggerer", "--skip-serve-logs"]


def test_celery_settings_share_the_machine_and_keep_results_in_the_metadata_db(tmp_path: Path) -> None:
    base = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres@127.0.0.1:5432/mine"}
    env = airflow_env(tmp_path, tmp_path, 8080, base, topology=Topology("celery", workers=2))
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == CELERY_BROKER
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/mine"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "2"  # parallelism 4 between 2 workers
    local = airflow_env(tmp_path, tmp_path, 8080, {})
    assert local["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and "AIRFLOW__CELERY__BROKER_URL" not in local


def test_celery_on_sqlite_is_refused_with_what_to_set(tmp_path: Path) -> None:
    base = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}"}
    with pytest.raises(SystemExit, match="needs a PostgreSQL or MySQL metadata DB, not sqlite: set "
                                         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):  # fmt: skip
        airflow_env(tmp_path, tmp_path, 8080, base, topology=Topology("celery"))


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--triggerers", "0"], ["--executor", "kubernetes"]])
def test_bad_launcher_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert "error:" in capsys.readouterr().err


def test_a_component_that_dies_is_started_again_a_few_times_then_make_run_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from supervisor_lib.local import run

    monkeypatch.setattr(run, "_airflow", lambda: "/bin/sh")  # a "scheduler" that dies at once, every time
    (tmp_path / "logs").mkdir()
    (tmp_path / "pids").mkdir()
    launcher = run.Launcher(root=tmp_path, port=0, home=tmp_path)
    run._spawn(launcher, "scheduler", ["-c", "exit 3"], {"PATH": "/usr/bin:/bin"})
    first = (tmp_path / "pids" / "scheduler.pid").read_text()
    with pytest.raises(SystemExit, match="the Airflow scheduler exited with code 3"):
        run.wait_until("Ctrl-C", lambda: False, launcher, timeout=60)
    assert len(launcher.restarts["scheduler"]) == run.MAX_RESTARTS
    assert (tmp_path / "pids" / "scheduler.pid").read_text() != first, "the pid file names the new process"
    said = capsys.readouterr()
    assert said.out.count("restarting it") + said.err.count("restarting it") == run.MAX_RESTARTS
