"""SEARCH/REPLACE edits: strict parsing, tolerant matching, all-or-nothing writes, nothing outside the workspace."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from supervisor_lib.workspace import (
    EditApplyError,
    EditBlock,
    EditParseError,
    UnsafePathError,
    apply_answer,
    apply_edits,
    apply_patch,
    parse_edits,
)
from tests.unit.workspace.conftest import tree_digest

CORE = '''def add(a, b):
    """Return the sum of a and b."""
    return a - b


def subtract(a, b):
    return a - b
'''


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A workspace with ``pkg/core.py``, next to an ``outside`` folder that must never change."""
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "core.py").write_text(CORE)
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("do not touch\n")
    return ws


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


# --- parsing -------------------------------------------------------------------------------------------------


def test_parse_blocks_with_fences_prose_and_either_filename_position() -> None:
    answer = (
        "I will fix the bug.\n\n"
        "pkg/core.py\n```python\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n```\n\n"
        "And add a file:\n\n```\n**docs/new.md**\n<<<<<<< SEARCH\n=======\n# New\n>>>>>>> REPLACE\n```\n"
        "`pkg/other.py`:\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\nThat is all.\n"
    )

    blocks = parse_edits(answer)

    assert [(b.path, b.search, b.replace, b.index) for b in blocks] == [
        ("pkg/core.py", "    return a - b\n", "    return a + b\n", 1),
        ("docs/new.md", "", "# New\n", 2),
        ("pkg/other.py", "x = 1\n", "x = 2\n", 3),
    ]
    assert blocks[1].creates_file and not blocks[0].creates_file
    assert blocks[0].line == 5, "the SEARCH marker's line in the answer"


def test_parse_accepts_windows_line_endings() -> None:
    answer = "a.py\r\n<<<<<<< SEARCH\r\nx = 1\r\n=======\r\nx = 2\r\n>>>>>>> REPLACE\r\n"
    assert parse_edits(answer) == [EditBlock("a.py", "x = 1\n", "x = 2\n", 1, 2)]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("a.py\n<<<<<<< SEARCH\nx = 1\n>>>>>>> REPLACE\n", r"edit block 1 \(starting at line 2\): missing '======='"),
        ("a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n", r"edit block 1 .*missing '>>>>>>> REPLACE'.*end of"),
        ("Here is the fix:\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", r"found 'Here is the fix:'"),
        ("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", r"edit block 1 \(line 1\).*found nothing"),
        ("x = 2\n>>>>>>> REPLACE\n", r"line 2: '>>>>>>> REPLACE' has no '<<<<<<< SEARCH'"),
        (block("a.py", "x\n", "y\n") + "b.py\n<<<<<<< SEARCH\nx\n<<<<<<< SEARCH\n", r"edit block 2 .*line 8"),
    ],
)
def test_malformed_blocks_are_rejected_with_block_and_line(answer: str, message: str) -> None:
    with pytest.raises(EditParseError, match=message) as caught:
        parse_edits(answer)
    assert "<<<<<<< SEARCH" in str(caught.value), "the message restates the format for the model"


def test_a_block_right_after_another_needs_its_own_filename() -> None:
    answer = block("a.py", "x\n", "y\n") + "<<<<<<< SEARCH\nz\n=======\nw\n>>>>>>> REPLACE\n"
    with pytest.raises(EditParseError, match="edit block 2"):
        parse_edits(answer)


# --- matching and applying --------------------------------------------------------------------------------------


def test_exact_match_replaces_only_the_matched_lines(root: Path) -> None:
    result = apply_answer(
        root,
        block(
            "pkg/core.py",
            '    """Return the sum of a and b."""\n    return a - b\n',
            '    """Return the sum of a and b."""\n    return a + b\n',
        ),
    )

    assert (root / "pkg" / "core.py").read_text() == CORE.replace("a - b", "a + b", 1)
    assert result.files_changed == ("pkg/core.py",)
    assert result.outcomes[0].match == "exact" and result.outcomes[0].line == 2


def test_trailing_whitespace_differences_are_tolerated(root: Path) -> None:
    result = apply_answer(root, block("pkg/core.py", "def add(a, b):   \n", "def add(a, b, c=0):\n"))
    assert result.outcomes[0].match == "trailing_whitespace"
    assert (root / "pkg" / "core.py").read_text().startswith("def add(a, b, c=0):\n")


@pytest.mark.parametrize("shift", ["less", "more"])
def test_a_uniform_indentation_difference_is_tolerated_and_the_replacement_reindented(root: Path, shift: str) -> None:
    body = '"""Return the sum of a and b."""\nreturn a - b\n'
    search = body if shift == "less" else "".join("        " + line + "\n" for line in body.splitlines())
    replace = (
        '"""Return the sum."""\nif a is None:\n    return b\nreturn a + b\n'
        if shift == "less"
        else '        """Return the sum."""\n        if a is None:\n            return b\n        return a + b\n'
    )

    result = apply_answer(root, block("pkg/core.py", search, replace))

    assert result.outcomes[0].match == "indentation"
    expected = '    """Return the sum."""\n    if a is None:\n        return b\n    return a + b\n'
    assert expected in (root / "pkg" / "core.py").read_text()


def test_no_match_shows_the_closest_lines_with_numbers_and_writes_nothing(root: Path) -> None:
    before = tree_digest(root)
    with pytest.raises(EditApplyError) as caught:
        apply_answer(root, block("pkg/core.py", '    """Return the sum of a and b"""\n    return a - b\n', "pass\n"))
    message = str(caught.value)
    assert "edit block 1" in message and "does not match any lines of pkg/core.py" in message
    assert '    2 |     """Return the sum of a and b."""\n    3 |     return a - b\n' in message
    assert tree_digest(root) == before


def test_several_matches_ask_for_more_context(root: Path) -> None:
    with pytest.raises(EditApplyError, match=r"matches pkg/core.py in 2 places \(starting at lines 3, 7\)"):
        apply_answer(root, block("pkg/core.py", "    return a - b\n", "    return 0\n"))


def test_empty_search_creates_a_file_in_new_folders(root: Path) -> None:
    result = apply_answer(root, block("docs/guide/intro.md", "", "# Intro\n"))
    assert (root / "docs" / "guide" / "intro.md").read_text() == "# Intro\n"
    assert result.outcomes[0].match == "new_file" and result.files_changed == ("docs/guide/intro.md",)


def test_empty_search_on_an_existing_file(root: Path) -> None:
    (root / "empty.py").write_text("")
    apply_answer(root, block("empty.py", "", "x = 1\n"))
    assert (root / "empty.py").read_text() == "x = 1\n"
    with pytest.raises(EditApplyError, match="already exists and is not empty"):
        apply_answer(root, block("pkg/core.py", "", "overwrite\n"))
    assert (root / "pkg" / "core.py").read_text() == CORE


def test_editing_a_missing_file_says_how_to_create_it(root: Path) -> None:
    with pytest.raises(EditApplyError, match=r"pkg/missing\.py does not exist\. To create it, leave SEARCH empty"):
        apply_answer(root, block("pkg/missing.py", "x\n", "y\n"))


def test_all_or_nothing_when_a_later_block_fails(root: Path) -> None:
    before = tree_digest(root)
    answer = (
        block("new.py", "", "x = 1\n")
        + block("pkg/core.py", "    return a - b\n", "")
        + block("pkg/core.py", "nope\n", "")
    )
    with pytest.raises(EditApplyError, match="edit block 2"):
        apply_answer(root, answer)
    assert tree_digest(root) == before and not (root / "new.py").exists()


def test_later_blocks_see_earlier_blocks_on_the_same_file(root: Path) -> None:
    answer = block("pkg/core.py", "def add(a, b):\n", "def plus(a, b):\n") + block(
        "pkg/core.py", "def plus(a, b):\n", "def add_numbers(a, b):\n"
    )
    result = apply_answer(root, answer)
    assert (root / "pkg" / "core.py").read_text().startswith("def add_numbers(a, b):\n")
    assert result.files_changed == ("pkg/core.py",) and len(result.outcomes) == 2


def test_crlf_endings_and_a_missing_final_newline_are_kept(root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree")
    apply_answer(root, block("win.txt", "three\n", "THREE\n") + block("win.txt", "one\n", "ONE\nuno\n"))
    assert (root / "win.txt").read_bytes() == b"ONE\r\nuno\r\ntwo\r\nTHREE"


def test_a_binary_file_cannot_be_edited(root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\xff\xfe\x00x\n")
    with pytest.raises(EditApplyError, match="not a UTF-8 text file"):
        apply_answer(root, block("blob.bin", "x\n", "y\n"))


# --- path safety ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "is absolute"),
        ("~/x.py", "is absolute"),
        ("../outside/secret.txt", "contains '..'"),
        ("pkg/../../outside/secret.txt", "contains '..'"),
        (".git/config", "inside .git"),
        ("pkg/.GIT/hooks/pre-commit", "inside .git"),
        ("link_dir/secret.txt", "outside the repository"),
        ("link_file.txt", "outside the repository"),
        ("git_link/config", "inside .git"),
        ("pkg", "is a directory"),
        ("pkg\\core.py", "contains '\\\\'"),
    ],
)
def test_unsafe_paths_are_rejected_and_nothing_outside_changes(root: Path, path: str, reason: str) -> None:
    outside = root.parent / "outside"
    os.symlink(outside, root / "link_dir")
    os.symlink(outside / "secret.txt", root / "link_file.txt")
    os.symlink(root / ".git", root / "git_link")
    before_outside, before_root = tree_digest(outside), tree_digest(root)

    for search in ("", "do not touch\n"):
        with pytest.raises(UnsafePathError, match=reason):
            apply_answer(root, block(path, search, "owned\n"))

    assert tree_digest(outside) == before_outside and tree_digest(root) == before_root


def test_a_symlink_inside_the_workspace_edits_its_target(root: Path) -> None:
    os.symlink(root / "pkg" / "core.py", root / "alias.py")
    apply_edits(root, [EditBlock("alias.py", "def add(a, b):\n", "def total(a, b):\n")])
    assert (root / "alias.py").is_symlink()
    assert (root / "pkg" / "core.py").read_text().startswith("def total(a, b):")


# --- unified diffs ---------------------------------------------------------------------------------------------

PATCH = "".join(
    difflib.unified_diff(
        CORE.splitlines(keepends=True),
        CORE.replace("a - b", "a + b", 1).splitlines(keepends=True),
        "a/pkg/core.py",
        "b/pkg/core.py",
    )
)


def test_a_unified_diff_in_a_fence_is_applied(root: Path) -> None:
    result = apply_answer(root, f"Here is the patch:\n```diff\n{PATCH}```\nDone.")
    assert (root / "pkg" / "core.py").read_text() == CORE.replace("a - b", "a + b", 1)
    assert result.files_changed == ("pkg/core.py",)


def test_a_diff_that_does_not_apply_changes_nothing(root: Path) -> None:
    bad = PATCH.replace("-    return a - b", "-    return a * b")
    with pytest.raises(EditApplyError, match="the diff does not apply"):
        apply_patch(root, bad)
    assert (root / "pkg" / "core.py").read_text() == CORE


def test_a_diff_with_an_unsafe_path_is_rejected(root: Path) -> None:
    before = tree_digest(root.parent / "outside")
    evil = "--- a/../outside/secret.txt\n+++ b/../outside/secret.txt\n@@ -1 +1 @@\n-do not touch\n+owned\n"
    with pytest.raises(UnsafePathError, match=r"contains '\.\.'"):
        apply_patch(root, evil)
    assert tree_digest(root.parent / "outside") == before


def test_an_answer_without_edits_is_a_parse_error(root: Path) -> None:
    with pytest.raises(EditParseError, match="contains no edits"):
        apply_answer(root, "I think the code is fine as it is.")
