"""model_chat and run_write_job through the real SDKs against the fake provider: cache, steps, budget, durability."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.coding.chat import Tally, model_chat
from supervisor_lib.coding.jobs import Target
from supervisor_lib.coding.loop import Check
from supervisor_lib.coding.review import Reviewer
from supervisor_lib.coding.settings import Roots
from supervisor_lib.coding.write_task import WriteJob, run_write_job
from supervisor_lib.exceptions import BudgetExceededError
from supervisor_lib.execution.runner import CallScope
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.workspace import run_git
from tests.support.coding import APPROVE, FIX_AFTER_WRONG, WRONG_FIX
from tests.support.connections import use_fake_provider
from tests.unit.coding.conftest import LOG, REPOS, MemoryStore

MESSAGES = [{"role": "user", "content": "PING please"}]
JOB = WriteJob(
    "bug_fix", "Fix add() in the calculator.", Target(str(REPOS / "calculator")), Check("python -m pytest -q", 60)
)


@pytest.fixture
def server(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    fake_provider.strict = True
    return fake_provider


def test_a_chat_call_goes_through_the_call_runner_and_its_cache(server: FakeProviderServer, scope: CallScope) -> None:
    server.add_rule(Rule(match="PING", text="PONG"))
    store = MemoryStore()
    chat = model_chat("anthropic", scope, store, model="claude-haiku-4-5")

    first = chat("iteration-1", MESSAGES, system="be brief")
    again = chat("iteration-1", MESSAGES, system="be brief")

    assert first.text == "PONG" and not first.cached and first.cost_usd and first.usage["input_tokens"] > 0
    assert again.text == "PONG" and again.cached and again.cost_usd == 0.0
    assert server.count(path="/v1/messages") == 1
    steps = [(row["step"], row["status"]) for row in store.rows]
    assert steps == [("iteration-1", "success"), ("iteration-1", "cached")]
    assert chat.label == "anthropic claude-haiku-4-5"


def test_structured_output_and_tally(server: FakeProviderServer, scope: CallScope) -> None:
    server.add_rule(Rule(provider="openai", json={"decision": "approve", "summary": "ok", "comments": []}))
    chat = model_chat("openai", scope, None, model="gpt-4.1-mini")
    schema = {"type": "object", "properties": {"decision": {"type": "string"}}, "required": ["decision"]}

    answer = chat("review-1", MESSAGES, system="review", output_schema=schema)

    assert answer.output["decision"] == "approve" and answer.provider == "openai"
    tally = Tally()
    tally.add(answer)
    tally.add(dataclasses.replace(answer, cost_usd=None))
    assert tally.calls == 2 and tally.unpriced_calls == 1 and tally.cost_usd == answer.cost_usd


def _scripted_fix(server: FakeProviderServer) -> None:
    # The second turn carries the first turn's failures: its rule must be checked first.
    second_turn = re.compile("Iteration 1: the validation failed")
    server.add_rule(Rule(provider="anthropic", match=second_turn, text=FIX_AFTER_WRONG))
    server.add_rule(Rule(provider="anthropic", match="Fix add() in the calculator.", text=WRONG_FIX))


def test_a_retry_reuses_the_paid_answers_and_reaches_the_same_state(
    server: FakeProviderServer, scope: CallScope, roots: Roots
) -> None:
    _scripted_fix(server)
    server.add_rule(Rule(provider="openai", json=APPROVE))
    store = MemoryStore()

    def run(try_scope: CallScope) -> dict[str, Any]:
        review_chat = model_chat("openai", try_scope, store, model="gpt-4.1-mini")
        reviewer = Reviewer(review_chat, review_chat.label, "bug_fix", JOB.instructions)
        coder = model_chat("anthropic", try_scope, store, model="claude-haiku-4-5")
        return run_write_job(JOB, try_scope, coder, roots, LOG, reviewer=reviewer)

    first = run(scope)
    paid = len(server.calls)
    second = run(dataclasses.replace(scope, try_number=2))

    assert first["status"] == second["status"] == "passed" and paid == 3, "two iterations and one review"
    assert len(server.calls) == paid, "the retry sent no new request, the review's included"
    assert second["usage"]["cached_calls"] == 3 and second["cost_usd"] == 0 and first["cost_usd"] > 0
    assert Path(first["patch"]).read_text() == Path(second["patch"]).read_text()
    assert second["review"] == first["review"]
    trees = {run_git(["rev-parse", f"{r['commit']}^{{tree}}"], _cache_repo(roots)).strip() for r in (first, second)}
    assert len(trees) == 1, "the same tree: the same workspace state"
    branch_head = run_git(["rev-parse", second["branch"]], _cache_repo(roots)).strip()
    assert branch_head == second["commit"] and second["branch"].startswith("supervisor/coding_dag/")


def _cache_repo(roots: Roots) -> Path:
    (repo,) = [p for p in roots.repo_cache.iterdir() if p.is_dir()]
    return repo


def test_the_artifacts_and_a_kept_workspace_of_a_failed_job(
    server: FakeProviderServer, scope: CallScope, roots: Roots
) -> None:
    server.add_rule(Rule(provider="anthropic", text=WRONG_FIX, times=1))
    server.add_rule(Rule(provider="anthropic", text="I am not sure what to change."))
    job = dataclasses.replace(JOB, max_iterations=2, keep_workspace="on_failure")

    result = run_write_job(job, scope, model_chat("anthropic", scope, None, model="claude-haiku-4-5"), roots, LOG)

    assert result["status"] == "failed" and result["branch"] is None and result["commit"] is None
    assert [it["outcome"] for it in result["iterations"]] == ["validation_failed", "edit_error"]
    assert result["workspace"] and "return a * b" in (Path(result["workspace"]) / "calculator/core.py").read_text()
    folder = Path(result["artifacts"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "context.json", "conversation.json", "iterations.json", "patch.diff", "result.json", "validation-1.log",
    ]  # fmt: skip
    assert json.loads((folder / "result.json").read_text())["status"] == "failed"
    assert "FAILED tests/test_core.py::test_add" in (folder / "validation-1.log").read_text()
    assert result["validation"]["exit_code"] == 1 and result["sandbox"]["isolation"] in ("bwrap", "unshare", "none")


def test_a_passing_job_removes_its_workspace_and_a_reviewer_is_recorded(
    server: FakeProviderServer, scope: CallScope, roots: Roots
) -> None:
    _scripted_fix(server)
    server.add_rule(Rule(provider="openai", json={"decision": "approve", "summary": "Fine.", "comments": []}))
    review_chat = model_chat("openai", scope, None, model="gpt-4.1-mini", max_tokens=500)
    reviewer = Reviewer(review_chat, review_chat.label, "bug_fix", JOB.instructions)

    result = run_write_job(
        JOB, scope, model_chat("anthropic", scope, None, model="claude-haiku-4-5"), roots, LOG, reviewer=reviewer
    )

    assert result["status"] == "passed" and result["workspace"] is None
    assert result["review"]["decision"] == "approve" and result["review"]["reviewer"] == "openai gpt-4.1-mini"
    assert result["usage"]["calls"] == 3 and (Path(result["artifacts"]) / "review.json").is_file()
    review_request = next(c for c in server.calls if c.provider == "openai").body
    assert "return a + b" in review_request["messages"][-1]["content"]
    assert review_request["response_format"]["type"] == "json_schema"


def test_a_budget_stop_keeps_the_iterations_so_far(server: FakeProviderServer, scope: CallScope, roots: Roots) -> None:
    _scripted_fix(server)
    store = MemoryStore()
    chat = model_chat("anthropic", scope, store, model="claude-haiku-4-5", budget_usd=0.0001)

    with pytest.raises(BudgetExceededError):
        run_write_job(JOB, scope, chat, roots, LOG)

    folder = Path(roots.artifacts) / "coding_dag" / "manual__2026-01-01T00_00_00+00_00" / "fix"
    assert json.loads((folder / "iterations.json").read_text()) == []
    assert server.count(path="/v1/messages") == 0
