"""What a human approver sees of the coding tasks before it, and how the decision is recorded.

A ``human_approval`` task that follows coding tasks and has no ``body`` of its own shows, per task: the status
and iterations, the review, the validation (command, exit code, sandbox, output tail) and the diff. The
decision is written next to each task's artifacts as ``approval.json`` and returned in the approval's XCom.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from supervisor_lib.coding.artifacts import ArtifactFolder
from supervisor_lib.coding.prompting import clip_middle, fenced

__all__ = ["approval_body", "record_approval", "upstream_results"]

BODY_DIFF_CHARS = 6000
BODY_OUTPUT_CHARS = 1500


def upstream_results(ti: Any, task_ids: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(task_id, result)`` of each upstream coding task that has a result; a mapped task gives one per item."""
    for task_id in task_ids:
        value = ti.xcom_pull(task_ids=task_id)
        items = [value] if isinstance(value, dict) or value is None else list(value)
        for index, item in enumerate(items):
            if isinstance(item, dict) and "status" in item:
                yield (task_id if len(items) == 1 else f"{task_id}[{index}]"), item


def approval_body(results: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The Markdown body of the approval: one section per coding task result."""
    if not results:
        return "No result of the preceding coding tasks is available (they may have been skipped)."
    return "\n\n---\n\n".join(_section(task_id, result) for task_id, result in results)


def _section(task_id: str, result: dict[str, Any]) -> str:
    count = len(result.get("iterations") or [])
    lines = [f"### `{task_id}` ({result.get('task_type', 'task')}): **{result['status']}**"]
    if count:
        lines.append(f"{count} iteration(s), cost {result.get('cost_usd')} USD")
    lines += [f"> warning: {warning}" for warning in result.get("warnings") or []]
    if result.get("review"):
        lines += ["", _review(result["review"])]
    if result.get("validation"):
        lines += ["", _validation(result["validation"])]
    if result.get("diff_preview"):
        lines += ["", "**Change**", "", fenced(clip_middle(result["diff_preview"], BODY_DIFF_CHARS), "diff")]
    elif result.get("report"):
        lines += ["", f"**Report**: {result['report'].get('summary', '')}"]
    if result.get("branch"):
        lines += ["", f"Branch `{result['branch']}` (commit `{str(result.get('commit'))[:12]}`)"]
    if result.get("artifacts"):
        lines.append(f"Artifacts: `{result['artifacts']}`")
    return "\n".join(lines)


def _review(review: dict[str, Any]) -> str:
    lines = [f"**Review** by {review.get('reviewer')}: **{review['decision']}**. {review.get('summary', '')}"]
    for comment in review.get("comments") or []:
        where = ":".join(str(part) for part in (comment.get("file"), comment.get("line")) if part is not None)
        lines.append(f"- {where + ': ' if where else ''}{comment.get('message', '')}")
    return "\n".join(lines)


def _validation(validation: dict[str, Any]) -> str:
    ending = validation.get("killed_reason") or f"exit code {validation.get('exit_code')}"
    head = (
        f"**Validation**: `{validation['command']}` ended with {ending} in {validation.get('duration_s')}s "
        f"({validation.get('isolation')} sandbox)"
    )
    output = clip_middle(str(validation.get("output_tail") or ""), BODY_OUTPUT_CHARS)
    return f"{head}\n\n{fenced(output, 'text')}" if output.strip() else head


def record_approval(
    results: Sequence[tuple[str, dict[str, Any]]], *, approved: bool | None, chosen: Sequence[str], by: Any
) -> list[str]:
    """Write ``approval.json`` into each result's artifact folder; return the files written.

    :param approved: the Approve/Reject decision; ``None`` for a choice among custom options.
    """
    record = {"approved": approved, "chosen_options": list(chosen), "by": by, "at": datetime.now(UTC).isoformat()}
    written = []
    for task_id, result in results:
        if result.get("artifacts"):
            folder = ArtifactFolder(str(result["artifacts"]))
            written.append(folder.write_json("approval.json", {**record, "task": task_id}))
    return written
