"""Supervised coding tasks: context, isolated workspaces, safe edits, sandboxed validation, iterate until green,
review. The logic behind :mod:`supervisor_lib.operators.coding`, usable without Airflow.

::

    job = WriteJob("bug_fix", "Fix add()", Target("/path/to/repo"), Check("python -m pytest -q", 120))
    result = run_write_job(job, scope, coder, Roots.from_env(), log, reviewer=reviewer)
    result["status"]   # passed | failed | no_changes | rejected — see docs/coding.md for every field

``coder`` and the reviewer's model are :class:`Ask` callables: :class:`Chat` (:func:`model_chat` for one
provider's model; every call through the same executor as an llm task's: response cache, budgets, routing,
recording) in production, any function returning an :class:`Answer` in tests.

Modules: ``settings`` (roots), ``reports`` (report schemas), ``prompting`` (prompts from ``prompts/*.md``),
``chat`` (model calls), ``loop`` (iterate until green), ``review`` (the second model), ``artifacts``,
``jobs`` (shared naming), ``write_task`` and ``report_task`` (the two jobs), ``approval`` (the HITL body).
Nothing imported at DAG-parse time imports this package: the operators import it when they run.
"""

from __future__ import annotations

from supervisor_lib.coding.artifacts import ArtifactFolder
from supervisor_lib.coding.chat import Answer, Ask, Chat, model_chat
from supervisor_lib.coding.jobs import Target
from supervisor_lib.coding.loop import Check, EditLoop, LoopTask, SandboxLimits
from supervisor_lib.coding.report_task import ReportJob, run_report_job
from supervisor_lib.coding.reports import report_schema
from supervisor_lib.coding.review import Review, Reviewer
from supervisor_lib.coding.settings import Roots
from supervisor_lib.coding.write_task import WriteJob, run_write_job

__all__ = [
    "Answer",
    "ArtifactFolder",
    "Ask",
    "Chat",
    "Check",
    "EditLoop",
    "LoopTask",
    "ReportJob",
    "Review",
    "Reviewer",
    "Roots",
    "SandboxLimits",
    "Target",
    "WriteJob",
    "model_chat",
    "report_schema",
    "run_report_job",
    "run_write_job",
]
