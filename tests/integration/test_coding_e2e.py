"""Supervised coding end to end: one spec DAG under dag.test(), the real SDKs against the fake provider, real git
worktrees and real pytest in the sandbox.

Every case of the requirement is one task of the same DAG run (one dag.test() keeps the module fast): a fix on
the first try, a fix on the second try with the test output in the second prompt, a task that never passes, a
malformed edit, an edit that escapes the workspace, validation commands that try the network, fork without
bound and loop forever, a reviewer that requests changes, one report of each read-only type, and a pr_review
of an upstream task's patch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from supervisor_lib.coding.reports import report_schema
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.workspace import available_isolation, branch_name, run_git
from supervisor_lib.workspace.sandbox import _pids_cgroup_base
from tests.support.coding import (
    APPROVE,
    CHANGES,
    COMMENT_FIX,
    ESCAPING_EDIT,
    FIX_AFTER_WRONG,
    GOOD_FIX,
    MALFORMED_FIX,
    REPORTS,
    WRONG_FIX,
)
from tests.support.connections import use_fake_provider
from tests.support.dagtest import run_dag_file, task_states, xcom

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "calculator"
PYTEST = '{command: "python -m pytest -q", timeout: 60}'
#: the fork bomb is only safe where the sandbox can bound the process count
FORKS_BOUNDED = _pids_cgroup_base() is not None or os.geteuid() != 0

SPEC = """
dag_id: coding_e2e
schedule: null
tags: [test]
owner: tests
repo: {repo}
defaults: {{provider: anthropic, model: claude-haiku-4-5, retries: 0}}
tasks:
  - {{id: first_try, type: bug_fix, instructions: CASE-FIRST fix add., validate: {pytest}}}
  - {{id: second_try, type: bug_fix, instructions: CASE-SECOND fix add., validate: {pytest}}}
  - {{id: never_passes, type: bug_fix, instructions: CASE-NEVER fix add., validate: {pytest}, max_iterations: 2,
      keep_workspace: on_failure}}
  - {{id: malformed, type: bug_fix, instructions: CASE-MALFORMED fix add., validate: {pytest}}}
  - {{id: escape, type: bug_fix, instructions: CASE-ESCAPE fix add., validate: {pytest}}}
  - id: network
    type: bug_fix
    instructions: CASE-NET fix add.
    max_iterations: 1
    validate:
      command: "python -c \\"import socket; socket.create_connection(('127.0.0.1', {port}), 3); print('CONNECTED')\\""
      timeout: 30
  - {{id: forever, type: bug_fix, instructions: CASE-LOOP fix add., max_iterations: 1,
      validate: {{command: "python -c 'while True: pass'", timeout: 2}}}}
  {forkbomb}
  - {{id: reviewed, type: bug_fix, instructions: CASE-REVIEW fix add., validate: {pytest},
      reviewer: {{provider: openai, model: gpt-4.1-mini}}}}
  - {{id: routed, type: bug_fix, provider: auto, instructions: CASE-ROUTED fix add., validate: {pytest}}}
  - {{id: review_first, type: pr_review, depends_on: [first_try], instructions: Review the upstream fix.}}
  - {{id: review_patch, type: pr_review, patch_file: {patch}}}
  - {{id: summary, type: issue_summary, issue_file: ISSUE.md}}
  - {{id: analysis, type: code_analysis, instructions: Find bugs.}}
  - {{id: audit, type: security_audit}}
  - {{id: docs, type: documentation, instructions: Document the calculator.}}
"""
PATCH = "--- a/calculator/core.py\n+++ b/calculator/core.py\n@@ -6 +6 @@\n-    return a - b\n+    return a + b\n"
FORKBOMB = """- {id: forkbomb, type: bug_fix, instructions: CASE-FORK fix add., max_iterations: 1,
      validate: {command: "bomb() { bomb | bomb & }; bomb; sleep 30", timeout: 4}}"""


def _rules(server: FakeProviderServer) -> None:
    def after(case: str, marker: str) -> re.Pattern[str]:
        return re.compile(rf"(?s){case}.*{marker}")

    server.add_rules(
        [
            *(Rule(match=f"# Report: {kind}", json=report) for kind, report in REPORTS.items()),
            Rule(provider="openai", match="CASE-ROUTED", text=GOOD_FIX),
            Rule(provider="openai", match=after("CASE-REVIEW", "the sum, not the difference"), json=APPROVE),
            Rule(provider="openai", match="CASE-REVIEW", json=CHANGES),
            Rule(match=after("CASE-REVIEW", "the reviewer requested changes"), text=COMMENT_FIX),
            Rule(match=after("CASE-SECOND", "Iteration 1: the validation failed"), text=FIX_AFTER_WRONG),
            Rule(match=after("CASE-MALFORMED", "your edits were not applied"), text=GOOD_FIX),
            Rule(match=after("CASE-ESCAPE", "your edits were not applied"), text=GOOD_FIX),
            Rule(match="CASE-SECOND", text=WRONG_FIX),
            Rule(match="CASE-NEVER", text=WRONG_FIX),
            Rule(match="CASE-MALFORMED", text=MALFORMED_FIX),
            Rule(match="CASE-ESCAPE", text=ESCAPING_EDIT),
            *(Rule(match=case, text=GOOD_FIX) for case in ("CASE-FIRST", "CASE-REVIEW", "CASE-NET", "CASE-LOOP")),
            Rule(match="CASE-FORK", text=GOOD_FIX),
        ]
    )


@pytest.fixture(scope="module")
def outcome(
    airflow_db: object, dags_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Run the DAG once; every test reads its outcome."""
    tmp = tmp_path_factory.mktemp("coding_e2e")
    patch = tmp / "change.patch"
    patch.write_text(PATCH)
    monkeypatch = pytest.MonkeyPatch()
    with FakeProviderServer(strict=True) as server:
        use_fake_provider(monkeypatch, server)
        for name, folder in (("WORKSPACE_ROOT", "ws"), ("REPO_CACHE", "cache"), ("ARTIFACTS_ROOT", "artifacts")):
            monkeypatch.setenv(f"SUPERVISOR_{name}", str(tmp / folder))
        _rules(server)
        specs = tmp / "specs"
        specs.mkdir()
        (specs / "coding_e2e.yaml").write_text(
            SPEC.format(
                repo=REPO, pytest=PYTEST, port=server.port, patch=patch, forkbomb=FORKBOMB if FORKS_BOUNDED else ""
            )
        )
        try:
            run = run_dag_file(dags_folder, "coding_e2e_loader.py", _loader(specs), "coding_e2e")
            results = {task: xcom(run, task) for task in task_states(run)}
            yield {"run": run, "states": task_states(run), "results": results, "calls": server.calls, "tmp": tmp}
        finally:
            monkeypatch.undo()


def _loader(specs: Path) -> str:
    return f'"""airflow dag"""\nfrom supervisor_lib import load_dags\nload_dags(globals(), specs_dir={str(specs)!r})\n'


def _prompts(outcome: dict[str, Any], case: str) -> list[str]:
    """The last user message of every Anthropic request whose first message names ``case``, in order."""
    bodies = [call.body for call in outcome["calls"] if call.path == "/v1/messages"]
    return [body["messages"][-1]["content"] for body in bodies if case in body["messages"][0]["content"]]


def test_every_task_ends_as_expected(outcome: dict[str, Any]) -> None:
    expected = {
        "first_try": "success", "second_try": "success", "never_passes": "failed", "malformed": "success",
        "escape": "success", "network": "failed", "forever": "failed", "reviewed": "success",
        "routed": "success", "review_first": "success", "review_patch": "success", "summary": "success",
        "analysis": "success", "audit": "success", "docs": "success",
    }  # fmt: skip
    if FORKS_BOUNDED:
        expected["forkbomb"] = "failed"
    assert outcome["states"] == expected


def test_a_fix_that_passes_on_the_first_try(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["first_try"]
    assert result["status"] == "passed" and len(result["iterations"]) == 1
    assert result["validation"]["exit_code"] == 0 and "6 passed" in result["validation"]["output_tail"]
    patch = Path(result["patch"])
    assert patch.name == "patch.diff" and "+    return a + b" in patch.read_text()
    assert result["branch"] == branch_name("coding_e2e", outcome["run"].run_id, "first_try")
    cache = next(p for p in (outcome["tmp"] / "cache").iterdir() if p.is_dir())
    assert run_git(["rev-parse", result["branch"]], cache).strip() == result["commit"]
    shown = run_git(["show", f"{result['commit']}:calculator/core.py"], cache)
    assert "return a + b" in shown
    assert result["usage"]["calls"] == 1 and result["cost_usd"] > 0 and result["workspace"] is None
    assert result["sandbox"]["isolation"] == available_isolation()


def test_the_test_output_reaches_the_second_prompt(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["second_try"]
    assert [it["outcome"] for it in result["iterations"]] == ["validation_failed", "passed"]
    second = _prompts(outcome, "CASE-SECOND")[1]
    assert "FAILED tests/test_core.py::test_add - assert 6 == 5" in second and "+    return a * b" in second


def test_a_task_that_never_passes_fails_and_keeps_its_workspace(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["never_passes"]
    assert result["status"] == "failed" and len(result["iterations"]) == 2
    workspace = Path(result["workspace"])
    assert workspace.is_dir() and "return a * b" in (workspace / "calculator/core.py").read_text()
    assert result["branch"] is None and (Path(result["artifacts"]) / "iterations.json").is_file()


def test_a_malformed_edit_is_a_failed_iteration(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["malformed"]
    first = result["iterations"][0]
    assert result["status"] == "passed" and first["outcome"] == "edit_error" and first["error_kind"] == "parse"
    assert "missing '======='" in _prompts(outcome, "CASE-MALFORMED")[1]


def test_an_edit_outside_the_workspace_is_rejected(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["escape"]
    assert result["status"] == "passed" and result["iterations"][0]["error_kind"] == "unsafe_path"
    assert "contains '..'" in result["iterations"][0]["error"]
    assert (
        not list(outcome["tmp"].rglob("escaped-by-agent.txt")) and not (REPO.parent / "escaped-by-agent.txt").exists()
    )


@pytest.mark.security
def test_the_network_is_out_of_reach(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["network"]
    validation = result["validation"]
    assert result["status"] == "failed" and validation["exit_code"] not in (0, None)
    if validation["network_isolated"]:  # every backend cuts the network; each says so in its own words
        assert "CONNECTED" not in validation["output_tail"]
        refused = r"ConnectionRefusedError|OSError: \[Errno 101\] Network is unreachable"
        assert re.search(refused, validation["output_tail"])
    else:
        assert any("NO SANDBOX" in warning for warning in result["warnings"])


def test_an_endless_loop_is_stopped_at_the_timeout(outcome: dict[str, Any]) -> None:
    validation = outcome["results"]["forever"]["validation"]
    assert validation["killed_reason"] == "timeout" and validation["timed_out"] and validation["duration_s"] < 15


@pytest.mark.security
@pytest.mark.skipif(not FORKS_BOUNDED, reason="no pids cgroup and running as root: forks cannot be bounded here")
def test_a_fork_bomb_is_contained(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["forkbomb"]
    assert result["status"] == "failed" and result["validation"]["killed_reason"] == "timeout"
    assert result["validation"]["duration_s"] < 20
    leftover = subprocess.run(["pgrep", "-f", "bomb"], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in leftover if int(pid) != os.getpid()]


def test_a_reviewer_that_requests_changes(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["reviewed"]
    assert [it["outcome"] for it in result["iterations"]] == ["changes_requested", "passed"]
    assert result["review"]["decision"] == "approve" and result["review"]["reviewer"] == "openai gpt-4.1-mini"
    assert "ADD-A-COMMENT saying why" in _prompts(outcome, "CASE-REVIEW")[1]
    assert "# the sum, not the difference" in Path(result["patch"]).read_text()


def test_a_provider_auto_fix_is_routed(outcome: dict[str, Any]) -> None:
    result = outcome["results"]["routed"]
    assert result["status"] == "passed"
    routed = result["routed"]
    assert (routed["provider"], routed["model"]) == ("openai", "gpt-5-mini")  # the cheapest standard code editor
    assert routed["reasons"][0].startswith("chosen openai/gpt-5-mini: standard tier")
    assert any("[capabilities] lacks code_edit" in reason for reason in routed["reasons"])
    asked = {(c.provider, c.model) for c in outcome["calls"] if "CASE-ROUTED" in json.dumps(c.body)}
    assert asked == {("openai", "gpt-5-mini")}


@pytest.mark.parametrize(
    ("task", "kind"),
    [("review_patch", "pr_review"), ("summary", "issue_summary"), ("analysis", "code_analysis"),
     ("audit", "security_audit"), ("docs", "documentation"), ("review_first", "pr_review")],
)  # fmt: skip
def test_each_read_only_type_produces_a_schema_valid_report(outcome: dict[str, Any], task: str, kind: str) -> None:
    result = outcome["results"][task]
    assert result["status"] == "passed" and result["task_type"] == kind
    assert not list(Draft202012Validator(report_schema(kind)).iter_errors(result["report"]))
    assert json.loads((Path(result["artifacts"]) / "report.json").read_text()) == result["report"]


def test_a_pr_review_reviews_the_upstream_patch(outcome: dict[str, Any]) -> None:
    prompt = next(p for p in _prompts(outcome, "# Report: pr_review") if "Review the upstream fix." in p)
    assert "## Diff under review" in prompt and "+    return a + b" in prompt
    assert outcome["results"]["review_first"]["ref"] == outcome["results"]["first_try"]["commit"]


def test_the_demo_spec_fixes_the_payments_repo_with_the_demo_script(
    airflow_db: object, dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` does without API keys: include/specs/payments_bugfix.yaml against include/demo's script."""
    root = Path(__file__).resolve().parents[2]
    for name, folder in (("WORKSPACE_ROOT", "ws"), ("REPO_CACHE", "cache"), ("ARTIFACTS_ROOT", "artifacts")):
        monkeypatch.setenv(f"SUPERVISOR_{name}", str(tmp_path / folder))
    monkeypatch.delenv("SUPERVISOR_PROJECT_ROOT", raising=False)
    before = sorted(p.name for p in (root / "include/repos/payments").rglob("*"))
    with FakeProviderServer(strict=True) as server:
        server.load_script(root / "include/demo/fake_provider.yaml")
        use_fake_provider(monkeypatch, server)
        run = run_dag_file(dags_folder, "demo_specs_loader.py", _loader(root / "include/specs"), "payments_bugfix")

    assert task_states(run) == {"fix_fee": "success", "review_fix": "success"}
    fix, review = xcom(run, "fix_fee"), xcom(run, "review_fix")
    assert fix["status"] == "passed" and fix["validation"]["passed"] and "5 passed" in fix["validation"]["output_tail"]
    assert "+    percent_part = (amount_cents * FEE_BASIS_POINTS + 5_000) // 10_000" in Path(fix["patch"]).read_text()
    assert fix["review"]["decision"] == "approve" and fix["review"]["reviewer"] == "openai gpt-5-mini"
    assert review["report"]["verdict"] == "approve" and not review["warnings"]
    assert sorted(p.name for p in (root / "include/repos/payments").rglob("*")) == before, "the sample is untouched"
