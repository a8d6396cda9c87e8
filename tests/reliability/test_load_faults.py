"""Concurrent calls with 5% injected faults under a budget that runs out, at make-test size (200 calls):
nothing lost, nothing stuck, no overrun (benchmarks/reliability/load_faults.py)."""

from __future__ import annotations

import pytest

from benchmarks.reliability import load_faults

pytestmark = pytest.mark.slow  # the reliability suite's parts (make unit skips them)


def test_plans_mix_providers_paths_and_faults() -> None:
    calls = load_faults.plans(1000)
    assert {(p.provider, p.deferred) for p in calls[:4]} == {
        ("anthropic", False), ("openai", False), ("anthropic", True), ("openai", True)
    }  # fmt: skip
    faulty = [p for p in calls if p.fault]
    assert 30 <= len(faulty) <= 70 and any(p.fault in load_faults.FATAL for p in faulty)


def test_load_with_faults_loses_nothing_and_never_overruns_the_budget() -> None:
    section = load_faults.run(quick=True)

    assert section.failures == []
    counts = dict((str(row[0]), row[1]) for row in section.rows)
    assert counts["requests the provider received"] == counts["analytics rows recorded"]
    assert counts["ended: answered"] > 50 and counts["ended: refused by budget"] > 20, "the budget ran out part-way"
