"""Which repositories a run triggered from outside may name (the ``supervisor_task`` DAG's ``repo``).

Whoever may trigger that DAG chooses the repository a model edits and whose tests run on a worker, so the choice is
checked against settings the platform team owns, never against the request:

================================  ===================================================================================
setting                           what it allows
================================  ===================================================================================
``SUPERVISOR_TASK_REPO_ROOTS``    local repositories under these folders (separated by ``:`` or ``,``); default
                                  the project's ``include/repos``
``SUPERVISOR_TASK_REPO_REMOTES``  git URLs that start with one of these prefixes (separated by ``,`` or spaces),
                                  e.g. ``https://github.com/acme/,git@github.com:acme/``; default none
================================  ===================================================================================

A local path is resolved with every symlink followed and must stay inside a root; ``..`` segments, ``~``, ``file://``
and other transports, URLs carrying credentials, option-like values and NUL bytes are refused outright. Every refusal
is a :class:`RepoRefused` that names the setting to change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REF_PATTERN", "REMOTES_ENV", "ROOTS_ENV", "RepoPolicy", "RepoRefused", "check_ref", "describe"]

ROOTS_ENV = "SUPERVISOR_TASK_REPO_ROOTS"
REMOTES_ENV = "SUPERVISOR_TASK_REPO_REMOTES"
#: the transports a remote may use (``file://``, ``ext::`` and local clones by URL are never accepted)
_SCHEMES = ("https://", "ssh://", "git@")
_SCP = re.compile(r"^[\w.-]+@[\w.-]+:")
#: a branch, tag or commit name as a JSON Schema / regex pattern (never an option: it cannot start with ``-``)
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/@^~+-]{0,199}$"
_REF = re.compile(REF_PATTERN)


class RepoRefused(ValueError):
    """A repository (or ref) the settings do not allow; the message names the setting to change."""


@dataclass(frozen=True)
class RepoPolicy:
    """The allowed local roots (resolved) and remote prefixes."""

    roots: tuple[Path, ...]
    remotes: tuple[str, ...]

    @classmethod
    def from_env(cls, project_root: Path) -> RepoPolicy:
        """From :data:`ROOTS_ENV` (default ``<project_root>/include/repos``) and :data:`REMOTES_ENV`."""
        raw_roots = os.environ.get(ROOTS_ENV)
        roots = (
            [part for part in re.split(r"[:,]", raw_roots) if part.strip()]
            if raw_roots is not None
            else [str(project_root / "include" / "repos")]
        )
        remotes = [part for part in re.split(r"[,\s]+", os.environ.get(REMOTES_ENV, "")) if part]
        return cls(tuple(Path(root.strip()).expanduser().resolve() for root in roots), tuple(remotes))

    def check(self, repo: str, project_root: Path) -> str:
        """``repo`` as the coding task will use it (a resolved local path, or the URL as given), or
        :class:`RepoRefused`. A relative path is taken from ``project_root``."""
        if not repo or not repo.strip():
            raise RepoRefused("repo: empty; give a local path under SUPERVISOR_TASK_REPO_ROOTS or an allowed git URL")
        if "\x00" in repo or any(ord(char) < 32 for char in repo):
            raise RepoRefused("repo: control characters are not allowed")
        if repo.startswith("-"):
            raise RepoRefused(f"repo: {repo[:80]!r} looks like a command-line option")
        if "://" in repo or _SCP.match(repo) or "::" in repo:
            return self._remote(repo)
        return self._local(repo, project_root)

    def _remote(self, url: str) -> str:
        if not url.startswith(_SCHEMES):
            raise RepoRefused(
                f"repo: {_shown(url)} uses a transport that is not accepted (only https://, ssh:// and git@host:"
                f" URLs; local repositories are given as paths under {ROOTS_ENV})"
            )
        if "/../" in url or url.endswith("/..") or "/./" in url:
            raise RepoRefused(f"repo: {_shown(url)} has '..' or '.' segments")
        authority = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
        if "@" in authority and (url.startswith("https://") or ":" in authority.split("@", 1)[0]):
            raise RepoRefused(
                "repo: the URL carries credentials; give the workers access through their git credential"
                " configuration instead (the URL would be stored in the run's conf)"
            )
        if not any(_under_prefix(url, prefix) for prefix in self.remotes):
            allowed = ", ".join(self.remotes) or "none configured"
            raise RepoRefused(
                f"repo: {_shown(url)} is not from an allowed remote (allowed: {allowed}); a platform admin adds"
                f" its prefix to {REMOTES_ENV}"
            )
        return url

    def _local(self, repo: str, project_root: Path) -> str:
        given = Path(repo)
        if repo.startswith("~") or ".." in given.parts:
            raise RepoRefused(f"repo: {_shown(repo)} may not contain '..' or start with '~'")
        resolved = (given if given.is_absolute() else project_root / given).resolve()
        inside = [root for root in self.roots if resolved == root or resolved.is_relative_to(root)]
        if not inside:
            allowed = ", ".join(str(root) for root in self.roots) or "none configured"
            raise RepoRefused(
                f"repo: {_shown(repo)} is not under an allowed folder (after following symlinks; allowed:"
                f" {allowed}); a platform admin adds the folder to {ROOTS_ENV}"
            )
        if not resolved.is_dir():
            raise RepoRefused(f"repo: {_shown(repo)} is not a folder (a git repository, or a folder that is copied)")
        return str(resolved)


def check_ref(ref: str) -> str:
    """A git ref safe to pass to git (no option, no ``..``), or :class:`RepoRefused`."""
    if not _REF.match(ref or "") or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise RepoRefused(f"ref: {_shown(ref)} is not a branch, tag or commit name")
    return ref


def _under_prefix(url: str, prefix: str) -> bool:
    """``url`` starts with ``prefix`` at a path boundary (``https://h/acme`` allows ``https://h/acme/x``, not
    ``https://h/acme-evil/x``)."""
    if not url.startswith(prefix):
        return False
    return prefix.endswith(("/", ":")) or len(url) == len(prefix) or url[len(prefix)] in "/:"


def _shown(text: str) -> str:
    return repr(text[:120] + ("..." if len(text) > 120 else ""))


def describe(policy: RepoPolicy) -> Sequence[str]:
    """The policy in words (the DAG's docs and its ``request`` task's log)."""
    return [f"local repositories under: {', '.join(str(r) for r in policy.roots) or 'none'}",
            f"remotes starting with: {', '.join(policy.remotes) or 'none'}"]  # fmt: skip
