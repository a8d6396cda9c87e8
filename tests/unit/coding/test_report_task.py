"""Read-only report jobs: what the model sees per type, the schema it is given, and checks of its report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.coding.jobs import Target
from supervisor_lib.coding.report_task import NothingToReviewError, ReportJob, run_report_job
from supervisor_lib.coding.reports import report_schema
from supervisor_lib.coding.settings import Roots
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.workspace import run_git
from tests.unit.coding.conftest import LOG, REPOS, Scripted

CALCULATOR = Target(str(REPOS / "calculator"))
PATCH = (
    "diff --git a/calculator/core.py b/calculator/core.py\n--- a/calculator/core.py\n+++ b/calculator/core.py\n"
    "@@ -5 +5 @@\n-    return a - b\n+    return a + b\n"
)
ANALYSIS = {
    "summary": "add() subtracts.",
    "findings": [
        {"file": "calculator/core.py", "line": 6, "severity": "high", "category": "bug", "message": "subtracts",
         "suggestion": "use +"},
        {"file": "calculator/ghost.py", "line": 1, "severity": "low", "category": "style", "message": "?",
         "suggestion": None},
    ],
    "modules": ["calculator/core.py"],
}  # fmt: skip


def _run(job: ReportJob, model: Scripted, scope: CallScope, roots: Roots) -> dict[str, Any]:
    return run_report_job(job, scope, model, roots, LOG)


def test_code_analysis_gets_its_schema_numbered_files_and_checked_findings(
    scripted: Callable[..., Scripted], scope: CallScope, roots: Roots
) -> None:
    model = scripted(ANALYSIS)
    job = ReportJob("code_analysis", CALCULATOR, instructions="Find the bug in add.")
    result = _run(job, model, scope, roots)

    assert result["status"] == "passed" and result["report"] == ANALYSIS and result["patch"] is None
    assert result["warnings"] == ["finding 2 cites 'calculator/ghost.py', which is not a file of the repository"]
    step, messages, system, schema = model.calls[0]
    assert step == "report" and schema == report_schema("code_analysis") and "JSON object" in system
    assert "Find the bug in add." in messages[0]["content"] and "    6 |     return a - b" in messages[0]["content"]
    folder = Path(result["artifacts"])
    assert json.loads((folder / "report.json").read_text()) == ANALYSIS
    assert {p.name for p in folder.iterdir()} == {"report.json", "context.json", "conversation.json", "result.json"}
    assert result["usage"]["calls"] == 1 and result["cost_usd"] == 0.001
    assert not list(roots.workspaces.iterdir()), "the read-only worktree is removed"


def test_issue_summary_reads_the_issue_file_from_the_repo(
    scripted: Callable[..., Scripted], scope: CallScope, roots: Roots
) -> None:
    model = scripted({"summary": "add is wrong"})
    _run(ReportJob("issue_summary", CALCULATOR, issue_file="ISSUE.md"), model, scope, roots)

    prompt = model.calls[0][1][0]["content"]
    assert "## Issue\n\n# add() returns the wrong result" in prompt
    assert "Write the issue summary report for this repository." in prompt


def test_pr_review_of_a_patch_file_under_the_project_root(
    scripted: Callable[..., Scripted], scope: CallScope, roots: Roots, tmp_path: Path
) -> None:
    (tmp_path / "change.patch").write_text(PATCH)
    model = scripted({"summary": "fine", "verdict": "approve", "findings": []})
    job = ReportJob("pr_review", CALCULATOR, patch_file="change.patch", project_root=tmp_path)
    _run(job, model, scope, roots)

    prompt = model.calls[0][1][0]["content"]
    assert "## Diff under review\n\ndiff --git a/calculator/core.py" in prompt
    assert prompt.index("### calculator/core.py") < prompt.index("### tests/test_core.py"), "changed files first"


def test_pr_review_of_two_refs_sees_the_head(
    scripted: Callable[..., Scripted], scope: CallScope, roots: Roots, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run_git(["init", "--quiet", "--initial-branch=main"], repo)
    (repo / "a.py").write_text("x = 1\n")
    run_git(["add", "-A"], repo)
    run_git(["commit", "--quiet", "-m", "one"], repo)
    run_git(["checkout", "--quiet", "-b", "feature"], repo)
    (repo / "a.py").write_text("x = 2\n")
    run_git(["commit", "--quiet", "-am", "two"], repo)
    model = scripted({"summary": "ok", "verdict": "comment", "findings": []})
    job = ReportJob("pr_review", Target(str(repo)), base_ref="main", head_ref="feature")
    result = _run(job, model, scope, roots)

    prompt = model.calls[0][1][0]["content"]
    assert "-x = 1\n+x = 2" in prompt and "    1 | x = 2" in prompt and result["ref"] == "feature"


def test_pr_review_of_upstream_patches_and_of_nothing(
    scripted: Callable[..., Scripted], scope: CallScope, roots: Roots
) -> None:
    model = scripted({"summary": "ok", "verdict": "approve", "findings": []})
    _run(ReportJob("pr_review", CALCULATOR, upstream_patches=(PATCH,)), model, scope, roots)
    assert "+    return a + b" in model.calls[0][1][0]["content"]

    with pytest.raises(NothingToReviewError, match="the change is empty"):
        _run(ReportJob("pr_review", CALCULATOR, upstream_patches=("",)), model, scope, roots)
    with pytest.raises(ValueError, match="give base_ref/head_ref or patch_file"):
        _run(ReportJob("pr_review", CALCULATOR), model, scope, roots)
    with pytest.raises(FileNotFoundError, match=r"'missing\.patch' not found"):
        _run(ReportJob("pr_review", CALCULATOR, patch_file="missing.patch"), model, scope, roots)
