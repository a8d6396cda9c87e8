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


def test_experiment_report_prints_the_arms_table_and_the_verdict(tmp_path: Path) -> None:
    from supervisor_lib.store import Store
    from tests.unit.analytics.test_experiments import _seed

    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    store = Store.from_url(url)
    _seed(store, runs=6, base_passes=5, other_passes=4)
    store.close()

    done = _run("experiment", "report", "--store", url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("experiment sonnet-vs-haiku: 2 arms, 12 runs")
    assert [line.split()[0] for line in lines[3:5]] == ["sonnet", "haiku"]
    assert "83% [44%, 97%]" in lines[3] and "67% [30%, 90%]" in lines[4]  # Wilson 5/6 and 4/6
    assert lines[-1].startswith("verdict: arm haiku is cheaper") and "122 more runs per arm needed" in lines[-1]

    as_json = json.loads(_run("experiment", "report", "--store", url, "--json").stdout)
    assert [arm["runs"] for arm in as_json["arms"]] == [6, 6]
    assert as_json["comparisons"][0]["more_runs_needed"] == 122
    missing = _run("experiment", "report", "--store", url, "--experiment", "nope")
    assert missing.returncode == 1 and "known: sonnet-vs-haiku" in missing.stderr
    assert _run("experiment", "report", "--store", f"sqlite:///{tmp_path / 'typo.db'}").returncode == 1
    assert not (tmp_path / "typo.db").exists()
