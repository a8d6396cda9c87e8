"""The coding task types build into the coding operators, with the spec's settings and sensible defaults."""

from __future__ import annotations

from pathlib import Path

from supervisor_lib import build_dag
from supervisor_lib.build.tasks import FACTORIES
from supervisor_lib.operators.approval import SpecApprovalOperator
from supervisor_lib.operators.coding import CodingTaskOperator, ReportOperator
from supervisor_lib.spec import TaskType, WorkflowSpec

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / "include" / "specs"


def test_every_spec_type_has_a_factory() -> None:
    assert set(FACTORIES) == set(TaskType)


def test_the_demo_spec_builds_a_reviewed_bug_fix_and_a_pr_review_of_its_patch() -> None:
    dag = build_dag(SPECS / "payments_bugfix.yaml")
    fix, review = dag.get_task("fix_fee"), dag.get_task("review_fix")

    assert isinstance(fix, CodingTaskOperator) and isinstance(review, ReportOperator)
    assert (
        fix.task_kind == "bug_fix"
        and fix.repo == "include/repos/payments"
        and fix.paths == ["src/**/*.py", "tests/**/*.py"]
    )
    assert fix.validate_command == "python -m pytest -q" and fix.validate_timeout == 120 and fix.max_iterations == 3
    assert (fix.provider, fix.model, fix.reviewer_provider, fix.reviewer_model) == (
        "anthropic", "claude-sonnet-4-6", "openai", "gpt-5-mini",
    )  # fmt: skip
    assert fix.keep_workspace == "on_failure" and fix.budget_usd == 1.0 and fix.retries == 1
    assert fix.spec_file == str(SPECS / "payments_bugfix.yaml")
    assert review.review_upstreams == ["fix_fee"] and review.task_kind == "pr_review"
    assert "instructions" in CodingTaskOperator.template_fields and "issue" in ReportOperator.template_fields


def test_nightly_health_types_map_to_operators_and_the_approval_shows_coding_results() -> None:
    dag = build_dag(SPECS / "nightly_health.yaml")
    kinds = {task.task_id: type(task).__name__ for task in dag.tasks}
    assert kinds["analyze"] == kinds["audit"] == kinds["review"] == "ReportOperator"
    assert kinds["fix"] == "CodingTaskOperator"
    docs = dag.get_task("per_module_docs")
    assert docs.operator_class is ReportOperator  # type: ignore[attr-defined]
    assert "{% set item = task.item %}" in docs.partial_kwargs["instructions"]  # type: ignore[attr-defined]
    approve = dag.get_task("approve")
    assert isinstance(approve, SpecApprovalOperator) and approve.results_from == ["review"] and approve.body is None
    assert dag.get_task("review").review_upstreams == ["fix"]  # type: ignore[attr-defined]


def test_reviewer_provider_defaults_to_the_other_provider_and_documentation_can_write() -> None:
    spec = WorkflowSpec(
        dag_id="coding_defaults",
        repo="https://example.com/org/repo.git",
        defaults={"provider": "openai", "model": "gpt-5-mini"},
        tasks=[
            {"id": "fix", "type": "bug_fix", "instructions": "Fix it.", "reviewer": {}},
            {"id": "feat", "type": "feature", "instructions": "Add it.", "reviewer": {"model": "gpt-5"}},
            {"id": "docs", "type": "documentation", "write": True, "instructions": "Document it."},
            {"id": "notes", "type": "documentation", "instructions": "Describe it."},
            {"id": "ok", "type": "human_approval", "depends_on": ["fix", "docs"], "body": "Custom"},
            {"id": "ok2", "type": "human_approval", "depends_on": ["fix"]},
        ],
    )
    dag = build_dag(spec)
    fix, feat, docs = dag.get_task("fix"), dag.get_task("feat"), dag.get_task("docs")
    assert (fix.provider, fix.reviewer_provider, fix.reviewer_model) == ("openai", "anthropic", None)  # type: ignore[attr-defined]
    assert feat.reviewer_provider == "openai"  # type: ignore[attr-defined]
    assert isinstance(docs, CodingTaskOperator) and docs.validate_command is None
    assert isinstance(dag.get_task("notes"), ReportOperator)
    assert dag.get_task("ok").results_from == []  # type: ignore[attr-defined]
    assert dag.get_task("ok2").results_from == ["fix"]  # type: ignore[attr-defined]


def test_auto_coding_tasks_are_routed_at_run_time() -> None:
    spec = WorkflowSpec(
        dag_id="coding_routed",
        repo="https://example.com/org/repo.git",
        budget={"per_run_usd": 5.0, "team": "core"},
        tasks=[
            {"id": "fix", "type": "bug_fix", "instructions": "Fix it.", "tier": "premium", "reviewer": {}},
            {"id": "audit", "type": "security_audit", "capabilities": ["long_context"]},
            {"id": "pinned", "type": "bug_fix", "instructions": "Fix it.", "provider": "openai", "reviewer": {}},
            {"id": "custom", "type": "code_analysis", "model": "my-own-model"},
        ],
    )
    dag = build_dag(spec)
    fix, audit, pinned, custom = (dag.get_task(t) for t in ("fix", "audit", "pinned", "custom"))
    assert (fix.provider, fix.reviewer_provider) == ("auto", "auto")  # type: ignore[attr-defined]
    assert fix.route == {  # type: ignore[attr-defined]
        "capabilities": (), "tier": "premium", "budget": spec.budget.declaration(), "team": "core",  # type: ignore[union-attr]
    }  # fmt: skip
    assert audit.provider == "auto" and audit.route["capabilities"] == ("long_context",)  # type: ignore[attr-defined]
    assert (pinned.provider, pinned.route, pinned.reviewer_provider) == ("openai", None, "anthropic")  # type: ignore[attr-defined]
    assert (custom.provider, custom.route) == ("anthropic", None)  # type: ignore[attr-defined]


def test_coding_tasks_queue_in_their_providers_pool() -> None:
    spec = WorkflowSpec(
        dag_id="coding_pools",
        repo="https://example.com/org/repo.git",
        tasks=[
            {"id": "pinned", "type": "bug_fix", "instructions": "Fix it.", "provider": "anthropic"},
            {"id": "routed", "type": "bug_fix", "instructions": "Fix it."},  # standard code editor: gpt-5-mini
            {"id": "premium", "type": "code_analysis", "tier": "premium"},  # premium long_context: gpt-5
            {"id": "own", "type": "bug_fix", "instructions": "Fix it.", "provider": "openai", "pool": "mine"},
            {"id": "each", "type": "code_analysis", "provider": "anthropic", "foreach": ["a", "b"]},
        ],
    )
    dag = build_dag(spec)
    pools = {task: dag.get_task(task).pool for task in ("pinned", "routed", "premium", "own")}
    assert pools == {"pinned": "anthropic", "routed": "openai", "premium": "openai", "own": "mine"}
    # a mapped task's pool is read from its partial arguments by the scheduler
    assert dag.get_task("each").partial_kwargs["pool"] == "anthropic"  # type: ignore[attr-defined]
    # a DAG-file author gets the same default, and an explicit pool wins
    assert CodingTaskOperator(task_id="c", task_kind="bug_fix", repo="r", provider="openai").pool == "openai"
    assert ReportOperator(task_id="r", task_kind="code_analysis", repo="r", pool="slow").pool == "slow"
