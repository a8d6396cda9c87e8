"""Validated spec → Airflow DAG: structure, mapping, conditions, params, docs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest

from supervisor_lib import build_dag, load_spec
from supervisor_lib.build.tasks import ITEM_PRELUDE, resolve_provider
from supervisor_lib.spec import TaskSpec, WorkflowSpec

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / "include" / "specs"
VALID = ROOT / "tests" / "fixtures" / "specs" / "valid"
INVALID = ROOT / "tests" / "fixtures" / "specs" / "invalid"


def _upstream(dag: object, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)  # type: ignore[attr-defined]


def test_nightly_health_structure() -> None:
    dag = build_dag(SPECS / "nightly_health.yaml")
    assert dag.dag_id == "nightly_health"
    assert set(dag.task_ids) == {
        "analyze",
        "audit",
        "fix",
        "review",
        "per_module_docs__items",
        "per_module_docs",
        "approve",
    }
    assert _upstream(dag, "fix") == {"analyze"}
    assert _upstream(dag, "review") == {"fix", "audit"}
    assert _upstream(dag, "approve") == {"review"}
    assert _upstream(dag, "per_module_docs__items") == {"analyze"}
    assert _upstream(dag, "per_module_docs") == {"per_module_docs__items"}
    assert str(dag.timezone) in ("Europe/Berlin", "Timezone('Europe/Berlin')")
    assert dag.start_date == pendulum.datetime(2026, 1, 1, tz="Europe/Berlin")  # midnight in the spec's zone
    assert "supervisor-spec" in dag.tags and "payments" in dag.tags
    assert dag.params["branch"] == "main"
    assert "Nightly health check" in dag.doc_md and load_spec(SPECS / "nightly_health.yaml").spec_hash in dag.doc_md
    fix = dag.get_task("fix")
    assert fix.retries == 2 and fix.owner == "platform-team"
    assert fix.when.startswith("{{ ti.xcom_pull(task_ids='analyze')")


def test_llm_tasks_become_provider_operators_and_foreach_maps() -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from supervisor_lib.operators.approval import SpecChoiceOperator
    from supervisor_lib.operators.llm import AnthropicOperator, OpenAIOperator

    dag = build_dag(SPECS / "release_notes.yaml")
    classify = dag.get_task("classify")
    assert isinstance(classify, AnthropicOperator)
    assert classify.call.output_schema["required"] == ["sections", "breaking"]
    assert classify.call.budget_usd == 0.25 and classify.call.max_tokens == 800 and classify.call.task_type == "llm"
    translations = dag.get_task("translations")
    assert isinstance(translations, MappedOperator) and translations.operator_class is OpenAIOperator
    assert translations.partial_kwargs["prompt"].startswith(ITEM_PRELUDE)
    assert translations.partial_kwargs["start_in_triggerer"] is False
    draft = dag.get_task("draft_section")
    assert isinstance(draft, MappedOperator) and _upstream(dag, "draft_section") == {"draft_section__items"}
    assert _upstream(dag, "draft_section__items") == {"classify"}
    publish = dag.get_task("publish")
    assert isinstance(publish, SpecChoiceOperator) and publish.options == ["Publish", "Hold"]
    assert publish.trigger_rule == "none_failed_min_one_success"


def test_provider_tasks_queue_in_their_providers_pool_mapped_or_not() -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    spec = WorkflowSpec(
        dag_id="pools",
        tasks=[
            {"id": "one", "type": "llm", "prompt": "p", "provider": "anthropic"},
            {"id": "many", "type": "llm", "prompt": "p {{ item }}", "provider": "openai", "foreach": ["x", "y"]},
            {"id": "mine", "type": "llm", "prompt": "p", "provider": "openai", "foreach": ["x"], "pool": "mine"},
        ],
    )
    dag = build_dag(spec)
    assert dag.get_task("one").pool == "anthropic"
    many = dag.get_task("many")  # the scheduler reads a mapped task's pool from its partial arguments
    assert isinstance(many, MappedOperator) and many.partial_kwargs["pool"] == "openai" and many.pool == "openai"
    assert dag.get_task("mine").pool == "mine"  # the spec's pool wins


def test_params_carry_json_schema() -> None:
    dag = build_dag(SPECS / "release_notes.yaml")
    version = dag.params.get_param("version")
    assert version.schema["pattern"] == "^[0-9]+\\.[0-9]+\\.[0-9]+$"
    assert dag.params["audience"] == "users"


def test_approval_default_options_use_airflows_approval_operator() -> None:
    from supervisor_lib.operators.approval import SpecApprovalOperator

    approve = build_dag(SPECS / "nightly_health.yaml").get_task("approve")
    assert isinstance(approve, SpecApprovalOperator) and approve.options == ["Approve", "Reject"]


def test_every_task_type_has_a_factory() -> None:
    from supervisor_lib.build.tasks import FACTORIES
    from supervisor_lib.spec import TaskType

    assert set(FACTORIES) == set(TaskType)


@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-5-mini", "openai"), ("o3", "openai"), ("claude-haiku-4-5", "anthropic"), (None, "anthropic")],
)
def test_auto_provider_follows_the_model(model: str | None, provider: str) -> None:
    task = TaskSpec(id="t", type="llm", prompt="p", provider="auto", model=model)
    assert resolve_provider(task) == provider


def test_python_authoring_builds_the_same_dag() -> None:
    from_yaml = build_dag(VALID / "minimal.yaml")
    spec = load_spec(VALID / "minimal.yaml")
    in_code = WorkflowSpec(**spec.model_dump(by_alias=True, exclude_none=True))
    from_code = build_dag(in_code)
    assert from_code.dag_id == from_yaml.dag_id
    assert sorted(from_code.task_ids) == sorted(from_yaml.task_ids)
    for task_id in from_yaml.task_ids:
        assert _upstream(from_code, task_id) == _upstream(from_yaml, task_id)


def test_every_example_and_valid_fixture_builds() -> None:
    for path in [*SPECS.glob("*.yaml"), *VALID.glob("*.y*ml")]:
        assert build_dag(path).tasks, path


def _bag(folder: Path) -> tuple[dict, dict]:
    probe = textwrap.dedent(f"""
        import json
        from airflow.dag_processing.dagbag import BundleDagBag
        bag = BundleDagBag(dag_folder={str(folder)!r}, bundle_path={str(folder)!r}, bundle_name="dags-folder")
        print(json.dumps({{"dags": sorted(bag.dags), "errors": {{str(k): v for k, v in bag.import_errors.items()}}}}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["dags"], data["errors"]


def test_bad_specs_show_as_import_errors_without_hiding_good_ones(tmp_path: Path) -> None:
    specs = tmp_path / "include" / "specs"
    specs.mkdir(parents=True)
    shutil.copy(VALID / "minimal.yaml", specs / "good.yaml")
    shutil.copy(INVALID / "unknown_provider.yaml", specs / "bad_provider.yaml")
    (specs / "broken.yaml").write_text("tasks:\n  - id: a\n    type: llm\n    prompt: [unclosed\n")
    dags = tmp_path / "dags"
    dags.mkdir()
    for name, call in (("specs.py", "load_dags"), ("spec_errors.py", "raise_spec_errors")):
        source = f'from supervisor_lib import {call}\n{call}(globals(), specs_dir="include/specs")\n'
        (dags / name).write_text('"""airflow dag loader"""\n' + source)
    names, errors = _bag(dags)
    assert names == ["good"]
    assert list(errors) == ["spec_errors.py"], "the loader file itself must stay free of import errors"
    message = errors["spec_errors.py"]
    assert "bad_provider.yaml:" in message and "unknown provider" in message
    assert "broken.yaml:5: invalid YAML" in message and "started at line 4" in message


def test_an_approval_asks_again_within_seconds_after_a_spurious_retry() -> None:
    # Airflow 3.3.2 may retry a task that just started waiting for input (supervisor_lib/compat.py, 8)
    dag = build_dag(SPECS / "release_notes.yaml")
    assert dag.get_task("publish").retry_delay.total_seconds() == 5
    assert dag.get_task("classify").retry_delay.total_seconds() == 300  # Airflow's default for everything else


def test_the_rest_request_refuses_a_number_that_is_not_finite() -> None:
    # JSON's NaN passes every JSON Schema check and Airflow's REST API takes it: the request task refuses it
    from supervisor_lib.build.rest_task import non_finite

    assert non_finite({"budget_usd": float("nan"), "repo": "x"}) == (
        "param budget_usd: nan is not a finite number; give a number within its documented range"
    )
    assert non_finite({"budget_usd": float("-inf")}) is not None
    assert non_finite({"budget_usd": 1.5, "max_tokens": 512, "approval": True}) is None
