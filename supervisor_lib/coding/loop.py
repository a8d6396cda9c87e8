"""Iterate until green: ask for edits, apply them in the workspace, validate in the sandbox, feed back, repeat.

One conversation per task: the first user message holds the instructions and the repository context; after
each iteration that does not finish the task, the model gets a feedback message — the parse or apply error
(with the closest lines of the file), or the validation's normalised, truncated output — plus the current diff.
Edits accumulate in the workspace: the model always edits the current files.

An iteration ends as one of:

===================  =============================================================================  =========
outcome              when                                                                           next
===================  =============================================================================  =========
``edit_error``       the answer has no usable edits (malformed, no match, unsafe path)               feedback
``validation_failed`` the edits applied but the validation command failed (or hit a sandbox limit)  feedback
``changes_requested`` green, but the reviewer asked for changes and iterations remain                feedback
``passed``           green (and approved, when there is a reviewer)                                  done
``no_changes``       green with an empty diff (the model found nothing to change)                    done
``rejected``         green, but the reviewer asked for changes in the last iteration                 done
===================  =============================================================================  =========

When ``max_iterations`` run out before that, the status is ``failed``.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from supervisor_lib.coding import prompting
from supervisor_lib.coding.chat import Answer, Ask, Message, Tally
from supervisor_lib.coding.jobs import Log
from supervisor_lib.coding.review import Review, Reviewer
from supervisor_lib.workspace import (
    ApplyResult,
    EditError,
    EditParseError,
    Isolation,
    SandboxResult,
    UnsafePathError,
    Workspace,
    apply_answer,
    run_sandboxed,
)

__all__ = ["Check", "EditLoop", "Iteration", "LoopResult", "LoopTask", "SandboxLimits", "Status", "sandbox_validator"]

Status = Literal["passed", "failed", "no_changes", "rejected"]
Outcome = Literal["edit_error", "validation_failed", "changes_requested", "passed", "no_changes", "rejected"]
Validator = Callable[[Path], SandboxResult]
NO_CHANGES = "NO_CHANGES_NEEDED"
_SEARCH_MARKER = re.compile(r"^<{5,9} ?SEARCH\s*$", re.M)
_FENCE = r"(?:[ \t]*(?:```|~~~)[^\n]*\n)?"
_BLOCK = re.compile(rf"^[^\n]*\n{_FENCE}<{{5,9}} ?SEARCH[^\n]*\n.*?^>{{5,9}} ?REPLACE[^\n]*\n?{_FENCE}", re.M | re.S)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of the validation sandbox (see :func:`supervisor_lib.workspace.run_sandboxed`)."""

    cpu_s: int = 600
    memory_mb: int = 4096
    max_procs: int = 256
    max_file_mb: int = 256
    output_limit: int = 20000
    isolation: Isolation | None = None


@dataclass(frozen=True)
class Check:
    """The validation command a change must pass: run in the workspace root, in the sandbox."""

    command: str
    timeout_s: float = 300.0
    limits: SandboxLimits = field(default_factory=SandboxLimits)


def sandbox_validator(check: Check, env: dict[str, str] | None = None) -> Validator:
    """Run ``check`` with :func:`run_sandboxed` in a given workspace; ``env`` adds variables (secrets dropped)."""
    limits = check.limits

    def validate(path: Path) -> SandboxResult:
        return run_sandboxed(
            check.command,
            path,
            timeout_s=check.timeout_s,
            cpu_s=limits.cpu_s,
            memory_mb=limits.memory_mb,
            max_procs=limits.max_procs,
            max_file_mb=limits.max_file_mb,
            output_limit=limits.output_limit,
            env=env,
            isolation=limits.isolation,
        )

    return validate


@dataclass(frozen=True)
class LoopTask:
    """What the loop works on.

    :param context: the repository context for the first prompt (see :func:`~supervisor_lib.workspace.gather_context`).
    :param check: the validation; ``None`` accepts any change that applies (the result warns about it).
    :param extra_system: more system prompt text (the spec's ``system``), after Supervisor's own.
    """

    task_type: str
    instructions: str
    context: str
    check: Check | None = None
    max_iterations: int = 3
    extra_system: str | None = None


@dataclass
class Iteration:
    """The record of one iteration, as it appears in the task's result and ``iterations.json``."""

    number: int
    outcome: Outcome
    edit_summary: str
    files_changed: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: Literal["parse", "apply", "unsafe_path"] | None = None
    validation: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    duration_s: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoopResult:
    """How the loop ended: the status, every iteration, the final diff, the last review and validation run.

    :param validation: the last validation run, whichever iteration ran it.
    :param sandbox_warnings: every distinct warning of every validation run, in order.
    """

    status: Status
    iterations: list[Iteration]
    diff: str
    review: Review | None
    validation: SandboxResult | None
    summary: str
    tally: Tally
    messages: list[Message]
    validation_logs: dict[int, str]
    sandbox_warnings: list[str]


@dataclass
class _Step:
    outcome: Outcome
    feedback: str = ""
    error: EditError | None = None
    applied: ApplyResult | None = None
    validation: SandboxResult | None = None
    review: Review | None = None

    @property
    def final(self) -> bool:
        return self.outcome in ("passed", "no_changes", "rejected")


class EditLoop:
    """Run :class:`LoopTask` in ``workspace`` with the model ``coder`` (and optionally ``reviewer``).

    :param validator: runs the check in a workspace path; by default :func:`sandbox_validator` of ``task.check``.
    :param log: where progress goes (the Airflow task log in an operator).
    """

    def __init__(
        self,
        workspace: Workspace,
        task: LoopTask,
        coder: Ask,
        *,
        reviewer: Reviewer | None = None,
        validator: Validator | None = None,
        log: Log | None = None,
    ) -> None:
        self.workspace, self.task, self.coder, self.reviewer = workspace, task, coder, reviewer
        self.validator = validator or (sandbox_validator(task.check) if task.check else None)
        self.log: Log = log or logging.getLogger(__name__)
        self.iterations: list[Iteration] = []
        self.messages: list[Message] = []
        self.validation_logs: dict[int, str] = {}
        self.sandbox_warnings: list[str] = []
        self.last_run: SandboxResult | None = None
        self.last_review: Review | None = None
        self.tally = Tally()
        self._answer: Answer | None = None

    def run(self) -> LoopResult:
        """Iterate until a final outcome or ``max_iterations``; the result records every iteration."""
        task = self.task
        check = task.check.command if task.check else None
        timeout = task.check.timeout_s if task.check else 0.0
        self.messages = [
            {
                "role": "user",
                "content": prompting.edit_task(task.task_type, task.instructions, task.context, check, timeout),
            }
        ]
        system = prompting.edit_system(task.task_type, task.extra_system)
        for number in range(1, task.max_iterations + 1):
            step = self._iterate(number, system)
            if step.final:
                return self._result(cast("Status", step.outcome))
            self.messages.append({"role": "user", "content": step.feedback})
        return self._result("failed")

    def _iterate(self, number: int, system: str) -> _Step:
        started, tally = time.monotonic(), Tally()
        answer = self.coder(f"iteration-{number}", self.messages, system=system)
        tally.add(answer)
        self.messages.append({"role": "assistant", "content": answer.text})
        self._answer = answer
        step = self._attempt(number, answer.text, tally)
        record = _record(number, step, tally, time.monotonic() - started, answer.cached)
        self.iterations.append(record)
        self.tally.merge(tally)
        self.log.info("iteration %d: %s (%s)", number, record.outcome, record.error or record.edit_summary)
        return step

    def _attempt(self, number: int, text: str, tally: Tally) -> _Step:
        claims_none = NO_CHANGES in text and not _SEARCH_MARKER.search(text)
        applied = None
        if not claims_none:
            try:
                applied = apply_answer(self.workspace.path, text)
            except EditError as err:
                feedback = prompting.feedback_edit_error(number, str(err), self.workspace.diff())
                return _Step("edit_error", feedback, error=err)
        diff = self.workspace.diff()
        result = self._validate(number)
        if result is not None and not result.passed:
            assert self.task.check is not None
            command, timeout = self.task.check.command, self.task.check.timeout_s
            feedback_for = prompting.feedback_no_changes if claims_none else prompting.feedback_validation
            feedback = feedback_for(number, command, result, timeout, diff)
            return _Step("validation_failed", feedback, applied=applied, validation=result)
        if not diff.strip():
            return _Step("no_changes", applied=applied, validation=result)
        return self._review(number, diff, _Step("passed", applied=applied, validation=result), tally)

    def _validate(self, number: int) -> SandboxResult | None:
        if self.validator is None:
            return None
        result = self.validator(self.workspace.path)
        self.validation_logs[number], self.last_run = result.output, result
        for warning in result.warnings:
            self.log.warning("validation sandbox: %s", warning)
            if warning not in self.sandbox_warnings:
                self.sandbox_warnings.append(warning)
        return result

    def _review(self, number: int, diff: str, step: _Step, tally: Tally) -> _Step:
        if self.reviewer is None:
            return step
        review, answer = self.reviewer(number, diff, self._validation_note(step.validation))
        tally.add(answer)
        step.review = self.last_review = review
        self.log.info("review of iteration %d by %s: %s", number, review.reviewer, review.decision)
        if review.approved:
            return step
        if number < self.task.max_iterations:
            step.outcome = "changes_requested"
            step.feedback = prompting.feedback_review(number, review.reviewer, review.as_markdown(), diff)
        else:
            step.outcome = "rejected"
        return step

    def _validation_note(self, result: SandboxResult | None) -> str:
        if result is None or self.task.check is None:
            return "No validation command is configured: the change was not tested."
        # No duration here: the prompt must be the same on a retry, so that the cached review is re-used.
        return f"`{self.task.check.command}` passed (exit code 0, {result.isolation} sandbox)."

    def _result(self, status: Status) -> LoopResult:
        return LoopResult(
            status=status,
            iterations=self.iterations,
            diff=self.workspace.diff(),
            review=self.last_review,
            validation=self.last_run,
            summary=prose(self._answer.text) if self._answer else "",
            tally=self.tally,
            messages=self.messages,
            validation_logs=self.validation_logs,
            sandbox_warnings=self.sandbox_warnings,
        )


def _record(number: int, step: _Step, tally: Tally, duration: float, cached: bool) -> Iteration:
    error = step.error
    return Iteration(
        number=number,
        outcome=step.outcome,
        edit_summary=edit_summary(step.applied) if step.applied else ("no edits" if error is None else "not applied"),
        files_changed=list(step.applied.files_changed) if step.applied else [],
        error=str(error) if error else None,
        error_kind=_error_kind(error),
        validation=validation_record(step.validation),
        review=step.review.as_dict() if step.review else None,
        duration_s=round(duration, 3),
        tokens=tally.tokens,
        cost_usd=tally.cost_usd,
        usage=tally.as_dict(),
        cached=cached,
    )


def _error_kind(error: EditError | None) -> Literal["parse", "apply", "unsafe_path"] | None:
    if error is None:
        return None
    if isinstance(error, EditParseError):
        return "parse"
    return "unsafe_path" if isinstance(error, UnsafePathError) else "apply"


def edit_summary(applied: ApplyResult) -> str:
    """``edited a.py (2 blocks); created b.py``: what one answer's blocks did."""
    created = {outcome.path for outcome in applied.outcomes if outcome.match == "new_file"}
    counts = Counter(outcome.path for outcome in applied.outcomes if outcome.path not in created)
    parts = [f"edited {path} ({n} block{'s' if n > 1 else ''})" for path, n in counts.items()]
    parts += [f"created {path}" for path in sorted(created)]
    return "; ".join(parts) or "no edits"


def validation_record(result: SandboxResult | None) -> dict[str, Any] | None:
    """The part of a sandbox result an iteration records (the output goes to the validation log artifact)."""
    if result is None:
        return None
    return {
        "exit_code": result.exit_code,
        "passed": result.passed,
        "killed_reason": result.killed_reason,
        "timed_out": result.timed_out,
        "duration_s": result.duration_s,
        "isolation": result.isolation,
        "network_isolated": result.network_isolated,
    }


def prose(answer: str, limit: int = 2000) -> str:
    """The explanation in an answer: its text without the SEARCH/REPLACE blocks (and their path lines)."""
    text = _BLOCK.sub("", answer)
    text = re.sub(r"^[ \t]*(?:```|~~~)[^\n]*\n?", "", text, flags=re.M)
    return prompting.clip_middle(re.sub(r"\n{3,}", "\n\n", text).strip(), limit)
