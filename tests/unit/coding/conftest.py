"""Shared fixtures for the coding tests: roots in a temp dir, a call scope, scripted models, an in-memory store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.coding.chat import Answer, Message
from supervisor_lib.coding.settings import Roots
from supervisor_lib.execution.runner import CallScope
from tests.support.coding import FIX_AFTER_WRONG, GOOD_FIX, WRONG_FIX

REPOS = Path(__file__).resolve().parents[2] / "fixtures" / "repos"
LOG = logging.getLogger("tests.coding")
__all__ = ["FIX_AFTER_WRONG", "GOOD_FIX", "LOG", "REPOS", "WRONG_FIX", "MemoryStore", "Scripted"]


@dataclass
class Scripted:
    """An ``Ask`` that answers from a list, in order, and records what it was asked."""

    answers: list[str | dict[str, Any]]
    calls: list[tuple[str, list[Message], str, dict[str, Any] | None]] = field(default_factory=list)

    def __call__(
        self, step: str, messages: Sequence[Message], *, system: str, output_schema: dict[str, Any] | None = None
    ) -> Answer:
        self.calls.append((step, [dict(m) for m in messages], system, output_schema))
        if not self.answers:
            raise AssertionError(f"no scripted answer left for {step}")
        answer = self.answers.pop(0)
        usage = {"input_tokens": 100, "output_tokens": 20}
        if isinstance(answer, dict):
            return Answer(text="{}", output=answer, usage=usage, cost_usd=0.001, provider="openai", model="m")
        return Answer(text=answer, usage=usage, cost_usd=0.002, provider="anthropic", model="m")

    def prompt(self, index: int) -> str:
        """The last user message of call ``index``."""
        return self.calls[index][1][-1]["content"]


@pytest.fixture
def scripted() -> Callable[..., Scripted]:
    return lambda *answers: Scripted(list(answers))


@pytest.fixture
def roots(tmp_path: Path) -> Roots:
    return Roots(tmp_path / "workspaces", tmp_path / "cache", str(tmp_path / "artifacts"))


@pytest.fixture
def scope() -> CallScope:
    return CallScope("coding_dag", "manual__2026-01-01T00:00:00+00:00", "fix", task_type="bug_fix")


class MemoryStore:
    """A ``CallStore`` in memory: the response cache and spend, as the analytics ledger keeps them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.cache: dict[str, dict[str, Any]] = {}

    def record_attempt(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def intend(self, row: dict[str, Any]) -> None:
        return None  # intents matter only across processes (supervisor_lib.store.intents)

    def adopt_lost(self, scope: CallScope) -> int:
        return 0

    def cached_response(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    def cache_response(self, key: str, scope: CallScope, result: dict[str, Any]) -> None:
        self.cache[key] = dict(result)

    def task_spend_usd(self, scope: CallScope) -> float:
        return sum(r["cost_usd"] or 0.0 for r in self.rows if r["task_id"] == scope.task_id)
