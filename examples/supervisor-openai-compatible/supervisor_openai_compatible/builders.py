"""The ``changelog`` task type → Airflow: an LLM call whose prompt is written from the task's ``with:`` settings.

Supervisor calls :func:`changelog_task` like its own factories (``supervisor_lib.build.tasks``); it reuses the
``llm`` task's builder, so the task gets everything an ``llm`` task does: any provider (a plugin's too) or the
router, budgets, the response cache, deferral, ``foreach`` and ``when``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from supervisor_lib.build.tasks import llm_task
from supervisor_lib.spec import TaskSpec, WorkflowSpec
from supervisor_lib.spec.plugins import plugin_settings
from supervisor_openai_compatible.plugin import ChangelogSettings

SYSTEM = (
    "You write changelog entries in the Keep a Changelog style: one Markdown heading per section, one bullet per "
    "change, in plain words for the reader named. Leave out a section with nothing in it. Answer with the entry only."
)


def changelog_prompt(settings: ChangelogSettings, instructions: str | None = None) -> str:
    """The prompt of a changelog task (its templates are rendered by Airflow when the task runs)."""
    lines = [
        f"Write the changelog entry of version {settings.version} for {settings.audience}, in at most "
        f"{settings.max_words} words, with the sections {', '.join(settings.sections)}.",
        "",
        "The changes:",
        settings.changes,
    ]
    if instructions:
        lines += ["", instructions]
    return "\n".join(lines)


def changelog_task(spec: WorkflowSpec, task: TaskSpec, common: dict[str, Any]) -> BaseOperator:
    """The operator of a ``changelog`` task: an LLM call to the task's provider (or the router's choice)."""
    settings = plugin_settings(task)
    assert isinstance(settings, ChangelogSettings)
    prompt = changelog_prompt(settings, task.instructions)
    call = task.model_copy(update={"prompt": prompt, "instructions": None, "system": task.system or SYSTEM})
    return llm_task(spec, call, common)
