"""Isolated workspaces for supervised coding agents: repos, safe edits, sandboxed tests and context.

Pure machinery with no Airflow import: the operators wrap it. The flow of one attempt::

    cache = RepoSource.resolve("https://github.com/org/repo.git", cache_root)   # read-only cache
    with Workspace.create(cache, "main", root, name) as ws:                     # a detached worktree
        context = gather_context(ws.path, paths=None, max_tokens=8000, issue=issue)
        result = apply_answer(ws.path, model_answer)                            # SEARCH/REPLACE or a diff
        tests = run_sandboxed("python -m pytest -q", ws.path, timeout_s=600)    # no network, bounded
        sha = ws.commit(branch_name(dag_id, run_id, task_id), "message") if tests.passed else None

Errors::

    WorkspaceError (Exception)        a git or filesystem step failed; says which command and where
    └── EditError                     the model's edits are unusable; the message is written for the model
        ├── EditParseError            malformed SEARCH/REPLACE markers, or a block without a file path
        └── EditApplyError            no match, several matches, a missing or existing file
            └── UnsafePathError       absolute, '..', outside the workspace (symlinks included) or under .git
"""

from __future__ import annotations

from supervisor_lib.workspace.context import Context, diff_between, estimate_tokens, gather_context, repo_map
from supervisor_lib.workspace.edits import (
    ApplyResult,
    BlockOutcome,
    EditApplyError,
    EditBlock,
    EditError,
    EditParseError,
    UnsafePathError,
    apply_answer,
    apply_edits,
    apply_patch,
    parse_edits,
    safe_path,
)
from supervisor_lib.workspace.repo import KeepPolicy, RepoSource, Workspace, WorkspaceError, branch_name, run_git
from supervisor_lib.workspace.sandbox import (
    Isolation,
    SandboxResult,
    available_isolation,
    is_secret_name,
    run_sandboxed,
    sandbox_env,
)

__all__ = [
    "ApplyResult",
    "BlockOutcome",
    "Context",
    "EditApplyError",
    "EditBlock",
    "EditError",
    "EditParseError",
    "Isolation",
    "KeepPolicy",
    "RepoSource",
    "SandboxResult",
    "UnsafePathError",
    "Workspace",
    "WorkspaceError",
    "apply_answer",
    "apply_edits",
    "apply_patch",
    "available_isolation",
    "branch_name",
    "diff_between",
    "estimate_tokens",
    "gather_context",
    "is_secret_name",
    "parse_edits",
    "repo_map",
    "run_git",
    "run_sandboxed",
    "safe_path",
    "sandbox_env",
]
