"""docs/reliability.md is the suite's own output: every part has its section there, and the renderer writes what
the document holds (a part added to the suite without a fresh run of ``python -m benchmarks.reliability`` fails)."""

from __future__ import annotations

from benchmarks.reliability import Section
from benchmarks.reliability.__main__ import PARTS, ROOT, document


def test_the_document_has_a_section_per_part_of_the_suite() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text()
    assert text.startswith("# Reliability and security figures") and "python -m benchmarks.reliability" in text
    missing = [part for part in PARTS if f"<!-- part: {part} -->" not in text]
    assert missing == [], f"run .venv/bin/python -m benchmarks.reliability --parts {','.join(missing)}"


def test_a_section_renders_its_table_and_its_broken_guarantees() -> None:
    held = Section(key="a", title="A held", summary="fine", headers=["x", "y"], rows=[["1", "a|b"]], seconds=2)
    broken = Section(key="b", title="B broke", failures=["3 rows for 4 requests"])
    text = document([held, broken], quick=True)
    assert "<!-- part: a -->\n## A held" in text and "| 1 | a\\|b |" in text and "Every guarantee held (2 s)" in text
    assert "**Broken guarantees (1):**\n\n- 3 rows for 4 requests" in text
    assert "| [B broke](#b-broke) | 1 |" in text
