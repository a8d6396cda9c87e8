"""Unknown and deprecated models are warnings, never errors."""

from __future__ import annotations

from pathlib import Path

from supervisor_lib.cli import main
from supervisor_lib.spec import TaskSpec, WorkflowSpec
from supervisor_lib.spec.model_check import model_warnings


def _spec(*models: str) -> WorkflowSpec:
    tasks = [TaskSpec(id=f"t{i}", type="llm", prompt="p", model=m) for i, m in enumerate(models)]
    return WorkflowSpec(dag_id="w", tasks=tasks)


def test_known_models_are_quiet() -> None:
    assert model_warnings(_spec("claude-sonnet-4-6", "gpt-5-mini")) == []


def test_unknown_and_deprecated_models_warn() -> None:
    found = model_warnings(_spec("claude-sonnet-4-6", "gpt-9-ultra", "gpt-3.5-turbo"))
    assert len(found) == 2
    assert found[0].startswith("w: [tasks[1].model] unknown model 'gpt-9-ultra'") and "budget_usd" in found[0]
    assert found[1] == "w: [tasks[2].model] model 'gpt-3.5-turbo' is deprecated; choose a current one"


def test_cli_prints_warnings_but_passes(tmp_path: Path, capsys: object) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text("tasks:\n  - {id: a, type: llm, prompt: hi, provider: openai, model: gpt-9-ultra}\n")
    assert main(["validate", str(spec)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "warning:" in out and "unknown model 'gpt-9-ultra'" in out and "OK: 1 spec(s)" in out
