"""The coding benchmark runs offline (scripted fake provider, real git and pytest) and reports honest numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.coding.__main__ import main
from benchmarks.coding.harness import Settings, as_json, report, run_all
from benchmarks.coding.instances import Instance, load_instances

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parents[2] / "benchmarks" / "coding"


def test_the_task_file_follows_swe_benchs_schema() -> None:
    rows = [json.loads(line) for line in (HERE / "tasks.jsonl").read_text().splitlines()]
    assert len(rows) >= 5
    for row in rows:
        assert {"instance_id", "repo", "base_commit", "problem_statement", "FAIL_TO_PASS", "PASS_TO_PASS"} <= set(row)
    legacy = Instance.from_dict({**rows[0], "FAIL_TO_PASS": json.dumps(rows[0]["FAIL_TO_PASS"])})
    assert legacy.fail_to_pass == tuple(rows[0]["FAIL_TO_PASS"]), "SWE-bench's JSON-string lists are read too"


def test_offline_run_reports_pass_rates_tokens_cost_and_time(tmp_path: Path) -> None:
    instances = load_instances(HERE / "tasks.jsonl")
    outcomes = run_all(instances, Settings(), tmp_path, live=False, script=HERE / "scripted.yaml")

    by_id = {o.instance_id: o for o in outcomes}
    assert all(o.status == "passed" and o.error is None for o in outcomes)
    assert {i for i, o in by_id.items() if o.pass_at_1} == {
        "calculator__add-1", "inventory__refactor-1", "inventory__count-1", "payments__fee-1",
    }  # fmt: skip
    truncate, greet = by_id["strings__truncate-1"], by_id["clean__greet_title-1"]
    assert truncate.resolved and truncate.iterations == 2 and not truncate.pass_at_1
    assert not greet.resolved and greet.tests_passed == 2 and greet.tests_total == 3, "the hidden test caught it"
    assert all(o.tokens > 0 and o.cost_usd > 0 and o.wall_s > 0 for o in outcomes)
    text = report(outcomes)
    assert "pass@1: 4/6 (67%)   pass after iterations: 5/6 (83%)" in text
    assert as_json(outcomes, Settings(), live=False)["totals"]["pass_after_iterations"] == pytest.approx(5 / 6)


def test_the_command_line_runs_one_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert main(["--only", "payments__fee-1", "--work-dir", str(tmp_path / "work"), "--json", str(out)]) == 0
    assert "pass@1: 1/1 (100%)" in capsys.readouterr().out
    assert json.loads(out.read_text())["instances"][0]["resolved"] is True


def test_an_experiment_over_the_benchmark_prints_a_per_arm_table_with_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "experiment.json"
    only = ["--only", "calculator__add-1", "--only", "strings__truncate-1", "--only", "inventory__refactor-1"]
    arms = ["--arms", "sonnet=anthropic:claude-sonnet-4-6", "haiku=anthropic:claude-haiku-4-5"]
    work = ["--work-dir", str(tmp_path / "work"), "--experiment", "bench-test", "--json", str(out)]
    assert main([*only, *arms, *work]) == 0

    text = capsys.readouterr().out
    table = text[text.index("experiment bench-test: 2 arms, 6 runs in benchmark_coding") :].splitlines()
    assert table[3].split()[:5] == ["sonnet", "anthropic:claude-sonnet-4-6", "3", "100%", "[44%,"]  # Wilson 3/3
    assert table[4].split()[:5] == ["haiku", "anthropic:claude-haiku-4-5", "3", "67%", "[21%,"]  # Wilson 2/3
    assert table[-1].startswith("verdict: ") and "more runs per arm needed" in table[-1]
    report = json.loads(out.read_text())
    sonnet, haiku = report["experiment"]["arms"]
    assert haiku["iterations"]["estimate"] == pytest.approx((1 + 3 + 3) / 3)  # truncate: 3, the refactor: 3, failed
    assert haiku["statuses"] == {"failed": 1, "passed": 2} and sonnet["statuses"] == {"passed": 3}
    assert haiku["cost_usd"]["estimate"] < sonnet["cost_usd"]["estimate"]
    assert [o["resolved"] for o in report["arms"]["haiku"]["instances"]] == [True, True, False]
