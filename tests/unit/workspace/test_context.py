"""Context gathering: deterministic, size-bounded, and honest about what it left out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from supervisor_lib.workspace import Workspace, diff_between, estimate_tokens, gather_context, repo_map, run_git
from tests.unit.workspace.conftest import make_git_repo

ISSUE = "add() returns the wrong result: calculator.add(2, 3) gives -1."


def test_named_paths_are_included_sorted_and_fenced(copy_repo: Callable[[str], Path]) -> None:
    repo = copy_repo("calculator")
    (repo / "calculator" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")

    context = gather_context(repo, paths=["calculator/", "tests/*.py", "docs/*.md"], max_tokens=4000)

    assert context.files == ["calculator/__init__.py", "calculator/core.py", "tests/test_core.py"]
    assert "calculator/logo.png: binary or not UTF-8" in context.omitted
    assert "docs/*.md: pattern matched no files" in context.omitted
    assert "### calculator/core.py\n```python\n" in context.text
    assert context.text.index("calculator/__init__.py") < context.text.index("calculator/core.py")


def test_without_paths_a_repo_map_and_the_relevant_files_follow_the_issue(copy_repo: Callable[[str], Path]) -> None:
    repo = copy_repo("calculator")

    context = gather_context(repo, paths=None, max_tokens=4000, issue=ISSUE)

    assert context.text.startswith("## Issue\n\nadd() returns")
    assert "calculator/core.py: def add, def subtract, def multiply, def divide" in context.text
    assert "tests/test_core.py: def test_add," in context.text
    assert context.files[0] == "calculator/core.py", "the file whose symbols the issue names comes first"
    assert context.text.index("## Repository map") < context.text.index("### calculator/core.py")


def test_the_budget_is_respected_and_omissions_are_listed(copy_repo: Callable[[str], Path]) -> None:
    repo = copy_repo("inventory")

    context = gather_context(repo, paths=None, max_tokens=200, issue="Refactor Store.total_value")

    assert context.tokens <= 200 and estimate_tokens(context.text) == context.tokens
    assert any(line.endswith("tokens)") and "over budget" in line for line in context.omitted)
    assert all(name not in context.omitted for name in context.files)


def test_an_oversized_issue_is_cut_with_a_marker(copy_repo: Callable[[str], Path]) -> None:
    context = gather_context(copy_repo("clean"), paths=["greeting/"], max_tokens=100, issue="word " * 1000)

    assert "[... cut: over the context budget ...]" in context.text and context.tokens <= 100
    assert context.omitted[0].startswith("issue: cut to")


def test_the_same_input_gives_the_same_context(copy_repo: Callable[[str], Path]) -> None:
    repo = copy_repo("strings")
    first = gather_context(repo, paths=None, max_tokens=600, issue="Add stringtools.truncate")
    second = gather_context(repo, paths=None, max_tokens=600, issue="Add stringtools.truncate")
    assert first == second


def test_the_diff_comes_first_and_lines_can_be_numbered(copy_repo: Callable[[str], Path]) -> None:
    diff = "--- a/greeting/core.py\n+++ b/greeting/core.py\n@@ -1 +1 @@\n-x\n+y\n"

    context = gather_context(copy_repo("clean"), paths=None, max_tokens=2000, diff=diff, line_numbers=True)

    assert context.text.startswith("## Diff under review\n\n--- a/greeting/core.py")
    assert context.files[0] == "greeting/core.py", "files the diff touches come first"
    assert "    4 | def greet(name=None):\n" in context.text


def test_a_git_workspace_lists_only_what_git_sees(workspace: Callable[..., Workspace]) -> None:
    ws = workspace("clean")
    (ws.path / "__pycache__").mkdir()
    (ws.path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (ws.path / "extra.py").write_text("def helper():\n    pass\n")

    text = repo_map(ws.path)

    assert "extra.py: def helper" in text and ".git" not in text and "__pycache__" not in text


def test_diff_between_shows_the_changes_of_the_head_branch(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    run_git(["checkout", "--quiet", "-b", "feature"], repo)
    (repo / "a.py").write_text("x = 2\n")
    run_git(["commit", "--quiet", "-am", "change"], repo)

    diff = diff_between(repo, "main", "feature")

    assert "-x = 1\n+x = 2\n" in diff and diff_between(repo, "feature", "main") == ""


def test_a_double_star_also_matches_no_directory(copy_repo: Callable[[str], Path]) -> None:
    # The demo spec's "tests/**/*.py" must show tests/test_core.py, a file directly under tests/.
    repo = copy_repo("calculator")
    context = gather_context(repo, paths=["tests/**/*.py", "**/core.py"], max_tokens=4000)
    assert {"tests/test_core.py", "calculator/core.py"} <= set(context.files)
    assert not [line for line in context.omitted if "matched no files" in line]
