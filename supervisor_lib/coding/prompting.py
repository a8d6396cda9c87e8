"""The prompts of supervised coding tasks, from the Markdown templates in ``prompts/`` (package data).

Templates use ``string.Template`` placeholders (``$name``), so code and JSON in the values need no escaping.
Everything here is deterministic: the same task, files and validation output always give the same prompt, which
is what lets a retried task hit the response cache instead of paying for the same answers again. Validation
output is normalised for that reason (durations, addresses and scratch paths vary from run to run).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from string import Template

from supervisor_lib.workspace import SandboxResult

__all__ = [
    "DIFF_LIMIT",
    "OUTPUT_LIMIT",
    "clip_middle",
    "edit_system",
    "edit_task",
    "feedback_edit_error",
    "feedback_no_changes",
    "feedback_review",
    "feedback_validation",
    "fenced",
    "normalize_output",
    "render",
    "report_system",
    "report_task",
    "review_system",
    "review_task",
    "validation_ending",
]

#: characters of validation output a feedback prompt carries (head and tail kept)
OUTPUT_LIMIT = 6000
#: characters of the current diff a feedback prompt carries
DIFF_LIMIT = 12000

_VOLATILE = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<timestamp>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:s| ?ms| seconds?)\b"), "<duration>"),
    (re.compile(r"\(\d+:\d{2}:\d{2}(?:\.\d+)?\)"), "(<duration>)"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<address>"),
    (re.compile(r"supervisor-sandbox-[A-Za-z0-9_]+"), "supervisor-sandbox-<scratch>"),
    (re.compile(r"\bpid[ =:]*\d+\b", re.IGNORECASE), "pid <n>"),
)


@functools.cache
def _template(name: str) -> Template:
    text = resources.files("supervisor_lib.coding").joinpath("prompts", name).read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: object) -> str:
    """Fill the template ``prompts/<name>`` (``KeyError`` when a placeholder has no value)."""
    return _template(name).substitute({key: str(value) for key, value in values.items()}).strip() + "\n"


def _guidance(task_type: str, *, report: bool = False) -> str:
    name = f"types/{task_type}_report.md" if report and task_type == "documentation" else f"types/{task_type}.md"
    try:
        return render(name)
    except FileNotFoundError:
        return ""


def _joined(*parts: str | None) -> str:
    return "\n\n".join(part.strip() for part in parts if part and part.strip()) + "\n"


def normalize_output(text: str) -> str:
    """Replace what varies between two runs of the same command (durations, timestamps, addresses, pids,
    sandbox scratch paths) with fixed markers."""
    for pattern, marker in _VOLATILE:
        text = pattern.sub(marker, text)
    return text


def clip_middle(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its head (a quarter) and tail with a marker between:
    the end of a test run's output (the failures and the summary) matters most."""
    if len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


def fenced(text: str, language: str = "") -> str:
    """``text`` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{language}\n{body}{fence}"


def _diff_block(diff: str) -> str:
    return fenced(clip_middle(diff, DIFF_LIMIT), "diff") if diff.strip() else "(no changes yet)"


def validation_ending(result: SandboxResult, timeout_s: float | None = None) -> str:
    """How a validation run ended, in words: ``exit code 1``, ``a timeout (killed after 30s)``..."""
    if result.killed_reason == "timeout":
        after = f" after {timeout_s:g}s" if timeout_s else ""
        return f"a timeout (killed{after})"
    if result.killed_reason:
        return f"the sandbox's {result.killed_reason} limit (exit code {result.exit_code})"
    return f"exit code {result.exit_code}"


def edit_system(task_type: str, extra: str | None = None) -> str:
    """The system prompt of a write task: the SEARCH/REPLACE format, the task type's guidance, then ``extra``."""
    return _joined(render("edit_system.md"), _guidance(task_type), extra)


def edit_task(task_type: str, instructions: str, context: str, command: str | None, timeout_s: float) -> str:
    """The first user message of a write task: the instructions, how the change is checked, the repo context."""
    if command:
        note = (
            f"Supervisor applies your blocks and runs `{command}` in the repository root, in a sandbox without "
            f"network access, stopped after {timeout_s:g}s. The task is done when it exits with code 0."
        )
    else:
        note = "No validation command is configured: your change is accepted when its blocks apply cleanly."
    return render(
        "edit_task.md", task_type=task_type, instructions=instructions.strip(), validation_note=note, context=context
    )


def feedback_edit_error(number: int, error: str, diff: str) -> str:
    """The message after an iteration whose edits could not be parsed or applied."""
    return render("feedback_edit_error.md", number=number, error=error.strip(), diff=_diff_block(diff))


def _output(result: SandboxResult) -> str:
    return clip_middle(normalize_output(result.output), OUTPUT_LIMIT).strip() or "(no output)"


def _feedback_run(template: str, number: int, command: str, result: SandboxResult, timeout_s: float, diff: str) -> str:
    ending = validation_ending(result, timeout_s)
    return render(
        template, number=number, command=command, ending=ending, output=_output(result), diff=_diff_block(diff)
    )


def feedback_validation(number: int, command: str, result: SandboxResult, timeout_s: float, diff: str) -> str:
    """The message after an iteration whose edits applied but whose validation failed."""
    return _feedback_run("feedback_validation.md", number, command, result, timeout_s, diff)


def feedback_no_changes(number: int, command: str, result: SandboxResult, timeout_s: float, diff: str) -> str:
    """The message after the model claimed nothing needs changing although the validation fails."""
    return _feedback_run("feedback_no_changes.md", number, command, result, timeout_s, diff)


def feedback_review(number: int, reviewer: str, review: str, diff: str) -> str:
    """The message after a green iteration whose reviewer requested changes."""
    return render("feedback_review.md", number=number, reviewer=reviewer, review=review, diff=_diff_block(diff))


def report_system(extra: str | None = None) -> str:
    """The system prompt of a read-only report task."""
    return _joined(render("report_system.md"), extra)


def report_task(task_type: str, instructions: str | None, context: str) -> str:
    """The user message of a read-only report task."""
    default = f"Write the {task_type.replace('_', ' ')} report for this repository."
    return render(
        "report_task.md",
        task_type=task_type,
        guidance=_guidance(task_type, report=True).strip(),
        instructions=(instructions or default).strip(),
        context=context,
    )


def review_system() -> str:
    """The reviewer's system prompt."""
    return render("review_system.md")


def review_task(task_type: str, instructions: str, validation: str, diff: str) -> str:
    """The reviewer's user message: the author's instructions, how validation went, and the diff."""
    return render(
        "review_task.md",
        task_type=task_type,
        instructions=instructions.strip(),
        validation=validation,
        diff=_diff_block(diff),
    )
