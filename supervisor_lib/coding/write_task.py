"""A write task end to end: workspace, context, the edit loop, the branch commit, artifacts and the result.

``run_write_job`` is what :class:`~supervisor_lib.operators.coding.CodingTaskOperator` runs; it needs no Airflow,
so tests and the benchmark harness call it directly. The result (the task's XCom value)::

    status          passed | failed | no_changes | rejected
    iterations      one record per iteration (outcome, edit summary, error, validation, review, duration,
                    tokens, cost)
    patch           where patch.diff was written (None when the diff is empty)
    branch, commit  the workspace's commit on supervisor/<dag>/<run>/<task> in the cache repo (passed only)
    validation      the last validation: command, exit code, limit hit, isolation, output tail, warnings
    review          the last review (decision, summary, comments, reviewer) or None
    report          {"summary": the model's explanation of its change}
    usage, cost_usd tokens and calls of every model call of this try (cached answers cost 0)
    sandbox         isolation used, network isolation, sandbox warnings (e.g. NO SANDBOX)
    warnings        everything the approver should know (no validation command, no sandbox...)
    artifacts, workspace, context, base_commit, files_changed, diff_preview, repo, ref
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor_lib.coding import prompting
from supervisor_lib.coding.jobs import Log, Target, artifact_folder, open_workspace, task_branch, validation_env
from supervisor_lib.coding.loop import Check, EditLoop, LoopResult, LoopTask, sandbox_validator, validation_record
from supervisor_lib.workspace import Context, KeepPolicy, SandboxResult, Workspace, gather_context

if TYPE_CHECKING:
    from supervisor_lib.coding.artifacts import ArtifactFolder
    from supervisor_lib.coding.chat import Ask
    from supervisor_lib.coding.review import Reviewer
    from supervisor_lib.coding.settings import Roots
    from supervisor_lib.execution.runner import CallScope

__all__ = ["DIFF_PREVIEW_CHARS", "WriteJob", "run_write_job"]

DIFF_PREVIEW_CHARS = 8000
OUTPUT_TAIL_CHARS = 3000
NO_CHECK_WARNING = "no validate command: the change was not tested, only checked to apply cleanly"


@dataclass(frozen=True)
class WriteJob:
    """A write task: change the code of ``target`` as ``instructions`` say until ``check`` passes.

    :param keep_workspace: ``on_failure`` keeps the worktree when the status is not passed/no_changes.
    :param extra_system: the spec's ``system`` text, added after Supervisor's system prompt.
    """

    task_type: str
    instructions: str
    target: Target
    check: Check | None = None
    max_iterations: int = 3
    keep_workspace: KeepPolicy = "on_failure"
    extra_system: str | None = None


def run_write_job(
    job: WriteJob, scope: CallScope, coder: Ask, roots: Roots, log: Log, reviewer: Reviewer | None = None
) -> dict[str, Any]:
    """Run the job; return the task result (see the module docstring). Artifacts are written even when a model
    call or a workspace step raises (then with what happened so far) before the error propagates."""
    folder = artifact_folder(scope, roots)
    folder.clear()
    workspace = open_workspace(job.target, scope, roots, job.keep_workspace)
    with workspace:
        context = _context(job, workspace, log)
        folder.write_json("context.json", _context_record(context))
        validator = sandbox_validator(job.check, validation_env()) if job.check else None
        task = LoopTask(job.task_type, job.instructions, context.text, job.check, job.max_iterations, job.extra_system)
        loop = EditLoop(workspace, task, coder, reviewer=reviewer, validator=validator, log=log)
        try:
            outcome = loop.run()
        except BaseException:
            folder.write_json("iterations.json", [it.as_dict() for it in loop.iterations])
            folder.write_json("conversation.json", loop.messages)
            raise
        if outcome.status not in ("passed", "no_changes"):
            workspace.mark_failed()
        commit = (
            workspace.commit(task_branch(scope), _commit_message(job, scope)) if outcome.status == "passed" else None
        )
        result = _result(job, scope, workspace, outcome, context, commit)
        _write_artifacts(folder, outcome, result)
    result["workspace"] = str(workspace.path) if workspace.path.exists() else None
    folder.write_json("result.json", result)
    return result


def _context(job: WriteJob, workspace: Workspace, log: Log) -> Context:
    target = job.target
    paths = list(target.paths) if target.paths is not None else None
    context = gather_context(workspace.path, paths=paths, max_tokens=target.context_tokens, hint=job.instructions)
    log.info("context: %d file(s), ~%d tokens: %s", len(context.files), context.tokens, ", ".join(context.files))
    for line in context.omitted:
        log.info("context left out %s", line)
    return context


def _context_record(context: Context) -> dict[str, Any]:
    return {"files": context.files, "omitted": context.omitted, "tokens": context.tokens}


def _commit_message(job: WriteJob, scope: CallScope) -> str:
    first = (job.instructions.strip().splitlines() or [job.task_type])[0][:72]
    return f"{job.task_type}: {first}\n\nSupervisor task {scope.dag_id} / {scope.run_id} / {scope.task_id}\n"


def _result(
    job: WriteJob, scope: CallScope, ws: Workspace, outcome: LoopResult, context: Context, commit: str | None
) -> dict[str, Any]:
    validation = _validation(job.check, outcome.validation)
    warnings = [*outcome.sandbox_warnings] + ([] if job.check else [NO_CHECK_WARNING])
    return {
        "status": outcome.status,
        "task_type": job.task_type,
        "iterations": [iteration.as_dict() for iteration in outcome.iterations],
        "patch": None,  # set once written
        "branch": task_branch(scope) if commit else None,
        "commit": commit,
        "base_commit": ws.base_sha,
        "files_changed": ws.changed_files(),
        "diff_preview": prompting.clip_middle(outcome.diff, DIFF_PREVIEW_CHARS),
        "validation": validation,
        "review": outcome.review.as_dict() if outcome.review else None,
        "report": {"summary": outcome.summary},
        "usage": outcome.tally.as_dict(),
        "cost_usd": outcome.tally.cost_usd,
        "sandbox": _sandbox(outcome.validation, outcome.sandbox_warnings),
        "warnings": warnings,
        "context": _context_record(context),
        "repo": job.target.repo,
        "ref": job.target.ref,
    }


def _validation(check: Check | None, result: SandboxResult | None) -> dict[str, Any] | None:
    if check is None or result is None:
        return None
    return {
        "command": check.command,
        "timeout_s": check.timeout_s,
        **(validation_record(result) or {}),
        "output_tail": result.output[-OUTPUT_TAIL_CHARS:],
        "warnings": list(result.warnings),
    }


def _sandbox(result: SandboxResult | None, warnings: list[str]) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"isolation": result.isolation, "network_isolated": result.network_isolated, "warnings": warnings}


def _write_artifacts(folder: ArtifactFolder, outcome: LoopResult, result: dict[str, Any]) -> None:
    if outcome.diff.strip():
        result["patch"] = folder.write_text("patch.diff", outcome.diff)
    folder.write_json("iterations.json", result["iterations"])
    folder.write_json("conversation.json", outcome.messages)
    for number, output in outcome.validation_logs.items():
        folder.write_text(f"validation-{number}.log", output)
    if outcome.review:
        folder.write_json("review.json", outcome.review.as_dict())
    result["artifacts"] = folder.location


def summary_line(result: dict[str, Any]) -> str:
    """One line for the task log: status, iterations, validation, review, cost."""
    validation = result.get("validation") or {}
    review = result.get("review") or {}
    return json.dumps(
        {
            "status": result["status"],
            "iterations": len(result["iterations"]),
            "exit_code": validation.get("exit_code"),
            "killed_reason": validation.get("killed_reason"),
            "review": review.get("decision"),
            "cost_usd": result["cost_usd"],
        }
    )
