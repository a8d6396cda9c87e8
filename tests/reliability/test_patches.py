"""Hostile patches from the model, at make-test size (benchmarks/reliability/patches.py): every hostile answer is
refused with a reason naming its path, every legitimate control applies, and nothing outside the worktree or in its
``.git`` changes."""

from __future__ import annotations

import pytest

from benchmarks.reliability import patches
from benchmarks.reliability.patches import CASES, FAMILIES, RANDOM_VARIANTS

pytestmark = pytest.mark.slow  # the reliability suite's parts (make unit skips them)


def test_hostile_patches_are_refused_and_nothing_outside_the_worktree_changes() -> None:
    section = patches.run(quick=True)

    assert section.failures == []
    fixed, variants = section.rows[: len(CASES)], section.rows[len(CASES) :]
    assert [row[0] for row in fixed] == [case.name for case in CASES], "every fixed case ran, in order"
    assert all(row[3] == row[2] for row in fixed), "each was refused or applied as expected"
    assert all(row[5] == "unchanged" for row in section.rows)
    hostile = [row for row in fixed if row[2] == "refused"]
    assert len(hostile) >= 40 and len(fixed) - len(hostile) >= 5, "hostile cases and legitimate controls"
    by_name = {str(row[0]): str(row[4]) for row in fixed}
    for spelling in (".git. (trailing dot)", "git~1 (NTFS short name)", ".GIT (odd case)", ".git/ (trailing slash)"):
        assert "is inside .git" in by_name[spelling]
    assert "symbolic link" in by_name["symlink planted by an earlier diff"]
    assert "larger than 1,048,576 bytes" in by_name["huge new file (over the limit)"]
    assert "not a regular file" in by_name["a FIFO the tests left where a file goes"]
    assert len(variants) == len(FAMILIES)
    each = RANDOM_VARIANTS[True] // len(FAMILIES)
    assert [row[3] for row in variants] == [f"{each} refused"] * len(FAMILIES), "every random variant was refused"
