"""What both kinds of coding job share: the repo target, deterministic workspace and branch names, artifacts.

Names derive from the task instance only (dag, run, task, map index — never the try number), so a retried
task replaces its own stale worktree, commits to the same branch and writes to the same artifact folder:
together with the response cache this is what makes a retry reach the same state.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from supervisor_lib.coding.artifacts import ArtifactFolder
from supervisor_lib.coding.settings import Roots, safe_segment
from supervisor_lib.workspace import KeepPolicy, RepoSource, Workspace, branch_name
from supervisor_lib.workspace.context import list_files

if TYPE_CHECKING:
    from supervisor_lib.execution.runner import CallScope

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "Log",
    "Target",
    "artifact_folder",
    "line_counts",
    "open_workspace",
    "read_input_file",
    "task_branch",
    "validation_env",
    "workspace_name",
]

DEFAULT_CONTEXT_TOKENS = 12000


class Log(Protocol):
    """The logging calls jobs make (``logging.Logger`` and Airflow's task logger both fit)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...

    def error(self, msg: str, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Target:
    """The code a job works on.

    :param repo: a git URL or an absolute local path (a git repo or a plain folder).
    :param ref: the commit, branch or tag to check out; ``HEAD`` is the default branch (or the folder's snapshot).
    :param paths: globs of the files to put in the prompt; ``None`` for a repo map plus the most relevant files.
    :param context_tokens: the prompt's context budget (estimated tokens).
    """

    repo: str
    ref: str = "HEAD"
    paths: tuple[str, ...] | None = None
    context_tokens: int = DEFAULT_CONTEXT_TOKENS


def workspace_name(scope: CallScope) -> str:
    """``<dag>--<task>[-<map>]--<hash>``: readable, short, unique per task instance, the same for every try."""
    key = "\0".join((scope.dag_id, scope.run_id, scope.task_id, str(scope.map_index)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    task = scope.task_id + (f"-{scope.map_index}" if scope.map_index >= 0 else "")
    return f"{safe_segment(scope.dag_id)[:60]}--{safe_segment(task)[:60]}--{digest}"


def task_branch(scope: CallScope) -> str:
    """``supervisor/<dag_id>/<run_id>/<task_id>`` (``<task_id>-<map_index>`` for a mapped task)."""
    task = scope.task_id + (f"-{scope.map_index}" if scope.map_index >= 0 else "")
    return branch_name(scope.dag_id, scope.run_id, task)


def artifact_folder(scope: CallScope, roots: Roots) -> ArtifactFolder:
    """The task instance's artifact folder."""
    return ArtifactFolder.for_task(roots.artifacts, scope.dag_id, scope.run_id, scope.task_id, scope.map_index)


def open_workspace(target: Target, scope: CallScope, roots: Roots, keep: KeepPolicy = "never") -> Workspace:
    """Resolve the repo into the cache (never touching the user's checkout) and add this task's worktree."""
    cache = RepoSource.resolve(target.repo, roots.repo_cache)
    return Workspace.create(cache, target.ref, roots.workspaces, workspace_name(scope), keep)


def line_counts(root: Path) -> dict[str, int]:
    """Every file of the workspace and its number of lines (for checking the lines a report cites)."""
    counts = {}
    for name in list_files(root):
        try:
            counts[name] = (root / name).read_bytes().count(b"\n") + 1
        except OSError:
            continue
    return counts


def read_input_file(name: str, workspace: Path, project_root: Path) -> str:
    """A spec's ``issue_file`` / ``patch_file``: absolute, else in the repo, else under the project root.

    :raises FileNotFoundError: naming the places looked in.
    """
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [workspace / path, project_root / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")
    raise FileNotFoundError(f"{name!r} not found (looked in {', '.join(str(c) for c in candidates)})")


def validation_env() -> dict[str, str]:
    """Variables for the validation command: ``PATH`` with this interpreter's folder first, so ``python -m
    pytest`` runs with the Python (and packages) the worker runs with."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
