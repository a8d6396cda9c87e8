"""How rendered spec templates are read, in a module light enough for DAG files and task processes to import."""

from __future__ import annotations

from typing import Any

_FALSE = frozenset({"", "false", "no", "off", "0", "none", "null", "[]", "{}"})


def when_truthy(rendered: Any) -> bool:
    """How a rendered ``when`` is read: false for '', false, no, off, 0, none, null, [] and {} (any case, trimmed).

    A value that is not a string (a native render) is read with Python's truthiness.
    """
    if not isinstance(rendered, str):
        return bool(rendered)
    return rendered.strip().lower() not in _FALSE
