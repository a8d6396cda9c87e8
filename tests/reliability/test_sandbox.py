"""The sandbox matrix at make-test size (benchmarks/reliability/sandbox.py): every hostile validation command is
contained under every isolating backend that works here, and without isolation validation is refused or loud.

Security tests: a backend that cannot run here skips with the reason, and CI (``SUPERVISOR_REQUIRE=security``)
turns that skip into a failure."""

from __future__ import annotations

import re

import pytest

from benchmarks.reliability import Section, sandbox
from benchmarks.reliability.sandbox import CASES, NO_ISOLATION, QUICK

pytestmark = [pytest.mark.slow, pytest.mark.security]  # slow: a part of the reliability suite


@pytest.fixture(scope="module")
def section() -> Section:
    return sandbox.run(quick=True)


def rows_of(section: Section, backend: str) -> dict[str, list[object]]:
    return {str(row[1]): row for row in section.rows if row[0] == backend}


def test_no_guarantee_is_broken(section: Section) -> None:
    assert section.failures == []
    assert not [row for row in section.rows if row[2] == "escaped"]


@pytest.mark.parametrize("backend", ["bwrap", "unshare"])
def test_every_case_is_contained_under_each_isolating_backend(section: Section, backend: str) -> None:
    rows = rows_of(section, backend)
    assert list(rows) == [name for name, _, _ in CASES], "one row per case, in order"
    skipped = {str(row[2]) for row in rows.values() if str(row[2]).startswith("skipped")}
    if skipped:
        pytest.skip(f"{backend}: {'; '.join(sorted(skipped))}")
    assert {row[2] for row in rows.values()} == {"contained"}
    forks = re.search(r"peaked at (\d+)", str(rows["fork bomb (shell, unbounded)"][4]))
    assert forks and 0 < int(forks.group(1)) <= QUICK.max_procs
    assert str(rows["infinite loop"][4]).startswith("killed at ")
    assert "0 of 8 writes reached the host" in str(rows["writes outside the workspace and into .git"][4])
    assert "unreachable" in str(rows["UNIX sockets outside (PostgreSQL's too)"][4])


def test_without_isolation_validation_is_refused_by_default_and_loud_when_allowed(section: Section) -> None:
    rows = list(rows_of(section, "none").values())
    assert [row[2] for row in rows[:3]] == ["refused", "refused", "warned"]
    assert "the command ran: False" in str(rows[0][4]) and "NO SANDBOX" in str(rows[2][4])
    matrix = {str(row[1]): str(row[2]) for row in rows[3:]}
    assert list(matrix) == [name for name, _, _ in CASES]
    for name, _, needs_isolation in CASES:
        assert matrix[name] == (f"skipped: {NO_ISOLATION}" if needs_isolation else "contained"), name
