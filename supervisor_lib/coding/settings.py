"""Where supervised coding tasks keep their files: workspaces, the repo cache, artifacts, and the project root.

Every location comes from an environment variable when set, else from ``$AIRFLOW_HOME`` (default ``~/airflow``):

=============================  ============================================  ==========================================
what                           variable                                      default
=============================  ============================================  ==========================================
isolated workspaces            ``SUPERVISOR_WORKSPACE_ROOT``                 ``$AIRFLOW_HOME/supervisor_workspaces``
read-only repo cache           ``SUPERVISOR_REPO_CACHE``                     ``$AIRFLOW_HOME/supervisor_repo_cache``
artifacts (path or URL)        ``SUPERVISOR_ARTIFACTS_ROOT``                 ``$AIRFLOW_HOME/supervisor_artifacts``
project root (relative repos)  ``SUPERVISOR_PROJECT_ROOT``                   the folder holding ``include/`` above the
                                                                             spec file, else the current directory
=============================  ============================================  ==========================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Roots", "airflow_home", "find_project_root", "is_url", "resolve_repo", "safe_segment"]


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``, or Airflow's own default ``~/airflow``."""
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


@dataclass(frozen=True)
class Roots:
    """The three folders a coding task uses; ``artifacts`` may be an object-storage URL (``s3://bucket/x``).

    :param workspaces: one git worktree per task instance is created under it.
    :param repo_cache: the read-only clones (or snapshots) of the repos, where result branches are committed.
    :param artifacts: one folder per task instance: ``<dag_id>/<run_id>/<task_id>[/<map_index>]``.
    """

    workspaces: Path
    repo_cache: Path
    artifacts: str

    @classmethod
    def from_env(cls) -> Roots:
        """The roots from the environment (see the module docstring)."""
        home = airflow_home()
        return cls(
            workspaces=_from_env("SUPERVISOR_WORKSPACE_ROOT", home / "supervisor_workspaces"),
            repo_cache=_from_env("SUPERVISOR_REPO_CACHE", home / "supervisor_repo_cache"),
            artifacts=os.environ.get("SUPERVISOR_ARTIFACTS_ROOT") or str(home / "supervisor_artifacts"),
        )


def is_url(repo: str) -> bool:
    """True for git URLs (``https://``, ``ssh://``, ``file://``, ``git@host:path``) and object-storage URLs."""
    return "://" in repo or bool(re.match(r"^[\w.-]+@[\w.-]+:", repo))


def find_project_root(spec_file: str | None) -> Path:
    """The project root: ``SUPERVISOR_PROJECT_ROOT``, else the nearest folder above ``spec_file`` that holds an
    ``include/`` folder, else the current directory."""
    configured = os.environ.get("SUPERVISOR_PROJECT_ROOT")
    if configured:
        return Path(configured).expanduser().resolve()
    if spec_file:
        for folder in Path(spec_file).resolve().parents:
            if (folder / "include").is_dir():
                return folder
    return Path.cwd()


def resolve_repo(repo: str, project_root: Path) -> str:
    """A URL or absolute path as given; a relative path (``include/repos/payments``) against ``project_root``."""
    if is_url(repo):
        return repo
    path = Path(repo).expanduser()
    return str(path if path.is_absolute() else (project_root / path).resolve())


def safe_segment(text: str) -> str:
    """One path segment made of ``[A-Za-z0-9._+-]`` (run ids hold ``:``), never empty, ``.`` or ``..``."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip(".")
    return cleaned or "_"
