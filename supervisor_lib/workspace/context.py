"""What the model sees of a repository: a deterministic, size-bounded context text.

The issue text or the diff under review comes first, then either the files the task names (``paths`` globs) or
a repo map (every file, with the ``def``/``class`` names of Python files) followed by the most relevant small
files. Sizes are estimated at ``CHARS_PER_TOKEN`` characters per token; everything left out is listed in
``Context.omitted`` with the reason, for the caller to log. The same repo and arguments always give the same text.
"""

from __future__ import annotations

import ast
import fnmatch
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor_lib.workspace.repo import run_git

__all__ = ["CHARS_PER_TOKEN", "Context", "diff_between", "estimate_tokens", "gather_context", "list_files", "repo_map"]

CHARS_PER_TOKEN = 4
SMALL_FILE_BYTES = 16_000  # larger files are only included when a ``paths`` glob names them
MAX_OMITTED_LISTED = 30
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_LANGUAGES = {".py": "python", ".md": "markdown", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class Context:
    """The rendered context and what it holds.

    :param text: the context to put in the prompt.
    :param files: repo-relative paths whose content is included, in order.
    :param omitted: one line per thing left out: ``"<what>: <why>"``.
    :param tokens: the estimated size of ``text``.
    """

    text: str
    files: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    tokens: int = 0


def estimate_tokens(text: str) -> int:
    """A rough token count (``CHARS_PER_TOKEN`` characters per token), good enough for budgeting."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def list_files(repo_root: Path) -> list[str]:
    """Every file of the repo as sorted POSIX paths: git's view (tracked plus untracked, not ignored) in a git
    checkout, else a walk that skips ``.git``, virtualenvs and caches; never a symlink that leads outside."""
    if (repo_root / ".git").exists():
        listed = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], repo_root)
        names = {name for name in listed.split("\0") if name and (repo_root / name).is_file()}
    else:
        names = set()
        for folder, dirs, files in os.walk(repo_root):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
            names.update(Path(folder, name).relative_to(repo_root).as_posix() for name in files)
    base = repo_root.resolve()
    return sorted(name for name in names if not _SKIP_DIRS.intersection(name.split("/")) and _inside(base, name))


def _inside(base: Path, name: str) -> bool:
    """False for a symlink that leads out of the repository or into its ``.git``: what it points at is not the
    repository's content, and may be a secret of the machine (its target would go into the prompt)."""
    real = (base / name).resolve()
    return real.is_relative_to(base) and ".git" not in real.relative_to(base).parts


def gather_context(
    repo_root: Path,
    *,
    paths: list[str] | None,
    max_tokens: int,
    diff: str | None = None,
    issue: str | None = None,
    line_numbers: bool = False,
    hint: str | None = None,
) -> Context:
    """Build the context for one task, within ``max_tokens``.

    :param paths: globs (``fnmatch``: ``*`` also crosses ``/``; ``**/`` also matches no directory; ``dir/`` means
        everything under it) naming the files to include, sorted; ``None`` means a repo map plus the most relevant
        small files.
    :param diff: a diff to review, placed first (after the issue).
    :param issue: the issue or task text, placed first.
    :param line_numbers: prefix file lines with their numbers (handy for review; not for SEARCH/REPLACE edits).
    :param hint: more text to rank the files by (e.g. the task's instructions, which the prompt shows elsewhere);
        it is not included in the context.
    """
    root = repo_root.resolve()
    budget = _Budget(max_tokens * CHARS_PER_TOKEN)
    parts: list[str] = []
    for title, body in (("Issue", issue), ("Diff under review", diff)):
        if body and body.strip():
            parts.append(budget.clip(f"## {title}\n\n{body.strip()}\n", title.lower()))
    files = list_files(root)
    if paths is not None:
        chosen, unmatched = _select(files, paths)
        budget.omitted.extend(f"{pattern}: pattern matched no files" for pattern in unmatched)
    else:
        parts.append(budget.clip(repo_map(root, files), "repo map", share=0.5))
        chosen = _ranked(root, files, f"{issue or ''}\n{diff or ''}\n{hint or ''}")
    included = _add_files(root, chosen, parts, budget, line_numbers)
    text = "\n".join(part for part in parts if part)
    return Context(text, included, budget.omitted_summary(), estimate_tokens(text))


class _Budget:
    """Characters left, and the list of what did not fit."""

    def __init__(self, chars: int) -> None:
        self.left = chars
        self.omitted: list[str] = []

    def clip(self, text: str, what: str, share: float = 1.0) -> str:
        """Take ``text`` whole if it fits in ``share`` of what is left, else its head with a cut marker."""
        room = int(self.left * share) - 1
        if len(text) > room:
            self.omitted.append(f"{what}: cut to {max(room, 0)} of {len(text)} characters (over budget)")
            text = text[: room - 60] + "\n[... cut: over the context budget ...]\n" if room > 60 else ""
        self.left -= len(text) + 1
        return text

    def fits(self, text: str) -> bool:
        # + 1 for the newline that joins the parts
        if len(text) + 1 > self.left:
            return False
        self.left -= len(text) + 1
        return True

    def omitted_summary(self) -> list[str]:
        if len(self.omitted) <= MAX_OMITTED_LISTED:
            return list(self.omitted)
        rest = len(self.omitted) - MAX_OMITTED_LISTED
        return [*self.omitted[:MAX_OMITTED_LISTED], f"... and {rest} more left out"]


def _select(files: list[str], patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Files matching any pattern (in file order) and the patterns that matched nothing."""
    chosen: set[str] = set()
    unmatched = []
    for pattern in patterns:
        clean = pattern.strip().removeprefix("./")
        hits = {name for name in files if _matches(name, clean)}
        chosen |= hits
        if not hits:
            unmatched.append(pattern)
    return sorted(chosen), unmatched


def _matches(name: str, pattern: str) -> bool:
    if pattern.endswith("/") or name.startswith(pattern + "/"):
        return name.startswith(pattern.rstrip("/") + "/")
    return any(fnmatch.fnmatchcase(name, variant) for variant in _zero_directory_variants(pattern))


def _zero_directory_variants(pattern: str) -> set[str]:
    """The pattern with each ``**/`` either kept or dropped: as in git and ``pathlib``, ``tests/**/*.py`` also
    names ``tests/test_fees.py`` (``fnmatch`` alone wants a directory between)."""
    parts = pattern.split("**/")
    variants = {parts[0]}
    for part in parts[1:]:
        variants = {variant + glue + part for variant in variants for glue in ("**/", "")}
    return variants


def repo_map(repo_root: Path, files: list[str] | None = None) -> str:
    """A file tree with the top-level ``def``/``class`` names (and methods) of each Python file."""
    lines = ["## Repository map", ""]
    for name in files if files is not None else list_files(repo_root):
        symbols = _python_symbols(repo_root / name) if name.endswith(".py") else ""
        lines.append(f"{name}: {symbols}" if symbols else name)
    return "\n".join(lines) + "\n"


def _python_symbols(path: Path) -> str:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return "(not parsable)"
    symbols = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = [n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            symbols.append(f"class {node.name}({', '.join(methods)})" if methods else f"class {node.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            symbols.append(f"def {node.name}")
    return ", ".join(symbols)


def _ranked(root: Path, files: list[str], task_text: str) -> list[str]:
    """Small files, the ones the issue or diff mentions first, then smaller before larger, then by path."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", task_text))
    changed = set(re.findall(r"^\+\+\+ b/(\S+)", task_text, flags=re.M))
    scored = []
    for name in files:
        size = (root / name).stat().st_size
        if size > SMALL_FILE_BYTES:
            continue
        stem = Path(name).stem
        score = 10 * (name in changed) + 8 * (name in task_text) + 3 * (stem in words and stem != "__init__")
        if name.endswith(".py"):
            score += 2 * min(3, len(words.intersection(re.findall(r"\w+", _python_symbols(root / name)))))
        scored.append((-score, size, name))
    return [name for _, _, name in sorted(scored)]


def _add_files(root: Path, names: list[str], parts: list[str], budget: _Budget, line_numbers: bool) -> list[str]:
    included = []
    for name in names:
        text = _text_of(root / name)
        if text is None:
            budget.omitted.append(f"{name}: binary or not UTF-8")
            continue
        block = _fenced(name, text, line_numbers)
        if budget.fits(block):
            parts.append(block)
            included.append(name)
        else:
            budget.omitted.append(f"{name}: over budget (~{estimate_tokens(block)} tokens)")
    return included


def _text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _fenced(name: str, text: str, line_numbers: bool) -> str:
    if line_numbers:
        text = "".join(f"{n:>5} | {line}\n" for n, line in enumerate(text.splitlines(), 1))
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`{3,}", text)), default=0))
    language = _LANGUAGES.get(Path(name).suffix, "")
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"### {name}\n{fence}{language}\n{body}{fence}\n"


def diff_between(repo: Path, base_ref: str, head_ref: str) -> str:
    """The changes ``head_ref`` made since it forked from ``base_ref`` (``git diff base...head``), as for a PR."""
    return run_git(["diff", "--no-color", "--no-ext-diff", f"{base_ref}...{head_ref}"], repo)
