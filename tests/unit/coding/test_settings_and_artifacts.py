"""Roots from the environment, the project root, repo resolution, and the artifact folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor_lib.coding.artifacts import ArtifactFolder, read_artifact
from supervisor_lib.coding.jobs import task_branch, workspace_name
from supervisor_lib.coding.settings import Roots, find_project_root, resolve_repo, safe_segment
from supervisor_lib.execution.runner import CallScope


def test_roots_default_under_airflow_home_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SUPERVISOR_WORKSPACE_ROOT", "SUPERVISOR_REPO_CACHE", "SUPERVISOR_ARTIFACTS_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert Roots.from_env() == Roots(
        tmp_path / "supervisor_workspaces", tmp_path / "supervisor_repo_cache", str(tmp_path / "supervisor_artifacts")
    )
    monkeypatch.setenv("SUPERVISOR_WORKSPACE_ROOT", "/w")
    monkeypatch.setenv("SUPERVISOR_ARTIFACTS_ROOT", "s3://bucket/artifacts")
    roots = Roots.from_env()
    assert roots.workspaces == Path("/w") and roots.artifacts == "s3://bucket/artifacts"


def test_the_project_root_is_the_folder_holding_include(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SUPERVISOR_PROJECT_ROOT", raising=False)
    spec = tmp_path / "proj" / "include" / "specs" / "x.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text("tasks: []")
    assert find_project_root(str(spec)) == tmp_path / "proj"
    assert resolve_repo("include/repos/payments", tmp_path / "proj") == str(tmp_path / "proj/include/repos/payments")
    assert resolve_repo("https://github.com/o/r.git", tmp_path) == "https://github.com/o/r.git"
    assert resolve_repo("git@github.com:o/r.git", tmp_path) == "git@github.com:o/r.git"
    assert resolve_repo("/abs/repo", tmp_path) == "/abs/repo"
    monkeypatch.setenv("SUPERVISOR_PROJECT_ROOT", str(tmp_path))
    assert find_project_root(str(spec)) == tmp_path


def test_names_are_per_task_instance_and_safe() -> None:
    scope = CallScope("dag", "manual__2026-01-01T00:00:00+00:00", "fix", map_index=2, try_number=1)
    retry = CallScope("dag", "manual__2026-01-01T00:00:00+00:00", "fix", map_index=2, try_number=3)
    other = CallScope("dag", "manual__2026-01-01T00:00:00+00:00", "fix", map_index=3)
    assert workspace_name(scope) == workspace_name(retry) != workspace_name(other)
    assert workspace_name(scope).startswith("dag--fix-2--") and "/" not in workspace_name(scope)
    assert task_branch(scope) == "supervisor/dag/manual__2026-01-01T00-00-00+00-00/fix-2"
    assert safe_segment("..") == "_" and safe_segment("a/b:c") == "a_b_c"


def test_artifacts_go_to_one_folder_per_task_instance(tmp_path: Path) -> None:
    folder = ArtifactFolder.for_task(str(tmp_path), "dag", "manual__2026-01-01T00:00:00+00:00", "fix", 0)
    location = folder.write_json("result.json", {"status": "passed"})
    assert location == f"{tmp_path}/dag/manual__2026-01-01T00_00_00+00_00/fix/0/result.json"
    assert json.loads(read_artifact(location)) == {"status": "passed"}
    folder.clear()
    assert not Path(folder.location).exists()
    assert ArtifactFolder.for_task(str(tmp_path), "d", "r", "t").location == f"{tmp_path}/d/r/t"


def test_a_url_root_goes_through_object_storage(tmp_path: Path) -> None:
    folder = ArtifactFolder.for_task(f"file://{tmp_path}/store", "dag", "run:1", "t")
    location = folder.write_text("patch.diff", "diff --git a/x b/x\n")
    assert location == f"file://{tmp_path}/store/dag/run_1/t/patch.diff"
    assert read_artifact(location) == "diff --git a/x b/x\n"
    assert (tmp_path / "store/dag/run_1/t/patch.diff").is_file()
    folder.clear()
    assert not (tmp_path / "store/dag/run_1/t").exists()
