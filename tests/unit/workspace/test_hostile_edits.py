"""Regression tests for hostile edits the reliability suite found getting through or crashing the applier.

Each was written, crashed with a non-``EditError`` (the coding loop catches only those) or hung before the fix:
``.git`` spelled the ways git itself refuses, a NUL in a path, a FIFO in the workspace, binary or non-UTF-8 content,
files grown past ``MAX_FILE_BYTES``, diffs that create symbolic links or carry binary patches, and a repository
symlink whose outside target went into the model's context.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor_lib.workspace import (
    EditApplyError,
    UnsafePathError,
    apply_answer,
    apply_patch,
    gather_context,
    run_git,
    safe_path,
)
from supervisor_lib.workspace.edits import MAX_FILE_BYTES
from tests.unit.workspace.conftest import make_git_repo, tree_digest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A git worktree-like folder with one file, next to an ``outside`` folder that must never change."""
    ws = make_git_repo(tmp_path / "ws", {"pkg/core.py": "x = 1\n"})
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("do not touch\n")
    return ws


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


@pytest.mark.parametrize(
    "path",
    [".git.", ".GIT./config", "git~1/config", "GIT~1", ".git::$INDEX_ALLOCATION/config", "a/.git./b", ".g\u200cit/x"],
)
def test_every_spelling_git_refuses_as_dot_git_is_refused(root: Path, path: str) -> None:
    before = tree_digest(root)
    with pytest.raises(UnsafePathError, match=r"inside \.git"):
        apply_answer(root, block(path, "", "owned\n"))
    assert tree_digest(root) == before
    run_git(["add", "--all", "."], root)  # the workspace stays usable: git would refuse to add such a path


@pytest.mark.parametrize("path", [".git /config", ".Git . ", "src/.git  /x"])
def test_trailing_spaces_hide_dot_git_too(root: Path, path: str) -> None:
    """The parser strips a path line, so only callers of ``safe_path`` can pass such names; NTFS drops the spaces."""
    with pytest.raises(UnsafePathError, match=r"inside \.git"):
        safe_path(root, path)


@pytest.mark.parametrize("path", [".gitignore", ".github/workflows/ci.yml", ".gitmodules", "git~2.txt"])
def test_names_that_only_look_like_dot_git_are_allowed(root: Path, path: str) -> None:
    assert apply_answer(root, block(path, "", "ok\n")).files_changed == (path,)


def test_a_nul_in_a_path_is_refused_not_a_crash(root: Path) -> None:
    with pytest.raises(UnsafePathError, match="NUL"):
        apply_answer(root, block("pkg/a\0b.py", "", "x\n"))
    with pytest.raises(UnsafePathError, match="NUL"):
        safe_path(root, "a\0b")


@pytest.mark.parametrize("path", ["a\ud800b.txt", "pkg/\udcff/x.py"])
def test_a_lone_surrogate_in_a_path_is_refused_not_a_crash(root: Path, path: str) -> None:
    before = tree_digest(root)
    for answer in (block(path, "", "x\n"), f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n"):
        with pytest.raises(UnsafePathError, match="not valid UTF-8"):
            apply_answer(root, answer)
    assert tree_digest(root) == before


@pytest.mark.timeout(20)
def test_a_fifo_in_the_workspace_is_refused_instead_of_blocking_forever(root: Path) -> None:
    os.mkfifo(root / "pipe")  # what a validation command may leave behind
    for search in ("", "x\n"):
        with pytest.raises(UnsafePathError, match="not a regular file"):
            apply_answer(root, block("pipe", search, "x\n"))


@pytest.mark.parametrize(("replace", "reason"), [("a\0b\n", "NUL byte"), ("a\ud800b\n", "not valid UTF-8")])
def test_binary_content_is_refused_and_nothing_written(root: Path, replace: str, reason: str) -> None:
    before = tree_digest(root)
    for answer in (block("new.bin", "", replace), block("pkg/core.py", "x = 1\n", replace)):
        with pytest.raises(EditApplyError, match=reason):
            apply_answer(root, answer)
    with pytest.raises(EditApplyError, match=reason):
        apply_answer(root, f"--- /dev/null\n+++ b/new.bin\n@@ -0,0 +1 @@\n+{replace}")
    assert tree_digest(root) == before


def test_a_file_may_not_grow_past_the_limit_but_a_larger_one_may_shrink(root: Path) -> None:
    with pytest.raises(EditApplyError, match=f"larger than {MAX_FILE_BYTES:,} bytes"):
        apply_answer(root, block("big.txt", "", "x" * MAX_FILE_BYTES + "\n"))
    assert not (root / "big.txt").exists()
    (root / "data.txt").write_text("keep\n" + "y" * MAX_FILE_BYTES + "\ndrop\n")
    apply_answer(root, block("data.txt", "drop\n", ""))
    with pytest.raises(EditApplyError, match=r"would make data\.txt"):
        apply_answer(root, block("data.txt", "keep\n", "keep\nmore\n"))
    grow = "--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,2 @@\n+" + "x" * MAX_FILE_BYTES + "\n+y\n"
    with pytest.raises(EditApplyError, match=r"would make big\.txt"):
        apply_patch(root, grow)


def test_a_diff_may_not_create_a_symbolic_link(root: Path) -> None:
    outside = root.parent / "outside"
    link = f"diff --git a/ln b/ln\nnew file mode 120000\n--- /dev/null\n+++ b/ln\n@@ -0,0 +1 @@\n+{outside}\n"
    with pytest.raises(UnsafePathError, match="makes ln a symbolic link"):
        apply_answer(root, link + "\\ No newline at end of file\n")
    assert not (root / "ln").is_symlink()


BINARY = (
    "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\n"
    "index 0000000000000000000000000000000000000000..f63bd877fcd57b07f0339277c3de5bf7bd442cac\n"
    "GIT binary patch\nliteral 4\nLcmYdfNcs-|14{wJ\n\nliteral 0\nHcmV?d00001\n\n"
)
NOTE = "diff --git a/note.txt b/note.txt\nnew file mode 100644\n--- /dev/null\n+++ b/note.txt\n@@ -0,0 +1 @@\n+hi\n"


def test_a_binary_patch_is_refused(root: Path) -> None:
    with pytest.raises(EditApplyError, match=r"binary patch for blob\.bin"):
        apply_answer(root, BINARY + NOTE)
    assert not (root / "blob.bin").exists() and not (root / "note.txt").exists()


def test_paths_named_only_in_diff_git_headers_are_checked_and_reported(root: Path) -> None:
    hook = "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\nnew file mode 100755\nindex 0000000..e69de29\n"
    with pytest.raises(UnsafePathError, match=r"'\.git/hooks/pre-commit' is inside \.git"):
        apply_answer(root, hook + NOTE)
    empty = "diff --git a/empty.txt b/empty.txt\nnew file mode 100644\nindex 0000000..e69de29\n"
    assert apply_answer(root, empty + NOTE).files_changed == ("empty.txt", "note.txt")


def test_the_context_never_follows_a_symlink_out_of_the_repository(root: Path) -> None:
    os.symlink(root.parent / "outside" / "secret.txt", root / "settings.cfg")
    os.symlink(root / ".git" / "config", root / "git.cfg")
    os.symlink(root / "pkg" / "core.py", root / "alias.py")  # inside: still shown
    for paths in (None, ["*.cfg", "*.py"]):
        context = gather_context(root, paths=paths, max_tokens=4000, issue="settings")
        assert "do not touch" not in context.text and "[core]" not in context.text
        assert "settings.cfg" not in context.files and "git.cfg" not in context.files and "alias.py" in context.files
