"""Report schemas: valid JSON Schemas, strict-mode friendly, and checks of findings against the repo."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from supervisor_lib.coding.reports import REPORT_TYPES, check_findings, report_schema
from supervisor_lib.coding.review import REVIEW_SCHEMA
from supervisor_lib.spec import READ_ONLY_TYPES

FINDING = {
    "file": "src/pay.py",
    "line": 3,
    "severity": "high",
    "category": "bug",
    "message": "wrong divisor",
    "suggestion": "divide by 100",
}


def _objects(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        found = [schema] if schema.get("type") == "object" else []
        return found + [o for value in schema.values() for o in _objects(value)]
    if isinstance(schema, list):
        return [o for value in schema for o in _objects(value)]
    return []


def test_every_read_only_spec_type_has_a_report_schema() -> None:
    assert set(REPORT_TYPES) == {str(t) for t in READ_ONLY_TYPES} - {"llm"}


@pytest.mark.parametrize("schema", [*(report_schema(t) for t in REPORT_TYPES), REVIEW_SCHEMA])
def test_schemas_are_valid_and_strict(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    for obj in _objects(schema):
        assert obj["additionalProperties"] is False and sorted(obj["required"]) == sorted(obj["properties"])


def test_a_finding_report_validates() -> None:
    report = {"summary": "one bug", "findings": [FINDING], "modules": ["src/pay.py"]}
    assert not list(Draft202012Validator(report_schema("code_analysis")).iter_errors(report))
    bad = {**report, "findings": [{**FINDING, "severity": "urgent"}]}
    assert list(Draft202012Validator(report_schema("code_analysis")).iter_errors(bad))


def test_unknown_types_are_named() -> None:
    with pytest.raises(ValueError, match="known: pr_review, issue_summary"):
        report_schema("bug_fix")


def test_findings_citing_missing_files_or_lines_are_flagged() -> None:
    report = {
        "findings": [
            FINDING,
            {**FINDING, "file": "src/ghost.py"},
            {**FINDING, "line": 99},
            {**FINDING, "file": None, "line": None},
        ]
    }
    assert check_findings(report, {"src/pay.py": 10}) == [
        "finding 2 cites 'src/ghost.py', which is not a file of the repository",
        "finding 3 cites src/pay.py:99, but the file has 10 lines",
    ]
    assert check_findings({"summary": "no findings key"}, {}) == []
