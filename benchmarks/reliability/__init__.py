"""The reliability and security suite: how much load, how many faults and how many bad inputs Supervisor survives.

Each part is a module of this package with ``run(quick: bool) -> Section``. ``quick=True`` is the size ``make test``
runs (``tests/reliability/``); ``python -m benchmarks.reliability`` runs every part at full size and writes
``docs/reliability.md`` from the sections. A section's ``failures`` lists every broken guarantee it saw, one line
each; the suite fails when any part reports one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Section:
    """One part's result: a table of what was tried and what happened, and the guarantees it saw broken.

    Args:
        key: the module name (``provider_faults``), used as the section's anchor.
        title: the section heading.
        summary: a paragraph in plain words that states the guarantee and the figures.
        headers: the table's column names.
        rows: the table, one list of cells per row (cells are rendered with ``str``).
        failures: one line per broken guarantee; empty when everything held.
        seconds: how long the part took.
    """

    key: str
    title: str
    summary: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[object]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, failure: str) -> bool:
        """Record ``failure`` unless ``ok``; return ``ok``."""
        if not ok:
            self.failures.append(failure)
        return ok

    def markdown(self) -> str:
        """The section as Markdown: heading, summary, table, then the failures (or that there were none)."""
        lines = [f"<!-- part: {self.key} -->", f"## {self.title}", "", self.summary.strip(), ""]
        if self.headers:
            lines.append("| " + " | ".join(self.headers) + " |")
            lines.append("|" + "---|" * len(self.headers))
            lines.extend("| " + " | ".join(_cell(value) for value in row) + " |" for row in self.rows)
            lines.append("")
        if self.failures:
            lines.append(f"**Broken guarantees ({len(self.failures)}):**")
            lines.append("")
            lines.extend(f"- {failure}" for failure in self.failures)
        else:
            lines.append(f"Every guarantee held ({self.seconds:.0f} s).")
        lines.append("")
        return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@contextmanager
def timed(section: Section) -> Iterator[Section]:
    """Measure the block's wall time into ``section.seconds``."""
    start = time.perf_counter()
    try:
        yield section
    finally:
        section.seconds = time.perf_counter() - start


Part = Callable[[bool], Section]
