"""Shared helpers for the workspace tests: sample repos copied or resolved into temporary directories."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor_lib.workspace import RepoSource, Workspace, run_git

REPOS = Path(__file__).resolve().parents[2] / "fixtures" / "repos"


def tree_digest(root: Path) -> dict[str, str]:
    """Path -> content hash (or symlink target) of everything under ``root``, to prove a tree is untouched."""
    digest = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            digest[key] = "-> " + str(path.readlink())
        elif path.is_file():
            digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[key] = "dir"
    return digest


def make_git_repo(path: Path, files: dict[str, str]) -> Path:
    """A normal git repo at ``path`` with ``files`` committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    run_git(["init", "--quiet", "--initial-branch=main"], path)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    run_git(["add", "--all"], path)
    run_git(["commit", "--quiet", "-m", "initial"], path)
    return path


@pytest.fixture
def copy_repo(tmp_path: Path) -> Callable[[str], Path]:
    """``copy_repo("calculator")`` copies a sample repo into ``tmp_path`` and returns the copy."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(REPOS / name, tmp_path / "copies" / name))

    return copy


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def workspace(tmp_path: Path, cache_root: Path) -> Callable[..., Workspace]:
    """``workspace("calculator")`` resolves a sample repo into the cache and adds a worktree of its HEAD."""

    def create(name: str, ws_name: str = "ws", **kwargs: object) -> Workspace:
        cache = RepoSource.resolve(str(REPOS / name), cache_root)
        return Workspace.create(cache, "HEAD", tmp_path / "workspaces", ws_name, **kwargs)  # type: ignore[arg-type]

    return create
