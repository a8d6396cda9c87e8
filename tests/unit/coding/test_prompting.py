"""Prompts: every template renders, the edit format is described exactly, volatile output is normalised."""

from __future__ import annotations

from importlib import resources

import pytest

from supervisor_lib.coding import prompting
from supervisor_lib.coding.reports import REPORT_TYPES
from supervisor_lib.spec import WRITE_TYPES
from supervisor_lib.workspace import SandboxResult, apply_answer, parse_edits


def test_the_system_prompt_shows_the_format_the_parser_accepts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    system = prompting.edit_system("bug_fix", extra="Prefer small diffs.")
    example = system.split("Every change is one block in exactly this form:\n\n", 1)[1].split("\n\nRules:")[0]
    blocks = parse_edits(example)
    assert [(b.path, b.search, b.replace) for b in blocks] == [
        ("path/to/file.py", "the existing lines to replace, copied exactly\n", "the lines that replace them\n")
    ]
    (tmp_path / "path" / "to").mkdir(parents=True)
    (tmp_path / "path/to/file.py").write_text("the existing lines to replace, copied exactly\n")
    apply_answer(tmp_path, example)
    assert (tmp_path / "path/to/file.py").read_text() == "the lines that replace them\n"
    assert "NO_CHANGES_NEEDED" in system and system.rstrip().endswith("Prefer small diffs.")


@pytest.mark.parametrize("task_type", sorted([*WRITE_TYPES, "documentation"]))
def test_every_write_type_has_guidance(task_type: str) -> None:
    assert "## This task:" in prompting.edit_system(task_type)


@pytest.mark.parametrize("task_type", REPORT_TYPES)
def test_every_report_type_has_guidance(task_type: str) -> None:
    text = prompting.report_task(task_type, None, "CONTEXT")
    assert text.startswith(f"# Report: {task_type}") and text.rstrip().endswith("CONTEXT")
    assert "$" not in text.replace("CONTEXT", ""), "every placeholder is filled"


def test_every_template_file_is_used_and_renders() -> None:
    folder = resources.files("supervisor_lib.coding").joinpath("prompts")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".md"))
    result = SandboxResult(1, False, None, "boom", 0.1, True, "bwrap")
    rendered = {
        "edit_system.md": prompting.edit_system("feature"),
        "edit_task.md": prompting.edit_task("feature", "Do it.", "CTX", "make test", 30),
        "feedback_edit_error.md": prompting.feedback_edit_error(1, "bad block", ""),
        "feedback_validation.md": prompting.feedback_validation(2, "make test", result, 30, "DIFF"),
        "feedback_no_changes.md": prompting.feedback_no_changes(2, "make test", result, 30, "DIFF"),
        "feedback_review.md": prompting.feedback_review(3, "openai gpt", "- fix it", "DIFF"),
        "report_system.md": prompting.report_system(),
        "report_task.md": prompting.report_task("code_analysis", "Look.", "CTX"),
        "review_system.md": prompting.review_system(),
        "review_task.md": prompting.review_task("feature", "Do it.", "passed", "DIFF"),
    }
    assert sorted(rendered) == names
    for text in rendered.values():
        assert text.strip() and "$" not in text.replace("$name", "")
    assert "(no changes yet)" in rendered["feedback_edit_error.md"]
    assert "```diff\nDIFF\n```" in rendered["review_task.md"]


def test_volatile_numbers_are_normalised() -> None:
    text = (
        "2 failed, 4 passed in 0.04s\nTook 12 ms; done at 2026-01-02T03:04:05.123+00:00 (0:00:01.5)\n"
        "<object at 0x7f3a9c1e5b2d> pid=4242 /tmp/supervisor-sandbox-k2j_3x/home\nline 42: 5 items"
    )
    assert prompting.normalize_output(text) == (
        "2 failed, 4 passed in <duration>\nTook <duration>; done at <timestamp> (<duration>)\n"
        "<object at 0x<address>> pid <n> /tmp/supervisor-sandbox-<scratch>/home\nline 42: 5 items"
    )


def test_long_text_keeps_its_head_and_a_longer_tail() -> None:
    text = "H" * 500 + "M" * 5000 + "T" * 500
    clipped = prompting.clip_middle(text, 1000)
    assert clipped.startswith("H" * 250) and clipped.endswith("T" * 500) and "[... 5000 characters cut ...]" in clipped
    assert prompting.clip_middle("short", 10) == "short"


def test_fences_outgrow_the_backticks_inside() -> None:
    assert prompting.fenced("a\n```\nb", "md") == "````md\na\n```\nb\n````"


def test_the_ending_of_a_validation_run_is_named() -> None:
    timeout = SandboxResult(None, True, "timeout", "", 3.0, True, "bwrap")
    memory = SandboxResult(1, False, "memory", "", 1.0, True, "bwrap")
    assert prompting.validation_ending(timeout, 3) == "a timeout (killed after 3s)"
    assert prompting.validation_ending(memory) == "the sandbox's memory limit (exit code 1)"
