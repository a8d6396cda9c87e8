"""A read-only task end to end: a throw-away worktree, the context, one structured model call, the checked report.

``run_report_job`` is what :class:`~supervisor_lib.operators.coding.ReportOperator` runs. What the model sees:

* ``pr_review``: the diff (``base_ref...head_ref`` in the cache repo, a ``patch_file``, or the patches of the
  upstream write tasks) first, then the changed files at the head (with line numbers).
* ``issue_summary``: the issue (``issue`` text or ``issue_file``), then the files it mentions.
* the others: the instructions rank a repo map and the most relevant files (or the ``paths`` globs).

The report matches the type's schema (:mod:`.reports`); findings that cite missing files or lines past a file's
end become ``warnings`` in the result. The result has the write tasks' shape, with ``status`` ``passed``, the
``report``, and no ``patch``, ``branch`` or ``iterations``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor_lib.coding import prompting
from supervisor_lib.coding.jobs import Log, Target, artifact_folder, line_counts, open_workspace, read_input_file
from supervisor_lib.coding.reports import check_findings, report_schema
from supervisor_lib.workspace import Context, Workspace, diff_between, gather_context

if TYPE_CHECKING:
    from supervisor_lib.coding.chat import Ask
    from supervisor_lib.coding.settings import Roots
    from supervisor_lib.execution.runner import CallScope

__all__ = ["NothingToReviewError", "ReportJob", "run_report_job"]


class NothingToReviewError(Exception):
    """A ``pr_review`` has no change to review (its upstream change is empty): the operator skips the task."""


@dataclass(frozen=True)
class ReportJob:
    """A read-only task.

    :param upstream_patches: diffs of the upstream write tasks, reviewed by a ``pr_review`` that names no refs
        and no patch file; ``None`` when the task has no upstream write task.
    :param project_root: where relative ``issue_file`` / ``patch_file`` paths are looked up after the repo.
    """

    task_type: str
    target: Target
    instructions: str | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    patch_file: str | None = None
    issue: str | None = None
    issue_file: str | None = None
    upstream_patches: tuple[str, ...] | None = None
    extra_system: str | None = None
    project_root: Path | None = None

    @property
    def reviews_refs(self) -> bool:
        return self.base_ref is not None or self.head_ref is not None


def run_report_job(job: ReportJob, scope: CallScope, reporter: Ask, roots: Roots, log: Log) -> dict[str, Any]:
    """Run the job and return the task result.

    :raises NothingToReviewError: a ``pr_review`` whose change is empty.
    :raises ValueError: a ``pr_review`` with no change to review at all (no refs, patch file or upstream change).
    :raises FileNotFoundError: an ``issue_file`` or ``patch_file`` that does not exist.
    """
    folder = artifact_folder(scope, roots)
    folder.clear()
    target = dataclasses.replace(job.target, ref=job.head_ref) if job.head_ref else job.target
    with open_workspace(target, scope, roots, keep="never") as workspace:
        context = _context(job, workspace)
        log.info("context: %d file(s), ~%d tokens: %s", len(context.files), context.tokens, ", ".join(context.files))
        for line in context.omitted:
            log.info("context left out %s", line)
        messages = [{"role": "user", "content": prompting.report_task(job.task_type, job.instructions, context.text)}]
        answer = reporter(
            "report",
            messages,
            system=prompting.report_system(job.extra_system),
            output_schema=report_schema(job.task_type),
        )
        warnings = check_findings(answer.output, line_counts(workspace.path))
    for warning in warnings:
        log.warning("report: %s", warning)
    result = {
        "status": "passed",
        "task_type": job.task_type,
        "report": answer.output,
        "iterations": [],
        "patch": None,
        "branch": None,
        "review": None,
        "usage": {**answer.usage, "calls": 1, "cached_calls": int(answer.cached)},
        "cost_usd": answer.cost_usd,
        "warnings": warnings,
        "context": {"files": context.files, "omitted": context.omitted, "tokens": context.tokens},
        "repo": target.repo,
        "ref": target.ref,
        "model": f"{answer.provider} {answer.model}",
        "artifacts": folder.location,
    }
    folder.write_json("report.json", answer.output)
    folder.write_json("context.json", result["context"])
    folder.write_json("conversation.json", [*messages, {"role": "assistant", "content": answer.text}])
    folder.write_json("result.json", result)
    return result


def _context(job: ReportJob, workspace: Workspace) -> Context:
    root = job.project_root or Path.cwd()
    diff = _diff(job, workspace, root) if job.task_type == "pr_review" else None
    issue = job.issue
    if issue is None and job.issue_file:
        issue = read_input_file(job.issue_file, workspace.path, root)
    target = job.target
    return gather_context(
        workspace.path,
        paths=list(target.paths) if target.paths is not None else None,
        max_tokens=target.context_tokens,
        diff=diff,
        issue=issue,
        line_numbers=True,
        hint=job.instructions,
    )


def _diff(job: ReportJob, workspace: Workspace, project_root: Path) -> str:
    if job.patch_file:
        diff = read_input_file(job.patch_file, workspace.path, project_root)
    elif job.reviews_refs:
        diff = diff_between(workspace.cache_repo, job.base_ref or "HEAD", job.head_ref or "HEAD")
    elif job.upstream_patches is not None:
        diff = "".join(patch if patch.endswith("\n") else patch + "\n" for patch in job.upstream_patches if patch)
    else:
        raise ValueError(
            "pr_review has no change to review: give base_ref/head_ref or patch_file, or make it depend on a "
            "write task (bug_fix, feature, refactor, testing)"
        )
    if not diff.strip():
        raise NothingToReviewError("nothing to review: the change is empty")
    return diff
