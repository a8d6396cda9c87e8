"""A package outside supervisor_lib adds a provider and a task type that a spec uses end to end: the example plugin
(examples/supervisor-openai-compatible, installed as a real distribution) runs the spec's ``changelog`` task on its
``openai_compatible`` provider, through the real OpenAI SDK against the fake provider server's OpenAI API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.dagtest import run_dag_file, task_states, xcom
from tests.support.stack import provider_stack

pytestmark = pytest.mark.usefixtures("example_plugin")

SPEC = (ROOT / "examples" / "supervisor-openai-compatible" / "specs" / "release_notes.yaml").read_text()
CHANGES = "fix: retries honour retry-after\nfeat: budgets per team"
ENTRY = "## Added\n- Budgets per team.\n## Fixed\n- Retries honour retry-after."


def _spec(dag_id: str, *, deferrable: bool) -> str:
    own = SPEC.replace("dag_id: release_notes", f"dag_id: {dag_id}")
    return own.replace("tasks:\n", f"defaults: {{retries: 0, deferrable: {str(deferrable).lower()}}}\ntasks:\n", 1)


def _connection(server: FakeProviderServer) -> str:
    """The plugin's own connection type; no API key (a local server needs none)."""
    return json.dumps({"conn_type": "openai_compatible", "host": server.openai_base_url, "extra": {"timeout": 5}})


def _script(server: FakeProviderServer) -> None:
    server.strict = True
    server.add_rules([Rule(provider="openai", match="changelog entry of version 1.4.0", text=ENTRY),
                      Rule(provider="openai", match="Check this changelog entry", text="supported")])  # fmt: skip


def _loader(specs: Path) -> str:
    return f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), specs_dir={str(specs)!r})\n'


def test_a_plugin_task_type_on_a_plugin_provider_under_dag_test(
    airflow_db: object, fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, dags_folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_COMPATIBLE_DEFAULT", _connection(fake_provider))
    _script(fake_provider)
    (tmp_path / "release_notes_dagtest.yaml").write_text(_spec("release_notes_dagtest", deferrable=False))
    run = run_dag_file(dags_folder, "plugin_loader.py", _loader(tmp_path), "release_notes_dagtest")

    assert task_states(run) == {"changelog": "success", "review": "success"}
    changelog, review = xcom(run, "changelog"), xcom(run, "review")
    assert (changelog["text"], changelog["provider"], changelog["model"]) == (
        ENTRY, "openai_compatible", "llama-3.1-8b-instruct"
    )  # fmt: skip
    usage = changelog["usage"]
    expected = (usage["input_tokens"] * 0.02 + usage["output_tokens"] * 0.05) / 1_000_000  # the plugin's prices
    assert changelog["cost_usd"] == pytest.approx(expected) and changelog["cost_usd"] > 0
    assert review["text"] == "supported" and review["model"] == "qwen2.5-coder-32b-instruct"

    first = fake_provider.calls[0]
    assert first.provider == "openai" and first.body["model"] == "llama-3.1-8b-instruct"
    system, user = first.body["messages"]
    assert system["role"] == "system" and "Keep a Changelog" in system["content"]
    assert "for operators" in user["content"] and "sections Added, Fixed" in user["content"]
    assert CHANGES in user["content"], "the with: settings' templates were rendered"
    assert first.body["max_completion_tokens"] == 600

    from supervisor_lib.store.ledger import ledger_for

    rows = ledger_for().store.attempts(dag_id="release_notes_dagtest", run_id=run.run_id)
    assert sorted((r["task_id"], r["provider"], r["task_type"], r["status"]) for r in rows) == [
        ("changelog", "openai_compatible", "changelog", "success"),
        ("review", "openai_compatible", "llm", "success"),
    ]


@pytest.fixture(scope="module")
def stack(
    fake: FakeProviderServer, analytics_url: str, tmp_path_factory: pytest.TempPathFactory, example_plugin: Path
) -> Iterator[AirflowStack]:
    base = tmp_path_factory.mktemp("plugin_stack")
    specs = base / "specs"
    specs.mkdir()
    (specs / "release_notes_stack.yaml").write_text(_spec("release_notes_stack", deferrable=True))
    with provider_stack(
        "plugin_stack", base, {"plugin_loader.py": _loader(specs)}, databases=DATABASES, fake=fake,
        analytics_url=analytics_url, dag_ids=("release_notes_stack",), project_dir=ROOT,
        env={"AIRFLOW_CONN_OPENAI_COMPATIBLE_DEFAULT": _connection(fake)},
    ) as running:  # fmt: skip
        yield running


@pytest.mark.slow
def test_a_plugin_task_type_on_a_plugin_provider_on_a_real_airflow(
    stack: AirflowStack, fake: FakeProviderServer
) -> None:
    """Deferred: the triggerer imports the plugin's hook too (the plugin folder is on every process's PYTHONPATH)."""
    fake.reset()
    _script(fake)
    run_id = stack.trigger("release_notes_stack")
    assert stack.wait("release_notes_stack", run_id, timeout_s=180) == "success"
    changelog = stack.xcom("release_notes_stack", run_id, "changelog")
    assert (changelog["text"], changelog["provider"], changelog["cost_usd"] > 0) == (ENTRY, "openai_compatible", True)
    assert [call.body["model"] for call in fake.calls] == ["llama-3.1-8b-instruct", "qwen2.5-coder-32b-instruct"]
