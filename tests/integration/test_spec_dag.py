"""A spec DAG runs under dag.test(): dependency order, a `when` skip and `foreach` mapping really happen."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

pytestmark = pytest.mark.slow

SPEC = """
dag_id: spec_flow
schedule: null
tags: [test]
owner: tests
defaults: {provider: anthropic, model: claude-haiku-4-5, retries: 0, deferrable: false}
params:
  area: {type: string, default: billing}
tasks:
  - id: plan
    type: llm
    prompt: PLAN the {{ params.area }} work
    output_schema:
      type: object
      properties: {modules: {type: array, items: {type: string}}, risky: {type: boolean}}
      required: [modules, risky]
  - id: risky_fix
    type: llm
    depends_on: [plan]
    when: "{{ ti.xcom_pull(task_ids='plan')['output']['risky'] }}"
    prompt: FIX risky things
  - id: per_module
    type: llm
    depends_on: [plan]
    foreach: "{{ ti.xcom_pull(task_ids='plan')['output']['modules'] }}"
    prompt: DOC module {{ item }}
  - id: langs
    type: llm
    depends_on: [per_module]
    foreach: [de, fr]
    provider: openai
    model: gpt-4.1-mini
    prompt: TRANSLATE into {{ item }}
  - id: summary
    type: llm
    depends_on: [langs, risky_fix]
    trigger_rule: none_failed
    prompt: SUMMARY of {{ ti.xcom_pull(task_ids='per_module') | length }} modules
"""


def test_spec_dag_runs_in_order_with_skip_and_mapping(
    airflow_db: object,
    fake_provider: FakeProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.strict = True
    fake_provider.add_rules(
        [
            Rule(match="PLAN the billing work", json={"modules": ["invoices", "refunds", "tax"], "risky": False}),
            Rule(match="DOC module", text="documented"),
            Rule(match="TRANSLATE into", text="translated"),
            Rule(match="SUMMARY of 3 modules", text="all done"),
        ]
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "spec_flow.yaml").write_text(SPEC)
    loader = (
        f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), specs_dir={str(specs)!r})\n'
    )
    run = run_dag_file(dags_folder, "spec_flow_loader.py", loader, "spec_flow")

    states = task_states(run)
    assert states == {
        "plan": "success",
        "risky_fix": "skipped",
        "per_module__items": "success",
        "per_module[0]": "success",
        "per_module[1]": "success",
        "per_module[2]": "success",
        "langs[0]": "success",
        "langs[1]": "success",
        "summary": "success",
    }
    assert xcom(run, "summary")["text"] == "all done"
    prompts = [c.body["messages"][0]["content"] for c in fake_provider.calls if c.provider == "anthropic"]
    assert sorted(p for p in prompts if p.startswith("DOC")) == [
        "DOC module invoices",
        "DOC module refunds",
        "DOC module tax",
    ]
    assert not any(p.startswith("FIX") for p in prompts), "the skipped task must not call the model"
    order = [c.body["messages"][0]["content"].split()[0] for c in fake_provider.calls]
    assert order[0] == "PLAN" and order[-1] == "SUMMARY"
    assert order.index("TRANSLATE") > max(i for i, word in enumerate(order) if word == "DOC")
