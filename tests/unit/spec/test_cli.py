"""The ``supervisor`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor_lib.cli import main
from tests.unit.spec.conftest import FIXTURES

ROOT = FIXTURES.parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor_lib.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_validate_valid_specs_exits_0_with_a_one_line_summary() -> None:
    result = _run("validate", "tests/fixtures/specs/valid")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "OK: 7 spec(s), 44 task(s) valid in tests/fixtures/specs/valid"
    # all_fields.yaml names models the price table does not know: warnings, not errors
    assert lines[:-1] and all(line.startswith("warning: ") and "unknown model" in line for line in lines[:-1])


def test_validate_invalid_specs_exits_1_with_one_line_per_problem() -> None:
    result = _run(
        "validate", "tests/fixtures/specs/invalid/cycle.yaml", "tests/fixtures/specs/invalid/unknown_provider.yaml"
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "tests/fixtures/specs/invalid/cycle.yaml:5: [tasks[0].depends_on] dependency cycle: a -> b -> c -> a",
        "tests/fixtures/specs/invalid/unknown_provider.yaml:9: [tasks[2].provider] unknown provider 'antropic' "
        "(did you mean 'anthropic'?)",
    ]


def test_validate_defaults_to_include_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "include" / "specs").mkdir(parents=True)
    (tmp_path / "include" / "specs" / "one.yaml").write_text("tasks: [{id: a, type: code_analysis}]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "OK: 1 spec(s), 1 task(s) valid in include/specs\n"


def test_validate_reports_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "no such file or directory" in capsys.readouterr().out


def test_validate_reports_dag_id_clashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "clash")]) == 1
    assert "dag_id 'payments_nightly' is already used by" in capsys.readouterr().out


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Supervisor workflow spec"
    assert "TaskSpec" in schema["$defs"]


def test_graph_prints_nodes_edges_and_order() -> None:
    result = _run("graph", "tests/fixtures/specs/valid/nightly_health.yaml")
    assert result.returncode == 0, result.stderr
    graph = json.loads(result.stdout)
    assert graph["dag_id"] == "nightly_health"
    assert graph["nodes"][0] == {
        "id": "analyze",
        "type": "code_analysis",
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "writes": False,
        "mapped": False,
        "conditional": False,
    }
    assert {"from": "fix", "to": "review"} in graph["edges"]
    assert graph["order"] == ["analyze", "audit", "fix", "review", "per_module_docs", "approve"]


def test_graph_of_an_invalid_spec_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(FIXTURES / "invalid" / "cycle.yaml")]) == 1
    assert "dependency cycle" in capsys.readouterr().out


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
