"""Scripted model answers for the coding tests: SEARCH/REPLACE edits on the calculator repo, reviews, reports."""

from __future__ import annotations

from typing import Any


def fix_add(old: str = "return a - b", new: str = "return a + b", prose: str = "add() subtracted.") -> str:
    """An answer with one SEARCH/REPLACE block on the calculator's add()."""
    return (
        f"{prose}\n\ncalculator/core.py\n```python\n<<<<<<< SEARCH\ndef add(a, b):\n"
        f'    """Return the sum of a and b."""\n    {old}\n=======\ndef add(a, b):\n'
        f'    """Return the sum of a and b."""\n    {new}\n>>>>>>> REPLACE\n```\n'
    )


GOOD_FIX = fix_add()
WRONG_FIX = fix_add(new="return a * b", prose="Maybe it should multiply.")
FIX_AFTER_WRONG = fix_add(old="return a * b", prose="Now it adds.")
MALFORMED_FIX = GOOD_FIX.replace("=======\n", "")
ESCAPING_EDIT = (
    "A helper next to the repo.\n\n../../escaped-by-agent.txt\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n"
)
COMMENT_FIX = (
    "Adding the comment.\n\ncalculator/core.py\n<<<<<<< SEARCH\n    return a + b\n=======\n"
    "    return a + b  # the sum, not the difference\n>>>>>>> REPLACE\n"
)

APPROVE: dict[str, Any] = {"decision": "approve", "summary": "Looks right.", "comments": []}
CHANGES: dict[str, Any] = {
    "decision": "request_changes",
    "summary": "Correct, but explain the fix.",
    "comments": [{"file": "calculator/core.py", "line": 6, "message": "ADD-A-COMMENT saying why"}],
}

_FINDING = {
    "file": "calculator/core.py",
    "line": 6,
    "severity": "high",
    "category": "bug",
    "message": "add() subtracts",
    "suggestion": "return a + b",
}
#: a schema-valid report per read-only type
REPORTS: dict[str, dict[str, Any]] = {
    "pr_review": {"summary": "Fixes add().", "verdict": "approve", "findings": []},
    "issue_summary": {
        "summary": "add() returns a - b.",
        "kind": "bug",
        "affected_files": ["calculator/core.py"],
        "acceptance_criteria": ["add(2, 3) == 5"],
        "open_questions": [],
    },
    "code_analysis": {"summary": "One bug.", "findings": [_FINDING], "modules": ["calculator/core.py"]},
    "security_audit": {"summary": "Nothing exploitable.", "risk": "info", "findings": []},
    "documentation": {
        "summary": "Documents the calculator.",
        "documents": [{"path": "docs/calculator.md", "title": "Calculator", "content": "# Calculator\n"}],
    },
}
