"""An experiment in a real DAG run (``dag.test()``): the task is mapped over its arms, each map index is named after
its arm in Airflow, each arm runs its own model, and each arm's outcome lands in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib.analytics.experiments import experiment_report
from supervisor_lib.store import get_store
from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.coding import GOOD_FIX, WRONG_FIX
from tests.support.connections import use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

REPO = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "calculator"
SPEC = """
dag_id: experiment_e2e
schedule: null
repo: {repo}
defaults: {{provider: anthropic, model: claude-sonnet-4-6, retries: 0}}
tasks:
  - id: fix
    type: bug_fix
    instructions: EXPERIMENT fix add.
    validate: {{command: "python -m pytest -q", timeout: 60}}
    max_iterations: 1
    experiment:
      name: e2e-models
      arms: [{{name: sonnet}}, {{name: haiku, model: claude-haiku-4-5}}]
"""


def test_each_arm_is_a_named_map_index_with_its_own_model_and_row(
    airflow_db: object, dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with FakeProviderServer(strict=True) as server:
        use_fake_provider(monkeypatch, server)
        for name in ("WORKSPACE_ROOT", "REPO_CACHE", "ARTIFACTS_ROOT"):
            monkeypatch.setenv(f"SUPERVISOR_{name}", str(tmp_path / name.lower()))
        server.add_rules([Rule(model="claude-haiku-4-5", match="EXPERIMENT", text=WRONG_FIX),
                          Rule(match="EXPERIMENT", text=GOOD_FIX)])  # fmt: skip
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "experiment_e2e.yaml").write_text(SPEC.format(repo=REPO))
        specs = str(tmp_path / "specs")
        loader = f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), specs_dir={specs!r})\n'
        run = run_dag_file(dags_folder, "experiment_e2e_loader.py", loader, "experiment_e2e")
        models = [call.body.get("model") for call in server.calls if call.path == "/v1/messages"]

    assert task_states(run) == {"fix[0]": "success", "fix[1]": "failed"}
    with create_session() as session:
        names = {ti.map_index: ti.rendered_map_index for ti in session.query(TaskInstance).filter_by(
            dag_id="experiment_e2e", run_id=run.run_id)}  # fmt: skip
    assert names == {0: "sonnet", 1: "haiku"}
    assert sorted(models) == ["claude-haiku-4-5", "claude-sonnet-4-6"]
    assert xcom(run, "fix", 0)["experiment"] == {"name": "e2e-models", "arm": "sonnet"}
    report = experiment_report(get_store(), "e2e-models", dag_ids={"experiment_e2e"})
    rows = {arm["arm"]: arm for arm in report["arms"]}
    assert rows["sonnet"]["passed"] == 1 and rows["haiku"]["passed"] == 0
    assert rows["sonnet"]["models"] == ["anthropic:claude-sonnet-4-6"]
    assert rows["haiku"]["statuses"] == {"failed": 1}
