"""The structured report of each read-only task type: its JSON schema, and checks of a report against the repo.

Every object in the schemas lists all its keys as required and forbids others, with ``null`` for "not
applicable", so the same schema works with both providers' strict structured-output modes. A finding::

    {"file": "src/pay.py", "line": 12, "severity": "high", "category": "bug",
     "message": "fee uses 10 instead of 100", "suggestion": "divide by 100"}

The model's report is validated against the schema by the call runner (one corrective retry, then the task
fails); :func:`check_findings` then compares the findings with the repository, because a model may cite files or
lines that do not exist: those become warnings in the task's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["REPORT_TYPES", "SEVERITIES", "check_findings", "report_schema"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
REPORT_TYPES = ("pr_review", "issue_summary", "code_analysis", "security_audit", "documentation")


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


_TEXT: dict[str, Any] = {"type": "string"}
_FINDING = _obj(
    {
        "file": {"type": ["string", "null"], "description": "path relative to the repository root"},
        "line": {"type": ["integer", "null"], "minimum": 1, "description": "1-based line number"},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "category": {"type": "string", "description": "e.g. bug, complexity, style, injection, secrets"},
        "message": _TEXT,
        "suggestion": {"type": ["string", "null"]},
    }
)
_FINDINGS: dict[str, Any] = {"type": "array", "items": _FINDING}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "pr_review": _obj(
        {
            "summary": _TEXT,
            "verdict": {"type": "string", "enum": ["approve", "request_changes", "comment"]},
            "findings": _FINDINGS,
        }
    ),
    "issue_summary": _obj(
        {
            "summary": _TEXT,
            "kind": {"type": "string", "enum": ["bug", "feature", "question", "chore", "other"]},
            "affected_files": _strings("files the issue concerns, relative to the repository root"),
            "acceptance_criteria": _strings("what must be true when the issue is resolved"),
            "open_questions": _strings("what the issue leaves unclear"),
        }
    ),
    "code_analysis": _obj(
        {
            "summary": _TEXT,
            "findings": _FINDINGS,
            "modules": _strings("the modules (files) analysed"),
        }
    ),
    "security_audit": _obj(
        {
            "summary": _TEXT,
            "risk": {"type": "string", "enum": list(SEVERITIES)},
            "findings": _FINDINGS,
        }
    ),
    "documentation": _obj(
        {
            "summary": _TEXT,
            "documents": {
                "type": "array",
                "items": _obj(
                    {
                        "path": {"type": "string", "description": "where the document belongs in the repository"},
                        "title": _TEXT,
                        "content": {"type": "string", "description": "the document, in Markdown"},
                    }
                ),
            },
        }
    ),
}


def report_schema(task_type: str) -> dict[str, Any]:
    """The JSON schema of a read-only task type's report; ``ValueError`` names the known types."""
    try:
        return _SCHEMAS[task_type]
    except KeyError:
        raise ValueError(f"no report schema for task type {task_type!r}; known: {', '.join(REPORT_TYPES)}") from None


def check_findings(report: Mapping[str, Any], line_counts: Mapping[str, int]) -> list[str]:
    """Warnings for findings that cite a file the repository does not have, or a line past the file's end.

    :param report: a schema-valid report (reports without ``findings`` give no warnings).
    :param line_counts: the repository's files (relative paths) and their line counts.
    """
    findings: Sequence[Mapping[str, Any]] = report.get("findings") or ()
    warnings = []
    for number, finding in enumerate(findings, 1):
        path, line = finding.get("file"), finding.get("line")
        if path is None:
            continue
        if path not in line_counts:
            warnings.append(f"finding {number} cites {path!r}, which is not a file of the repository")
        elif line is not None and line > max(line_counts[path], 1):
            warnings.append(f"finding {number} cites {path}:{line}, but the file has {line_counts[path]} lines")
    return warnings
