"""The typed models: task types, defaults merging, the Python authoring path, the JSON Schema."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from supervisor_lib.spec import (
    READ_ONLY_TYPES,
    WRITE_TYPES,
    KeepWorkspace,
    Provider,
    SpecError,
    TaskDefaults,
    TaskSpec,
    TaskType,
    ValidateSpec,
    WorkflowSpec,
    json_schema,
    load_spec,
    when_truthy,
)
from tests.unit.spec.conftest import FIXTURES

NIGHTLY = FIXTURES / "valid" / "nightly_health.yaml"


def _nightly_in_python() -> WorkflowSpec:
    """The nightly example of the spec format, written in Python instead of YAML."""
    return WorkflowSpec(
        dag_id="nightly_health",
        description="Nightly health check of the payments service",
        schedule="0 2 * * *",
        timezone="Europe/Berlin",
        start_date=date(2026, 1, 1),
        catchup=False,
        tags=["payments", "nightly"],
        owner="platform-team",
        repo="include/repos/payments",
        defaults=TaskDefaults(provider="anthropic", model="claude-sonnet-4-6", retries=2, budget_usd=1.5),
        params={"branch": {"type": "string", "default": "main"}},
        tasks=[
            TaskSpec(
                id="analyze",
                type=TaskType.CODE_ANALYSIS,
                instructions="Find functions with cyclomatic complexity over 10.",
                paths=["src/**/*.py"],
            ),
            TaskSpec(id="audit", type="security_audit"),
            TaskSpec(
                id="fix",
                type="bug_fix",
                depends_on=["analyze"],
                when="{{ ti.xcom_pull(task_ids='analyze')['findings'] | length > 0 }}",
                instructions="Fix the problems analyze found.",
                validate=ValidateSpec(command="pytest -q", timeout=300),
                max_iterations=3,
            ),
            TaskSpec(
                id="review", type="pr_review", depends_on=["fix", "audit"], provider="openai", model="gpt-5.4-mini"
            ),
            TaskSpec(
                id="per_module_docs",
                type="documentation",
                depends_on=["analyze"],
                foreach="{{ ti.xcom_pull(task_ids='analyze')['modules'] }}",
                instructions="Document module {{ item }}.",
            ),
            TaskSpec(id="approve", type="human_approval", depends_on=["review"]),
        ],
    )


def test_python_authoring_gives_the_spec_loaded_from_yaml() -> None:
    built, loaded = _nightly_in_python(), load_spec(NIGHTLY)
    assert built == loaded
    assert built.model_dump() == loaded.model_dump()
    assert (built.source_path, built.spec_hash) == (None, None)


def test_model_dump_by_alias_round_trips() -> None:
    loaded = load_spec(NIGHTLY)
    data = loaded.model_dump(by_alias=True, exclude_defaults=True)
    assert data["tasks"][2]["validate"] == {"command": "pytest -q"}
    assert WorkflowSpec.model_validate(data) == loaded


def test_python_authoring_errors_are_spec_errors_with_paths() -> None:
    with pytest.raises(SpecError) as caught:
        WorkflowSpec(dag_id="x", tasks=[{"id": "a", "type": "bugfix"}, {"id": "b", "type": "llm"}])
    assert [(p.file, p.line, p.path) for p in caught.value.problems] == [
        (None, None, "tasks[0].type"),
        (None, None, "tasks[1].prompt"),
    ]
    assert str(caught.value).startswith("x: [tasks[0].type] unknown task type 'bugfix' (did you mean 'bug_fix'?)")
    with pytest.raises(SpecError, match=r"\[modle\] unknown key 'modle' \(did you mean 'model'\?\)"):
        TaskSpec(id="a", type="llm", prompt="hi", modle="x")


def test_model_validate_keeps_pydantic_errors_for_the_loader() -> None:
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"dag_id": "x", "tasks": [{"id": "a", "type": "nope"}]})


def test_models_are_frozen() -> None:
    spec = load_spec(NIGHTLY)
    with pytest.raises(ValidationError):
        spec.dag_id = "other"
    with pytest.raises(ValidationError):
        spec.tasks[0].provider = Provider.OPENAI


def test_task_type_classification() -> None:
    assert {str(t) for t in WRITE_TYPES} == {"bug_fix", "feature", "refactor", "testing"}
    assert TaskType.DOCUMENTATION in READ_ONLY_TYPES and TaskType.LLM in READ_ONLY_TYPES
    assert TaskType.HUMAN_APPROVAL not in READ_ONLY_TYPES | WRITE_TYPES
    assert TaskType.BUG_FIX.writes_code and not TaskType.CODE_ANALYSIS.writes_code
    assert not TaskType.HUMAN_APPROVAL.calls_model
    assert TaskSpec(id="d", type="documentation", write=True).writes
    assert not TaskSpec(id="d", type="documentation").writes


# --- effective(): defaults merged in --------------------------------------------------------------------------------


def test_effective_merges_task_then_defaults_then_builtins() -> None:
    spec = load_spec(NIGHTLY)
    analyze, review, fix = spec.effective("analyze"), spec.effective("review"), spec.effective("fix")
    assert (analyze.provider, analyze.model, analyze.retries, analyze.budget_usd) == (
        "anthropic",
        "claude-sonnet-4-6",
        2,
        1.5,
    )
    assert (review.provider, review.model) == ("openai", "gpt-5.4-mini")
    assert analyze.cache is True and analyze.deferrable is None and analyze.timeout_s is None
    assert (fix.max_iterations, fix.keep_workspace) == (3, KeepWorkspace.ON_FAILURE)
    assert spec.task("analyze").provider is None  # what the author wrote stays visible


def test_effective_builtins_without_defaults() -> None:
    spec = WorkflowSpec(dag_id="x", tasks=[TaskSpec(id="a", type="code_analysis")])
    task = spec.effective("a")
    assert (task.provider, task.model, task.retries, task.cache) == (Provider.AUTO, None, 2, True)


def test_a_task_choosing_another_provider_does_not_inherit_the_default_model() -> None:
    spec = WorkflowSpec(
        dag_id="x",
        defaults=TaskDefaults(provider="anthropic", model="claude-sonnet-4-6"),
        tasks=[
            TaskSpec(id="a", type="code_analysis", provider="openai"),
            TaskSpec(id="b", type="code_analysis", provider="anthropic"),
        ],
    )
    assert (spec.effective("a").provider, spec.effective("a").model) == ("openai", None)
    assert spec.effective("b").model == "claude-sonnet-4-6"


def test_effective_per_type_defaults() -> None:
    spec = WorkflowSpec(
        dag_id="x",
        defaults=TaskDefaults(provider="openai", budget_usd=1.0),
        tasks=[
            TaskSpec(id="ask", type="llm", instructions="Say hi."),
            TaskSpec(id="ok", type="human_approval", depends_on="ask"),
            TaskSpec(id="doc", type="documentation", write=True, keep_workspace="always"),
        ],
    )
    ask, ok, doc = spec.effective_tasks
    assert (ask.prompt, ask.instructions) == ("Say hi.", None)
    assert (ok.options, ok.provider, ok.budget_usd, ok.retries) == (("Approve", "Reject"), None, None, 2)
    assert (doc.max_iterations, doc.keep_workspace) == (3, KeepWorkspace.ALWAYS)
    assert ok.depends_on == ("ask",)


def test_effective_follows_a_model_copy_with_new_defaults() -> None:
    spec = load_spec(NIGHTLY)
    assert spec.effective("analyze").retries == 2
    copy = spec.model_copy(update={"defaults": TaskDefaults(retries=5)})
    assert copy.effective("analyze").retries == 5
    assert spec.effective("analyze").retries == 2


def test_effective_of_an_unknown_task_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        load_spec(NIGHTLY).effective("nope")


# --- graph and times ------------------------------------------------------------------------------------------------


def test_edges_and_topological_order() -> None:
    spec = load_spec(NIGHTLY)
    assert spec.edges() == [
        ("analyze", "fix"), ("fix", "review"), ("audit", "review"), ("analyze", "per_module_docs"),
        ("review", "approve"),
    ]  # fmt: skip
    assert spec.topological_order() == ["analyze", "audit", "fix", "review", "per_module_docs", "approve"]


def test_start_datetime_is_aware_in_the_spec_timezone() -> None:
    spec = load_spec(NIGHTLY)
    assert spec.start_datetime().isoformat() == "2026-01-01T00:00:00+01:00"
    other = load_spec(FIXTURES / "valid" / "all_fields.yaml")
    assert other.start_date == datetime(2026, 3, 1, 6, 30)
    assert other.start_datetime().isoformat() == "2026-03-01T06:30:00-05:00"
    assert load_spec(FIXTURES / "valid" / "minimal.yaml").start_date == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("rendered", "truthy"),
    [
        ("True", True),
        ("1", True),
        ("yes", True),
        ("[1]", True),
        ("False", False),
        (" false ", False),
        ("", False),
        ("0", False),
        ("None", False),
        ("[]", False),
    ],
)
def test_when_truthy(rendered: str, truthy: bool) -> None:
    assert when_truthy(rendered) is truthy


# --- JSON Schema ----------------------------------------------------------------------------------------------------


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "dag_id" not in schema["required"] and "tasks" in schema["required"]
    task = schema["$defs"]["TaskSpec"]["properties"]
    assert "validate" in task and "validation" not in task
    assert task["provider"]["description"]
    assert "source_path" not in schema["properties"] and "spec_hash" not in schema["properties"]


@pytest.mark.parametrize("name", ["nightly_health.yaml", "all_fields.yaml", "per_service_audit.yml"])
def test_valid_fixtures_conform_to_the_json_schema(name: str) -> None:
    raw = yaml.safe_load((FIXTURES / "valid" / name).read_text())
    data = json.loads(json.dumps(raw, default=str))  # YAML dates become strings, as in an editor
    errors = list(Draft202012Validator(json_schema()).iter_errors(data))
    assert not errors, [e.message for e in errors]


def test_json_schema_rejects_unknown_keys() -> None:
    data = {"tasks": [{"id": "a", "type": "code_analysis", "modle": "x"}]}
    assert list(Draft202012Validator(json_schema()).iter_errors(data))
