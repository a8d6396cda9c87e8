"""The Airflow Variables Supervisor reads while a task runs (never while DAGs are parsed): the catalogue and budget
overrides ``supervisor_catalog`` and ``supervisor_budgets``.

Concurrent reads of one Variable in a process share a single lookup: in the triggerer, hundreds of calls may start
together, and each lookup is a round trip through the triggerer's comms.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from supervisor_lib.routing.catalog import CATALOG_VARIABLE, Catalog, load_catalog

log = logging.getLogger(__name__)


def runtime_catalog() -> Catalog:
    """The catalogue with every override, the Variable ``supervisor_catalog`` included."""
    return load_catalog(variable=variable_override(CATALOG_VARIABLE))


@dataclass
class _Read:
    """One Variable read in flight; the threads that ask meanwhile wait for its value instead of reading again."""

    done: threading.Event = field(default_factory=threading.Event)
    value: tuple[str, str] | None = None


_reads: dict[str, _Read] = {}
_reads_lock = threading.Lock()


def variable_override(name: str) -> tuple[str, str] | None:
    """``(source, YAML text)`` of the Airflow Variable ``name`` — inline YAML/JSON, or a path to a file.

    Call it only while a task runs: ``None`` when the Variable is unset or there is no API server to ask.
    Concurrent reads of one Variable in a process share a single lookup (in the triggerer, hundreds of calls may
    start together, and each lookup is a round trip); a read that starts after it ended reads the Variable again.
    """
    with _reads_lock:
        read, leader = _reads.get(name), False
        if read is None:
            read, leader = _reads.setdefault(name, _Read()), True
    if not leader:
        read.done.wait()
        return read.value
    try:
        read.value = _read_variable(name)
    finally:
        with _reads_lock:
            _reads.pop(name, None)
        read.done.set()
    return read.value


def _read_variable(name: str) -> tuple[str, str] | None:
    try:
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
    except Exception as exc:  # tools and tests run outside a task: the Variable simply does not apply
        log.debug("Variable %s not read: %s", name, exc)
        return None
    if not value or not str(value).strip():
        return None
    text = str(value)
    candidate = Path(text.strip()).expanduser()
    if "\n" not in text.strip() and candidate.suffix in (".yaml", ".yml", ".json") and candidate.is_file():
        return f"Variable {name} ({candidate})", candidate.read_text(encoding="utf-8")
    return f"Variable {name}", text
