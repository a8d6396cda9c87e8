"""Human approval after coding tasks: the body shows their results; the decision lands next to their artifacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.standard.operators.hitl import HITLOperator

from supervisor_lib.coding.approval import approval_body, upstream_results
from supervisor_lib.operators.approval import SpecApprovalOperator, SpecChoiceOperator


def _result(artifacts: Path, **extra: Any) -> dict[str, Any]:
    return {
        "status": "passed",
        "task_type": "bug_fix",
        "iterations": [{"number": 1}, {"number": 2}],
        "cost_usd": 0.0123,
        "warnings": ["NO SANDBOX: ..."],
        "review": {"decision": "approve", "summary": "Good.", "reviewer": "openai gpt-5-mini",
                   "comments": [{"file": "src/a.py", "line": 3, "message": "nice"}]},
        "validation": {"command": "python -m pytest -q", "exit_code": 0, "killed_reason": None, "duration_s": 1.2,
                       "isolation": "bwrap", "output_tail": "3 passed in 0.01s\n"},
        "diff_preview": "--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1 @@\n-x\n+y\n",
        "branch": "supervisor/d/r/fix",
        "commit": "0123456789abcdef",
        "artifacts": str(artifacts),
        **extra,
    }  # fmt: skip


class _TI:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def xcom_pull(self, task_ids: str) -> Any:
        return self.values.get(task_ids)


def test_the_body_shows_status_review_validation_and_diff(tmp_path: Path) -> None:
    body = approval_body([("fix", _result(tmp_path))])

    assert body.startswith("### `fix` (bug_fix): **passed**\n2 iteration(s), cost 0.0123 USD")
    assert "> warning: NO SANDBOX" in body
    assert "**Review** by openai gpt-5-mini: **approve**. Good.\n- src/a.py:3: nice" in body
    assert "**Validation**: `python -m pytest -q` ended with exit code 0 in 1.2s (bwrap sandbox)" in body
    assert "```text\n3 passed in 0.01s\n```" in body and "```diff\n--- a/src/a.py" in body
    assert "Branch `supervisor/d/r/fix` (commit `0123456789ab`)" in body
    report = approval_body([("audit", {"status": "passed", "task_type": "security_audit", "report": {"summary": "S"}})])
    assert "**Report**: S" in report
    assert "No result" in approval_body([])


def test_upstream_results_flatten_mapped_tasks_and_skip_missing(tmp_path: Path) -> None:
    ti = _TI({"fix": _result(tmp_path), "docs": [_result(tmp_path), None], "skipped": None})
    assert [task for task, _ in upstream_results(ti, ["fix", "docs", "skipped"])] == ["fix", "docs[0]"]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: seen.setdefault("body", self.body))
    return seen


def test_an_approval_without_a_body_shows_the_results(asked: dict[str, Any], tmp_path: Path) -> None:
    op = SpecApprovalOperator(task_id="approve", subject="Ship it?", results_from=["fix"])
    op.execute({"ti": _TI({"fix": _result(tmp_path)})})
    assert asked["body"].startswith("### `fix` (bug_fix): **passed**")

    own = SpecApprovalOperator(task_id="approve2", subject="Ship it?", body="My own words", results_from=["fix"])
    own.execute({"ti": _TI({"fix": _result(tmp_path)})})
    assert asked["body"].startswith("### `fix`"), "a body of its own is kept"
    assert own.body == "My own words"


@pytest.mark.parametrize("choice", ["Approve", "Reject"])
def test_the_decision_marks_the_result(choice: str, tmp_path: Path) -> None:
    op = SpecApprovalOperator(task_id="approve", subject="Ship it?", results_from=["fix"])
    event = {
        "chosen_options": [choice],
        "params_input": {},
        "responded_at": datetime(2026, 1, 1, tzinfo=UTC),
        "responded_by_user": {"id": "1", "name": "ada"},
    }
    returned = op.execute_complete({"ti": _TI({"fix": _result(tmp_path)}), "task": op}, event)

    assert returned["approved"] is (choice == "Approve") and returned["chosen_options"] == [choice]
    record = json.loads((tmp_path / "approval.json").read_text())
    assert record["approved"] is (choice == "Approve") and record["task"] == "fix" and record["by"]["name"] == "ada"


def test_a_custom_choice_is_recorded_without_an_approved_flag(tmp_path: Path) -> None:
    op = SpecChoiceOperator(task_id="pick", subject="Which?", options=["Ship", "Hold"], results_from=["fix"])
    event = {"chosen_options": ["Hold"], "params_input": {}, "responded_at": datetime(2026, 1, 1, tzinfo=UTC),
             "responded_by_user": {"id": "1", "name": "ada"}}  # fmt: skip
    op.execute_complete({"ti": _TI({"fix": _result(tmp_path)})}, event)
    record = json.loads((tmp_path / "approval.json").read_text())
    assert record["approved"] is None and record["chosen_options"] == ["Hold"]
