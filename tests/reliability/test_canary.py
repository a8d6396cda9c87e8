"""A canary key echoed by the provider in every error appears nowhere Supervisor writes or shows
(benchmarks/reliability/canary.py, make-test size; the real-Airflow half is in tests/integration/test_shipped_specs.py).
"""

from __future__ import annotations

import pytest

from benchmarks.reliability import canary

pytestmark = [pytest.mark.slow, pytest.mark.security]  # slow: a part of the reliability suite


def test_the_echoed_key_appears_nowhere() -> None:
    section = canary.run(quick=True)

    assert section.failures == []
    searched = {str(row[0]): int(str(row[1]).split()[0].replace(",", "")) for row in section.rows}
    assert searched["exceptions"] > 1000 and searched["results (XCom)"] > 1000, "errors and results were searched"
    assert searched["analytics store rows"] > 10_000
    assert all(row[2] == 0 for row in section.rows)
