"""Routing fixtures: a small catalogue, a fake clock, attempts written straight into a store (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supervisor_lib.execution.router import Router
from supervisor_lib.model_facts import load_prices
from supervisor_lib.routing.catalog import Catalog, parse_catalog
from supervisor_lib.store import CallRecord, Store
from supervisor_lib.store.routing_state import RoutingState
from tests.unit.store.conftest import pg_url, store_url  # noqa: F401 - fixtures shared with the store tests

T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

CATALOG: dict[str, Any] = {
    "tiers": ["economy", "standard", "premium"],
    "capabilities": {"code_edit": "", "long_context": "", "structured_output": "", "vision": ""},
    "providers": {
        "anthropic": {"pool": "anthropic", "pool_slots": 4, "conn_id": "anthropic_default"},
        "openai": {"pool": "openai", "pool_slots": 4, "conn_id": "openai_default"},
    },
    "models": {
        "claude-haiku-4-5": {"provider": "anthropic", "tier": "economy", "context_window": 200000,
                             "capabilities": ["code_edit", "long_context", "structured_output"]},
        "claude-sonnet-4-6": {"provider": "anthropic", "tier": "standard", "context_window": 200000,
                              "capabilities": ["code_edit", "long_context", "structured_output"]},
        "gpt-4o-mini": {"provider": "openai", "tier": "economy", "context_window": 128000,
                        "capabilities": ["structured_output"]},
        "gpt-5-mini": {"provider": "openai", "tier": "standard", "context_window": 400000,
                       "capabilities": ["code_edit", "long_context", "structured_output"]},
        "gpt-5": {"provider": "openai", "tier": "premium", "context_window": 400000,
                  "capabilities": ["code_edit", "long_context", "structured_output", "vision"]},
    },
    "task_types": {"bug_fix": ["code_edit", "structured_output"], "pr_review": ["long_context"], "llm": []},
    "routing": {"default_tier": "standard",
                "health": {"window_s": 300, "consecutive_failures": 3, "min_calls": 10, "cooldown_s": 60}},
}  # fmt: skip


def make_catalog(**overrides: Any) -> Catalog:
    """The test catalogue with top-level sections replaced."""
    return parse_catalog({**CATALOG, **overrides}, "test catalogue", load_prices())


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811 - uses the shared store_url fixture
    opened = Store.from_url(store_url, name="routing-test")
    yield opened
    opened.close()


@pytest.fixture
def state(store: Store) -> RoutingState:
    return RoutingState(store)


@pytest.fixture
def router(state: RoutingState, catalog: Catalog, clock: FakeClock) -> Router:
    return Router(state, catalog, clock=clock)


_serial = itertools.count()
RecordAttempt = Callable[..., None]


@pytest.fixture
def record_attempt(store: Store, clock: FakeClock) -> RecordAttempt:
    """Write one ``call_attempts`` row, as the call runner would: ``ok`` success, else a ``RetryableError``."""

    def write(provider: str, model: str, ok: bool = True, *, error_type: str = "RetryableError",
              at: datetime | None = None, duration_s: float = 0.5) -> None:  # fmt: skip
        n = next(_serial)
        store.insert_attempts([CallRecord(
            call_id=f"test-{n}", dag_id="d", run_id="r", task_id="t", provider=provider, model=model,
            task_type="llm", started_at=at or clock(), status="success" if ok else "error", attempt=1,
            duration_s=duration_s, error_type=None if ok else error_type,
        ).to_row()])  # fmt: skip

    return write
