"""The edit loop with scripted answers, real git worktrees and the real sandbox running real pytest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.coding.jobs import validation_env
from supervisor_lib.coding.loop import Check, EditLoop, LoopResult, LoopTask, SandboxLimits, prose, sandbox_validator
from supervisor_lib.coding.review import Reviewer
from supervisor_lib.workspace import RepoSource, Workspace
from tests.support.coding import APPROVE, CHANGES, COMMENT_FIX, FIX_AFTER_WRONG, GOOD_FIX, MALFORMED_FIX, WRONG_FIX
from tests.unit.coding.conftest import LOG, REPOS, Scripted

PYTEST = Check("python -m pytest -q", timeout_s=60)


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Workspace]:
    created: list[Workspace] = []

    def make(repo: str) -> Workspace:
        cache = RepoSource.resolve(str(REPOS / repo), tmp_path / "cache")
        created.append(Workspace.create(cache, "HEAD", tmp_path / "ws", f"ws-{len(created)}"))
        return created[-1]

    return make


@pytest.fixture
def run(workspace: Callable[[str], Workspace]) -> Iterator[Callable[..., tuple[LoopResult, Workspace]]]:
    def go(
        coder: Scripted, repo: str = "calculator", check: Check | None = PYTEST, reviewer: Any = None, **task: Any
    ) -> tuple[LoopResult, Workspace]:
        ws = workspace(repo)
        loop_task = LoopTask("bug_fix", "Fix add().", "(context)", check, **task)
        validator = sandbox_validator(check, validation_env()) if check else None
        return EditLoop(ws, loop_task, coder, reviewer=reviewer, validator=validator, log=LOG).run(), ws

    yield go


def test_a_fix_that_passes_on_the_first_try(run: Callable[..., Any], scripted: Callable[..., Scripted]) -> None:
    coder = scripted(GOOD_FIX)
    result, ws = run(coder)

    assert result.status == "passed" and [it.outcome for it in result.iterations] == ["passed"]
    assert "+    return a + b" in result.diff and (ws.path / "calculator/core.py").read_text().count("a + b") == 1
    first = result.iterations[0]
    assert first.edit_summary == "edited calculator/core.py (1 block)" and first.files_changed == ["calculator/core.py"]
    assert first.validation is not None and first.validation["exit_code"] == 0 and first.tokens == 120
    assert result.tally.cost_usd == 0.002 and result.summary == "add() subtracted."
    assert "6 passed" in result.validation_logs[1]
    step, messages, system, _ = coder.calls[0]
    assert step == "iteration-1" and "<<<<<<< SEARCH" in system and "## This task: a bug fix" in system
    assert "Fix add()." in messages[0]["content"] and "`python -m pytest -q`" in messages[0]["content"]


def test_the_failing_output_and_the_diff_reach_the_second_prompt(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder = scripted(WRONG_FIX, FIX_AFTER_WRONG)
    result, _ = run(coder)

    assert result.status == "passed"
    assert [it.outcome for it in result.iterations] == ["validation_failed", "passed"]
    assert result.iterations[0].validation["exit_code"] == 1  # type: ignore[index]
    second = coder.prompt(1)
    assert "FAILED tests/test_core.py::test_add - assert 6 == 5" in second
    assert "+    return a * b" in second, "the current diff goes back to the model"
    assert "2 failed, 4 passed in <duration>" in second, "durations are normalised (a retry builds the same prompt)"
    roles = [m["role"] for m in coder.calls[1][1]]
    assert roles == ["user", "assistant", "user"] and coder.calls[1][1][1]["content"] == WRONG_FIX


def test_a_task_that_never_passes_fails_after_max_iterations(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder = scripted(WRONG_FIX, WRONG_FIX.replace("a - b", "a * b").replace("a * b\n>>>", "a ** b\n>>>"))
    result, _ = run(coder, max_iterations=2)

    assert result.status == "failed" and len(coder.calls) == 2
    assert [it.outcome for it in result.iterations] == ["validation_failed", "validation_failed"]
    assert "a ** b" in result.diff


def test_a_malformed_edit_is_a_failed_iteration_with_the_parse_error_as_feedback(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder = scripted(MALFORMED_FIX, GOOD_FIX)
    result, _ = run(coder)

    assert result.status == "passed"
    first = result.iterations[0]
    assert first.outcome == "edit_error" and first.error_kind == "parse" and first.validation is None
    assert "missing '======='" in (first.error or "")
    assert "your edits were not applied" in coder.prompt(1) and "missing '======='" in coder.prompt(1)


def test_an_edit_outside_the_workspace_is_rejected_and_touches_nothing(
    run: Callable[..., Any], scripted: Callable[..., Scripted], tmp_path: Path
) -> None:
    escape = "Writing a helper.\n\n../escaped.txt\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n"
    absolute = f"{tmp_path}/absolute.txt\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n"
    coder = scripted(escape, absolute, GOOD_FIX)
    result, ws = run(coder)

    assert result.status == "passed"
    assert [it.error_kind for it in result.iterations] == ["unsafe_path", "unsafe_path", None]
    assert "contains '..'" in (result.iterations[0].error or "") and "is absolute" in (result.iterations[1].error or "")
    assert not (ws.path.parent / "escaped.txt").exists() and not (tmp_path / "absolute.txt").exists()
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_search_that_does_not_match_shows_the_closest_lines(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    misquoted = GOOD_FIX.replace('def add(a, b):\n    """Return', 'def add(a,b):\n    """Return', 1)
    coder = scripted(misquoted, GOOD_FIX)
    result, _ = run(coder)

    assert result.iterations[0].error_kind == "apply" and result.status == "passed"
    assert "The closest lines" in coder.prompt(1) and "    4 | def add(a, b):" in coder.prompt(1)


def test_nothing_to_change_ends_with_no_changes(run: Callable[..., Any], scripted: Callable[..., Scripted]) -> None:
    coder = scripted("NO_CHANGES_NEEDED: greet() already does what the tests expect.")
    result, _ = run(coder, repo="clean")

    assert result.status == "no_changes" and result.diff == ""
    assert result.iterations[0].outcome == "no_changes" and result.iterations[0].edit_summary == "no edits"


def test_claiming_no_changes_while_the_tests_fail_is_fed_back(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder = scripted("NO_CHANGES_NEEDED, it looks fine to me.", GOOD_FIX)
    result, _ = run(coder)

    assert [it.outcome for it in result.iterations] == ["validation_failed", "passed"]
    assert "You answered that no change is needed" in coder.prompt(1) and "FAILED" in coder.prompt(1)


def test_a_reviewer_that_requests_changes_feeds_one_more_iteration(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder, review_model = scripted(GOOD_FIX, COMMENT_FIX), scripted(CHANGES, APPROVE)
    reviewer = Reviewer(review_model, "openai gpt-x", "bug_fix", "Fix add().")
    result, _ = run(coder, reviewer=reviewer)

    assert result.status == "passed"
    assert [it.outcome for it in result.iterations] == ["changes_requested", "passed"]
    assert "ADD-A-COMMENT saying why" in coder.prompt(1) and "calculator/core.py:6" in coder.prompt(1)
    assert result.review is not None and result.review.decision == "approve" and result.review.iteration == 2
    assert result.iterations[0].review["decision"] == "request_changes"  # type: ignore[index]
    assert [call[0] for call in review_model.calls] == ["review-1", "review-2"]
    _, messages, system, schema = review_model.calls[1]
    assert schema is not None and "# the sum, not the difference" in messages[0]["content"]
    assert "`python -m pytest -q` passed" in messages[0]["content"] and "Passing tests alone" in system
    assert result.iterations[0].tokens == 240, "the review's tokens count in its iteration"


def test_changes_requested_in_the_last_iteration_reject_the_change(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    reviewer = Reviewer(scripted(CHANGES), "openai gpt-x", "bug_fix", "Fix add().")
    result, _ = run(scripted(GOOD_FIX), reviewer=reviewer, max_iterations=1)

    assert result.status == "rejected" and result.review is not None and not result.review.approved
    assert result.iterations[0].outcome == "rejected"


def test_without_a_check_an_applied_change_passes(run: Callable[..., Any], scripted: Callable[..., Scripted]) -> None:
    result, _ = run(scripted(GOOD_FIX), check=None)

    assert result.status == "passed" and result.validation is None and result.iterations[0].validation is None


def test_a_validation_timeout_is_contained_and_fed_back(
    run: Callable[..., Any], scripted: Callable[..., Scripted]
) -> None:
    coder = scripted(GOOD_FIX)
    result, _ = run(coder, check=Check("sleep 30", timeout_s=1, limits=SandboxLimits(max_procs=20)), max_iterations=1)

    assert result.status == "failed"
    validation = result.iterations[0].validation
    assert validation is not None and validation["killed_reason"] == "timeout" and validation["timed_out"]
    assert validation["duration_s"] < 10


def test_prose_drops_the_edit_blocks() -> None:
    assert prose(GOOD_FIX + "\nThat is all.") == "add() subtracted.\n\nThat is all."
