"""The provider-fault matrix at make-test size: six faults (transient status, connection, wrong shape, fatal) on
every call path, once and always; every cell must keep the guarantees (benchmarks/reliability/provider_faults.py)."""

from __future__ import annotations

import pytest

from benchmarks.reliability import provider_faults
from benchmarks.reliability.provider_faults import PATHS, QUICK_FAULTS

pytestmark = pytest.mark.slow  # the reliability suite's parts (make unit skips them)


def test_every_fault_on_every_path_keeps_the_guarantees() -> None:
    section = provider_faults.run(quick=True)

    assert section.failures == []
    assert len(section.rows) == 2 * len(QUICK_FAULTS)
    cells = {(row[0], row[1]): dict(zip(PATHS, row[2:], strict=True)) for row in section.rows}
    assert cells["401", "always"]["routed sync"].startswith("fatal: 1 req"), "a rejected key never fails over"
    assert cells["529 overloaded", "always"]["sync"] == "retry: 3 req, 3 rows"
    assert cells["529 overloaded", "always"]["routed deferred"] == "success: 4 req, 4 rows"
    assert cells["reset mid-body", "once"]["deferred"] == "success: 2 req, 2 rows"
    assert cells["200 wrong shape", "always"]["batch"] == "item errored: 3 req, 3 rows"
