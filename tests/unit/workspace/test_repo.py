"""Repo sources and worktrees: a cache Supervisor owns, and one disposable workspace per attempt."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor_lib.workspace import RepoSource, Workspace, WorkspaceError, branch_name, run_git
from tests.unit.workspace.conftest import REPOS, make_git_repo, tree_digest


def test_a_plain_folder_is_snapshotted_into_the_cache_without_touching_it(
    copy_repo: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = copy_repo("calculator")
    before = tree_digest(folder)

    first = RepoSource.resolve(str(folder), tmp_path / "cache-a")
    again = RepoSource.resolve(str(folder), tmp_path / "cache-a")
    elsewhere = RepoSource.resolve(str(folder), tmp_path / "cache-b")

    assert first == again and first.parent == tmp_path / "cache-a"
    assert first.name.startswith("copies-calculator-")
    assert tree_digest(folder) == before, "the source folder must not change (no .git, no index)"
    head = run_git(["rev-parse", "HEAD"], first)
    assert head == run_git(["rev-parse", "HEAD"], elsewhere), "same content, same snapshot sha"
    assert run_git(["rev-list", "--count", "HEAD"], first).strip() == "1"


def test_a_changed_folder_gets_a_new_snapshot_commit(copy_repo: Callable[[str], Path], cache_root: Path) -> None:
    folder = copy_repo("clean")
    cache = RepoSource.resolve(str(folder), cache_root)
    old = run_git(["rev-parse", "HEAD"], cache)
    (folder / "NEW.txt").write_text("new\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")

    RepoSource.resolve(str(folder), cache_root)

    assert run_git(["rev-parse", "HEAD"], cache) != old
    files = run_git(["ls-tree", "-r", "--name-only", "HEAD"], cache).split()
    assert "NEW.txt" in files and not any("__pycache__" in name for name in files)


def test_a_local_git_repo_is_mirrored_and_fetched_and_never_gets_worktrees(tmp_path: Path, cache_root: Path) -> None:
    source = make_git_repo(tmp_path / "user-checkout", {"a.py": "x = 1\n"})
    cache = RepoSource.resolve(str(source), cache_root)
    (source / "a.py").write_text("x = 2\n")
    run_git(["commit", "--quiet", "-am", "second"], source)

    RepoSource.resolve(str(source), cache_root)
    ws = Workspace.create(cache, "main", tmp_path / "ws", "one")
    sha = ws.commit("supervisor/d/r/t", "agent work")
    RepoSource.resolve(str(source), cache_root)

    assert (ws.path / "a.py").read_text() == "x = 2\n", "a later resolve fetches new commits"
    assert run_git(["rev-parse", "supervisor/d/r/t"], cache).strip() == sha, "fetching keeps our branches"
    assert len(run_git(["worktree", "list"], source).splitlines()) == 1, "the user's repo gets no worktree"
    assert "supervisor/d/r/t" not in run_git(["branch", "--list"], source)
    assert not ws.path.is_relative_to(source)


def test_a_git_url_is_cloned_once_into_a_deterministic_slug(tmp_path: Path, cache_root: Path) -> None:
    source = make_git_repo(tmp_path / "upstream", {"README.md": "hi\n"})
    url = source.as_uri()

    cache = RepoSource.resolve(url, cache_root)

    assert cache == cache_root / RepoSource.slug(url)
    assert RepoSource.slug(url).startswith(f"{tmp_path.name}-upstream-")
    assert RepoSource.slug("git@github.com:org/tool.git").startswith("org-tool-")
    assert RepoSource.slug("https://github.com/org/tool.git").startswith("org-tool-")
    assert RepoSource.slug("https://github.com/org/tool") != RepoSource.slug("https://gitlab.com/org/tool")
    assert run_git(["rev-parse", "--is-bare-repository"], cache).strip() == "true"


def test_resolving_a_missing_path_or_a_bad_url_says_what_failed(tmp_path: Path, cache_root: Path) -> None:
    with pytest.raises(WorkspaceError, match="neither a git URL nor an existing directory"):
        RepoSource.resolve(str(tmp_path / "nope"), cache_root)
    with pytest.raises(WorkspaceError, match=r"`git clone --mirror.*failed in"):
        RepoSource.resolve((tmp_path / "missing.git").as_uri(), cache_root)


def test_diff_commit_reset_and_remove(workspace: Callable[..., Workspace], cache_root: Path) -> None:
    ws = workspace("calculator")
    core = ws.path / "calculator" / "core.py"
    core.write_text(core.read_text().replace("a - b", "a + b", 1))
    (ws.path / "NOTES.md").write_text("new file\n")
    (ws.path / "ISSUE.md").unlink()

    diff = ws.diff()
    assert "+    return a + b" in diff and "+++ b/NOTES.md" in diff and "deleted file mode" in diff
    assert ws.changed_files() == ["ISSUE.md", "NOTES.md", "calculator/core.py"]

    branch = branch_name("fix_dag", "manual__2024-05-01T10:00:00+00:00", "agent.edit")
    sha = ws.commit(branch, "Fix add")
    assert run_git(["rev-parse", branch], ws.cache_repo).strip() == sha
    assert run_git(["rev-parse", f"{sha}^"], ws.cache_repo).strip() == ws.base_sha

    (ws.path / "scratch.txt").write_text("left over\n")
    (ws.path / "__pycache__").mkdir()
    ws.reset()
    assert ws.diff() == ""
    assert not (ws.path / "NOTES.md").exists() and not (ws.path / "__pycache__").exists()
    assert (ws.path / "ISSUE.md").exists()

    ws.remove()
    ws.remove()  # idempotent
    assert not ws.path.exists()
    assert len(run_git(["worktree", "list"], ws.cache_repo).splitlines()) == 1


def test_an_unknown_ref_is_a_clear_error(workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    cache = workspace("clean").cache_repo
    with pytest.raises(WorkspaceError, match="ref 'no-such-branch' does not name a commit"):
        Workspace.create(cache, "no-such-branch", tmp_path / "other", "never-created")
    assert not (tmp_path / "other" / "never-created").exists()


def test_a_stale_worktree_from_an_earlier_try_is_replaced(workspace: Callable[..., Workspace]) -> None:
    first = workspace("clean", "attempt")
    (first.path / "junk.txt").write_text("from try 1\n")

    second = workspace("clean", "attempt")

    assert second.path == first.path and not (second.path / "junk.txt").exists()


def test_an_existing_foreign_directory_is_never_deleted(workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    foreign = tmp_path / "workspaces" / "taken"
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me\n")

    with pytest.raises(WorkspaceError, match="is not a worktree"):
        workspace("clean", "taken")
    assert (foreign / "precious.txt").read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("keep", "fail", "kept"),
    [
        ("never", "raise", False),
        ("on_failure", None, False),
        ("on_failure", "raise", True),
        ("on_failure", "mark", True),
        ("always", None, True),
    ],
)
def test_the_context_manager_follows_keep(
    workspace: Callable[..., Workspace], keep: str, fail: str | None, kept: bool
) -> None:
    ws = workspace("clean", keep=keep)
    with pytest.raises(RuntimeError) if fail == "raise" else contextlib.nullcontext(), ws:
        if fail == "mark":
            ws.mark_failed()
        if fail == "raise":
            raise RuntimeError("agent failed")
    assert ws.path.exists() is kept


@pytest.mark.parametrize(
    ("dag_id", "run_id", "task_id"),
    [
        ("fix_bugs", "manual__2024-05-01T10:00:00.123+00:00", "agent"),
        ("a..b", "scheduled__x~y^z?*[", "group.task.lock"),
        (".hidden", "run with spaces", "@{weird}"),
        ("", "..", "/"),
    ],
)
def test_branch_names_follow_git_ref_rules(dag_id: str, run_id: str, task_id: str, tmp_path: Path) -> None:
    name = branch_name(dag_id, run_id, task_id)
    assert name.startswith("supervisor/") and name.count("/") == 3
    run_git(["check-ref-format", "--branch", name], tmp_path)


def test_git_ignores_the_callers_git_environment(
    workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Else")
    ws = workspace("clean")
    (ws.path / "x.txt").write_text("x\n")
    sha = ws.commit("supervisor/a/b/c", "x")
    assert run_git(["log", "-1", "--format=%an", sha], ws.path).strip() == "Supervisor"


def test_git_errors_name_the_command_and_the_directory(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        run_git(["rev-parse", "HEAD"], tmp_path)
    assert "`git rev-parse HEAD`" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_commit_rejects_an_invalid_branch_name(workspace: Callable[..., Workspace]) -> None:
    with pytest.raises(WorkspaceError, match="not a valid branch name"):
        workspace("clean").commit("bad..name", "x")


def test_the_workspace_package_imports_no_airflow() -> None:
    code = "import sys, supervisor_lib.workspace; print(sorted(m for m in sys.modules if m.startswith('airflow')))"
    project = REPOS.parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
