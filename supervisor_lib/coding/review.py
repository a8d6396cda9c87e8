"""The review step: a second model (by default on the other provider) judges a change before it is accepted.

The reviewer sees the author's instructions, how the validation went and the diff, and answers with structured
output matching :data:`REVIEW_SCHEMA`::

    {"decision": "approve" | "request_changes", "summary": "...",
     "comments": [{"file": "src/x.py" | null, "line": 12 | null, "message": "..."}]}

``request_changes`` feeds one more iteration of the loop when iterations remain (see :mod:`.loop`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from supervisor_lib.coding import prompting
from supervisor_lib.coding.chat import Answer, Ask

__all__ = ["REVIEW_SCHEMA", "Review", "Reviewer"]

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "request_changes"]},
        "summary": {"type": "string"},
        "comments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": ["string", "null"]},
                    "line": {"type": ["integer", "null"]},
                    "message": {"type": "string"},
                },
                "required": ["file", "line", "message"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["decision", "summary", "comments"],
    "additionalProperties": False,
}

Decision = Literal["approve", "request_changes"]


@dataclass(frozen=True)
class Review:
    """A reviewer's verdict on one version of the change.

    :param reviewer: who reviewed: ``provider model``.
    :param iteration: the loop iteration whose change was reviewed.
    """

    decision: Decision
    summary: str
    comments: tuple[dict[str, Any], ...]
    reviewer: str
    iteration: int

    @property
    def approved(self) -> bool:
        return self.decision == "approve"

    @classmethod
    def from_output(cls, output: dict[str, Any], reviewer: str, iteration: int) -> Review:
        """From the reviewer's schema-valid structured output."""
        return cls(output["decision"], output["summary"], tuple(output["comments"]), reviewer, iteration)

    def as_dict(self) -> dict[str, Any]:
        """The ``review`` of a task result."""
        return {
            "decision": self.decision,
            "summary": self.summary,
            "comments": [dict(comment) for comment in self.comments],
            "reviewer": self.reviewer,
            "iteration": self.iteration,
        }

    def as_markdown(self) -> str:
        """The summary and one bullet per comment (``file:line: message``), for the author and the approver."""
        lines = [f"**{self.decision}**: {self.summary.strip()}"]
        for comment in self.comments:
            where = ":".join(str(part) for part in (comment.get("file"), comment.get("line")) if part is not None)
            lines.append(f"- {where + ': ' if where else ''}{comment['message'].strip()}")
        return "\n".join(lines)


@dataclass
class Reviewer:
    """Ask the reviewer model about one version of the change.

    :param ask: the reviewer's model (another provider than the author's, by default).
    :param label: how the reviewer is named in results when the answer does not say (``provider model``).
    """

    ask: Ask
    label: str
    task_type: str
    instructions: str

    def __call__(self, iteration: int, diff: str, validation: str) -> tuple[Review, Answer]:
        """Review the change of ``iteration``; ``validation`` says how its validation went, in a few lines."""
        message = prompting.review_task(self.task_type, self.instructions, validation, diff)
        answer = self.ask(
            f"review-{iteration}",
            [{"role": "user", "content": message}],
            system=prompting.review_system(),
            output_schema=REVIEW_SCHEMA,
        )
        label = f"{answer.provider} {answer.model}" if answer.provider and answer.model else self.label
        return Review.from_output(answer.output, label, iteration), answer
