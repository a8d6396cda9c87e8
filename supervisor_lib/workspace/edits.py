"""Apply a model's edits to a workspace, safely and all-or-nothing.

The default format is Aider's SEARCH/REPLACE block: the file path alone on a line, then::

    <<<<<<< SEARCH
    exact existing lines
    =======
    replacement lines
    >>>>>>> REPLACE

An answer may hold several blocks, with or without ``` fences around them (the path may sit inside the fence or
just before it); prose between blocks is ignored. An empty SEARCH creates the file; if the file already exists
and is not empty that is an error, so a model never overwrites a file it has not quoted. Unified diffs
(``--- a/x`` / ``+++ b/x`` / ``@@``) are accepted too, through ``git apply``.

Every error message is written to be fed back to the model: it names the block, the file and what to change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from supervisor_lib.workspace.repo import WorkspaceError, run_git

__all__ = [
    "MAX_FILE_BYTES",
    "ApplyResult",
    "BlockOutcome",
    "EditApplyError",
    "EditBlock",
    "EditError",
    "EditParseError",
    "UnsafePathError",
    "apply_answer",
    "apply_edits",
    "apply_patch",
    "parse_edits",
    "safe_path",
]

_SEARCH = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={5,9}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FORMAT_HINT = (
    "Each edit is: the file path alone on a line, <<<<<<< SEARCH, the lines to find, =======, the new lines, "
    ">>>>>>> REPLACE."
)
Match = Literal["exact", "trailing_whitespace", "indentation", "new_file"]
#: the largest file edits may produce (a file already larger may still shrink): model output is text, not data
MAX_FILE_BYTES = 1024 * 1024


class EditError(WorkspaceError):
    """The model's edits could not be used; the message is written to be sent back to the model."""


class EditParseError(EditError):
    """The answer's edit blocks are malformed (a marker is missing, or a block has no file path)."""


class EditApplyError(EditError):
    """A block does not fit the files: no match, several matches, a missing or existing file, an unsafe path."""


class UnsafePathError(EditApplyError):
    """A path is absolute, climbs out with ``..``, resolves outside the workspace or points into ``.git``."""


@dataclass(frozen=True)
class EditBlock:
    """One SEARCH/REPLACE block: ``search`` empty means "create ``path``". ``index`` and ``line`` are 1-based."""

    path: str
    search: str
    replace: str
    index: int = 1
    line: int = 1

    @property
    def creates_file(self) -> bool:
        return not self.search.strip()


@dataclass(frozen=True)
class BlockOutcome:
    """How one block was applied: how SEARCH matched and at which 1-based line of the file."""

    index: int
    path: str
    match: Match
    line: int


@dataclass(frozen=True)
class ApplyResult:
    """The files written (relative to the workspace, sorted) and the outcome of each block, in order."""

    files_changed: tuple[str, ...]
    outcomes: tuple[BlockOutcome, ...]


def parse_edits(text: str) -> list[EditBlock]:
    """Parse every SEARCH/REPLACE block in a model's answer, strictly.

    :raises EditParseError: a marker is missing or out of order, or a block has no file path before it.
    """
    lines = re.split(r"\r?\n", text)
    blocks: list[EditBlock] = []
    i = 0
    while i < len(lines):
        if _REPLACE.match(lines[i]):
            raise EditParseError(f"line {i + 1}: '>>>>>>> REPLACE' has no '<<<<<<< SEARCH' before it. {_FORMAT_HINT}")
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        number, start = len(blocks) + 1, i
        path = _path_before(lines, i, number)
        search, i = _section(lines, i + 1, number, start, stop=_DIVIDER, marker="=======")
        replace, i = _section(lines, i + 1, number, start, stop=_REPLACE, marker=">>>>>>> REPLACE")
        blocks.append(EditBlock(path, _joined(search), _joined(replace), number, start + 1))
        i += 1
    return blocks


def _path_before(lines: list[str], marker: int, number: int) -> str:
    """The path on the nearest line above the SEARCH marker that is neither blank nor a fence."""
    j = marker - 1
    while j >= 0 and (not lines[j].strip() or _FENCE.match(lines[j])):
        j -= 1
    found = lines[j].strip() if j >= 0 else ""
    path = found.lstrip("#").strip().strip("`*").rstrip(":").strip("`*")
    if not path or re.search(r"\s", path) or _REPLACE.match(found) or _DIVIDER.match(found):
        shown = f"found {found!r}" if found else "found nothing"
        raise EditParseError(
            f"edit block {number} (line {marker + 1}): expected the file path alone on the line just before "
            f"'<<<<<<< SEARCH' (or before its ``` fence), {shown}. {_FORMAT_HINT}"
        )
    return path


def _section(
    lines: list[str], i: int, number: int, start: int, *, stop: re.Pattern[str], marker: str
) -> tuple[list[str], int]:
    """Collect lines from ``i`` up to the ``stop`` marker; return them and the marker's index."""
    forbidden = (_SEARCH,) if stop is _REPLACE else (_SEARCH, _REPLACE)
    collected: list[str] = []
    while i < len(lines) and not stop.match(lines[i]):
        if any(pattern.match(lines[i]) for pattern in forbidden):
            break
        collected.append(lines[i])
        i += 1
    if i >= len(lines) or not stop.match(lines[i]):
        where = f"line {i + 1}" if i < len(lines) else "the end of the answer"
        raise EditParseError(
            f"edit block {number} (starting at line {start + 1}): missing '{marker}' before {where}. {_FORMAT_HINT}"
        )
    return collected, i


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def safe_path(root: Path, relative: str) -> Path:
    """Resolve ``relative`` to a real path inside ``root``, following symlinks, or raise.

    :raises UnsafePathError: the path is empty, absolute, uses ``\\`` or ``..``, names anything under ``.git``
        (in any spelling git itself refuses: any case, trailing dots or spaces, ``git~1``, ``.git:stream``),
        resolves outside ``root`` (through a symlink, say), or is a directory or another non-regular file (a FIFO
        would block the write forever).
    """
    base = root.resolve()
    problem = _spelling_problem(relative)
    real = base if problem else (base / relative).resolve()  # a path with NUL would raise ValueError here
    problem = problem or _target_problem(base, real)
    if problem:
        raise UnsafePathError(f"path {relative!r} {problem}")
    return real


def _spelling_problem(relative: str) -> str | None:
    """What is wrong with the path as written, before any symlink is followed."""
    pure = PurePosixPath(relative)
    if not relative or "\0" in relative or "\\" in relative:
        return "is empty or contains '\\' or NUL (use '/' between folders)"
    if not relative.isascii() and not _encodes(relative):
        return "is not valid UTF-8 (it holds a lone surrogate)"
    if pure.is_absolute() or relative.startswith("~") or re.match(r"^[A-Za-z]:", relative):
        return "is absolute; give it relative to the repository root"
    if ".." in pure.parts:
        return "contains '..'; give it relative to the repository root"
    if any(_is_dotgit(part) for part in pure.parts):
        return "is inside .git, which edits may not touch"
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _target_problem(base: Path, real: Path) -> str | None:
    """What is wrong with where the path leads, symlinks followed."""
    if not real.is_relative_to(base):
        return "resolves outside the repository (through a symbolic link)"
    if any(_is_dotgit(part) for part in real.relative_to(base).parts):
        return "is inside .git, which edits may not touch"
    if real == base or real.is_dir():
        return "is a directory, not a file"
    if real.exists() and not real.is_file():
        return "is not a regular file (a FIFO, socket or device); edits write regular files only"
    return None


#: characters HFS+ ignores in names, so ``.g\u200cit`` is ``.git`` there (git refuses them the same way)
_HFS_IGNORED = dict.fromkeys(
    map(ord, "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff")
)


def _is_dotgit(part: str) -> bool:
    """True for a path component git treats as its own ``.git``: any case, trailing dots or spaces (NTFS drops
    them), an NTFS stream suffix (``.git::$INDEX_ALLOCATION``), the short name ``git~1`` or HFS-ignored characters."""
    name = part.translate(_HFS_IGNORED).split(":", 1)[0].rstrip(" .").casefold()
    return name in (".git", "git~1")


def apply_edits(workspace_root: Path, blocks: Sequence[EditBlock]) -> ApplyResult:
    """Apply ``blocks`` in order, all or nothing: every block is checked in memory before any file is written.

    A later block sees the result of earlier ones on the same file. Matching tries the exact lines first, then
    ignores trailing whitespace, then a uniform indentation difference (re-indenting the replacement to fit).

    :raises EditApplyError: a block matches nothing (the message shows the closest lines), matches several
        places, creates a file that already has content, edits a missing or non-UTF-8 file, or has an unsafe
        path. No file is changed then.
    """
    root = workspace_root.resolve()
    before: dict[Path, bytes | None] = {}
    after: dict[Path, str] = {}
    outcomes: list[BlockOutcome] = []
    for block in blocks:
        try:
            target = safe_path(root, block.path)
        except UnsafePathError as err:
            raise UnsafePathError(f"edit block {block.index}: {err}") from None
        if target not in before:
            before[target] = target.read_bytes() if target.is_file() else None
            if before[target] is not None:
                after[target] = _decoded(before[target] or b"", block)
        _check_content(block.replace, f"edit block {block.index}: the REPLACE text for {block.path}")
        new_text, outcome = _apply_block(block, after.get(target))
        after[target] = new_text
        outcomes.append(outcome)
    changed = {path: text for path, text in after.items() if text.encode() != before[path]}
    for path, text in changed.items():
        _check_size(str(path.relative_to(root)), len(before[path] or b""), len(text.encode()))
    _write_all(changed, before)
    return ApplyResult(tuple(sorted(str(path.relative_to(root)) for path in changed)), tuple(outcomes))


def _check_content(text: str, what: str) -> None:
    """Refuse binary content: a NUL byte (git's own test for binary) or text that is not valid Unicode."""
    problem = "contains a NUL byte" if "\0" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        problem = f"contains {text[err.start]!r}, which is not valid UTF-8"
    if problem:
        raise EditApplyError(f"{what} {problem}: edits may only write text, never binary content.")


def _check_size(path: str, before: int, after: int) -> None:
    """Refuse an edit that makes a file larger than ``MAX_FILE_BYTES`` (a file already larger may shrink)."""
    if after > MAX_FILE_BYTES and after > before:
        raise EditApplyError(
            f"the edits would make {path} {after:,} bytes; edits may not make a file larger than "
            f"{MAX_FILE_BYTES:,} bytes. Write a smaller file, or generate the data in the tests instead."
        )


def _decoded(data: bytes, block: EditBlock) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise EditApplyError(f"edit block {block.index}: {block.path} is not a UTF-8 text file") from None


def _apply_block(block: EditBlock, text: str | None) -> tuple[str, BlockOutcome]:
    if block.creates_file:
        if text:
            raise EditApplyError(
                f"edit block {block.index}: SEARCH is empty, which creates {block.path}, but that file already "
                "exists and is not empty. To change it, copy the exact lines to replace into SEARCH."
            )
        return block.replace, BlockOutcome(block.index, block.path, "new_file", 1)
    if text is None:
        raise EditApplyError(
            f"edit block {block.index}: {block.path} does not exist. To create it, leave SEARCH empty."
        )
    lines = re.split(r"(?<=\n)", text)
    lines = lines[:-1] if lines and lines[-1] == "" else lines
    start, end, replacement, how = _locate(block, lines)
    eol = "\r\n" if lines[start].endswith("\r\n") else "\n"
    new_lines = [line + eol for line in replacement]
    if end == len(lines) and not lines[-1].endswith("\n") and new_lines:
        new_lines[-1] = new_lines[-1][: -len(eol)]  # the file had no final newline: keep it that way
    return "".join(lines[:start] + new_lines + lines[end:]), BlockOutcome(block.index, block.path, how, start + 1)


def _locate(block: EditBlock, lines: list[str]) -> tuple[int, int, list[str], Match]:
    """Find the one place SEARCH matches, from the strictest rule to the loosest; return it and the new lines."""
    search, replace = _split(block.search), _split(block.replace)
    bare = [line.rstrip("\r\n") for line in lines]
    rules: list[tuple[Match, Callable[[list[str]], Callable[[str], str] | None]]] = [
        ("exact", lambda window: _same(window, search)),
        ("trailing_whitespace", lambda window: _same([w.rstrip() for w in window], [s.rstrip() for s in search])),
        ("indentation", lambda window: _reindenter(window, search)),
    ]
    for how, rule in rules:
        found = [(i, fix) for i in range(len(bare) - len(search) + 1) if (fix := rule(bare[i : i + len(search)]))]
        if len(found) > 1:
            places = ", ".join(str(i + 1) for i, _ in found[:10])
            raise EditApplyError(
                f"edit block {block.index}: the SEARCH text matches {block.path} in {len(found)} places "
                f"(starting at lines {places}). Add surrounding lines to SEARCH so it matches exactly one place."
            )
        if found:
            start, fix = found[0]
            return start, start + len(search), [fix(line) for line in replace], how
    raise EditApplyError(_no_match_message(block, bare, search))


def _split(text: str) -> list[str]:
    """Lines without their endings; unlike ``str.splitlines`` only ``\n`` ends a line (not form feeds etc.)."""
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _same(window: list[str], search: list[str]) -> Callable[[str], str] | None:
    return (lambda line: line) if window == search else None


def _reindenter(window: list[str], search: list[str]) -> Callable[[str], str] | None:
    """If ``window`` is ``search`` shifted by one uniform indentation, return the shift to apply to REPLACE."""
    pairs = [(w.rstrip(), s.rstrip()) for w, s in zip(window, search, strict=True)]
    if any(bool(w) != bool(s) for w, s in pairs):
        return None
    first = next(((w, s) for w, s in pairs if w), None)
    if first is None:
        return None
    w_indent, s_indent = (line[: len(line) - len(line.lstrip())] for line in first)
    if w_indent == s_indent:
        return None
    if w_indent.startswith(s_indent):
        shift = _indenter(w_indent[len(s_indent) :])
    elif s_indent.startswith(w_indent):
        shift = _dedenter(s_indent[len(w_indent) :])
    else:
        return None
    return shift if all(shift(s) == w for w, s in pairs) else None


def _indenter(extra: str) -> Callable[[str], str]:
    return lambda line: extra + line if line.strip() else line


def _dedenter(cut: str) -> Callable[[str], str]:
    return lambda line: line.removeprefix(cut) if line.startswith(cut) else line.lstrip(" \t")


def _no_match_message(block: EditBlock, lines: list[str], search: list[str]) -> str:
    head = (
        f"edit block {block.index}: the SEARCH text does not match any lines of {block.path}. SEARCH must copy "
        "existing lines exactly, including comments, blank lines and indentation."
    )
    if not lines:
        return f"{head} The file is empty; to fill it, leave SEARCH empty."
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(line.strip() for line in search))
    best, at = 0.0, 0
    for i in range(max(1, len(lines) - len(search) + 1)):
        matcher.set_seq1("\n".join(line.strip() for line in lines[i : i + len(search)]))
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best and matcher.ratio() > best:
            best, at = matcher.ratio(), i
    if best < 0.3:
        return f"{head} Nothing in the file looks similar; check the file path."
    shown = "\n".join(f"{n + 1:>5} | {lines[n]}" for n in range(at, min(len(lines), at + len(search))))
    advice = "Resend the block with SEARCH copied from them."
    return f"{head} The closest lines ({best:.0%} similar) are:\n{shown}\n{advice}"


def _write_all(changed: dict[Path, str], before: dict[Path, bytes | None]) -> None:
    """Write every changed file; if one write fails, put back what was already written."""
    written: list[Path] = []
    made_dirs: list[Path] = []
    try:
        for path, text in changed.items():
            missing = [parent for parent in reversed(path.parents) if not parent.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.extend(missing)
            path.write_bytes(text.encode("utf-8"))
            written.append(path)
    except OSError as err:
        for path in written:
            original = before[path]
            path.write_bytes(original) if original is not None else path.unlink(missing_ok=True)
        for directory in reversed(made_dirs):
            directory.rmdir()
        raise EditApplyError(f"could not write {err.filename}: {err.strerror}; no file was changed") from err


def apply_patch(workspace_root: Path, patch: str) -> ApplyResult:
    """Apply a unified diff with ``git apply`` (checked first, so it applies whole or not at all).

    :raises UnsafePathError: a path in the diff is unsafe (same rules as SEARCH/REPLACE), or the diff would create
        or repoint a symbolic link.
    :raises EditApplyError: the diff does not apply (the message carries git's explanation), holds binary content
        or would make a file larger than ``MAX_FILE_BYTES``.
    """
    root = workspace_root.resolve()
    changes = _file_changes(patch)
    paths = sorted(set(_patch_paths(patch)) | set(changes))
    if not paths:
        raise EditParseError("the diff names no files: expected '--- a/<path>' and '+++ b/<path>' lines")
    for path in paths:
        safe_path(root, path)
    _check_content(patch, f"the diff of {', '.join(paths)}")
    for path, change in changes.items():
        change.check(root, path)
    command = ["apply", "--recount", "--whitespace=nowarn", "-p1"]
    body = patch if patch.endswith("\n") else patch + "\n"
    try:
        run_git([*command, "--check", "-"], root, stdin=body)
        run_git([*command, "-"], root, stdin=body)
    except WorkspaceError as err:
        detail = str(err).split(": ", 1)[-1]
        raise EditApplyError(f"the diff does not apply: {detail}. Regenerate it against the current files.") from None
    return ApplyResult(tuple(paths), tuple(BlockOutcome(1, path, "exact", 1) for path in paths))


@dataclass
class _FileChange:
    """What a diff does to one file, read the way ``git apply --recount`` reads it."""

    added: int = 0
    removed: int = 0
    binary: bool = False
    link: bool = False

    def check(self, root: Path, path: str) -> None:
        if self.link:
            raise UnsafePathError(f"the diff makes {path} a symbolic link; edits may not create or repoint links")
        if self.binary:
            raise EditApplyError(f"the diff holds a binary patch for {path}: edits may only write text.")
        current = (root / path).stat().st_size if (root / path).is_file() else 0
        _check_size(path, current, current - self.removed + self.added)


_LINK_MODE = re.compile(r"^(?:new file mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) 120000\s*$")
_BINARY = re.compile(r"^(?:GIT binary patch|Binary files .* differ)\s*$")
_GIT_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)\s*$")
_FILE_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?([^\t]*?)\s*(?:\t.*)?$")


def _file_changes(patch: str) -> dict[str, _FileChange]:
    """Each file's added and removed bytes, and whether the diff makes it binary or a symbolic link.

    As with ``--recount``, a hunk runs until a line that starts with neither a space, ``+``, ``-`` nor ``\\``."""
    changes: dict[str, _FileChange] = {}
    change, in_hunk = _FileChange(), False
    for line in patch.splitlines():
        if in_hunk and line[:1] in ("+", "-", " ", "\\", ""):
            change.added += len(line) if line.startswith("+") else 0
            change.removed += len(line) if line.startswith("-") else 0
            continue
        in_hunk = line.startswith("@@ ")
        path = _header_path(line)
        change = changes.setdefault(path, _FileChange()) if path else change
        change.link = change.link or bool(_LINK_MODE.match(line))
        change.binary = change.binary or bool(_BINARY.match(line))
    return changes


def _header_path(line: str) -> str | None:
    """The path a ``diff --git a/x b/x``, ``--- a/x`` or ``+++ b/x`` line names (not ``/dev/null``)."""
    git = _GIT_HEADER.match(line)
    header = None if git else _FILE_HEADER.match(line)
    found = git.group(2) if git else header.group(1) if header else None
    return None if found in (None, "", "/dev/null") else found


def _patch_paths(patch: str) -> list[str]:
    found = []
    for line in patch.splitlines():
        header = re.match(r"^(?:--- |\+\+\+ |rename from |rename to |copy from |copy to )(.*)$", line)
        name = header.group(1).split("\t")[0].strip() if header else "/dev/null"
        if name != "/dev/null":
            found.append(re.sub(r"^[ab]/", "", name) if line.startswith(("---", "+++")) else name)
    return found


def apply_answer(workspace_root: Path, answer: str) -> ApplyResult:
    """Apply the edits in a model's whole answer: SEARCH/REPLACE blocks, else a unified diff.

    :raises EditParseError: the answer holds no edits, or malformed ones.
    :raises EditApplyError: the edits do not fit the files.
    """
    if any(_SEARCH.match(line) or _REPLACE.match(line) for line in _split(answer)):
        return apply_edits(workspace_root, parse_edits(answer))
    fenced = re.findall(r"^```(?:diff|patch)[^\n]*\n(.*?)^```", answer, flags=re.M | re.S)
    patch = "".join(fenced) if fenced else answer
    if re.search(r"^--- ", patch, re.M) and re.search(r"^\+\+\+ ", patch, re.M) and re.search(r"^@@", patch, re.M):
        return apply_patch(workspace_root, patch)
    raise EditParseError(f"the answer contains no edits. {_FORMAT_HINT}")
