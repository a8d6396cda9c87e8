"""Test helpers: a local fake Anthropic/OpenAI HTTP server that the real SDKs can talk to.

Script answers and faults with :class:`Rule`, start a :class:`FakeProviderServer` (or use the ``fake_provider``
pytest fixture from :mod:`supervisor_lib.testing.pytest_plugin`) and pass its base URLs to the SDK clients.
"""

from __future__ import annotations

from supervisor_lib.testing._core import DEFAULT_TEXT
from supervisor_lib.testing._rules import (
    AUTH,
    BAD_GATEWAY,
    BAD_REQUEST,
    CONNECTION_FAULTS,
    FAULTS,
    FORBIDDEN,
    HANG,
    MALFORMED,
    NOT_FOUND,
    OVERLOADED,
    RATE_LIMIT,
    RESET,
    SERVER_ERROR,
    STATUS_FAULTS,
    TRUNCATED,
    UNAVAILABLE,
    WRONG_SHAPE,
    Rule,
    load_rules,
)
from supervisor_lib.testing._server import CallRecord, FakeProviderServer

__all__ = [
    "AUTH",
    "BAD_GATEWAY",
    "BAD_REQUEST",
    "CONNECTION_FAULTS",
    "DEFAULT_TEXT",
    "FAULTS",
    "FORBIDDEN",
    "HANG",
    "MALFORMED",
    "NOT_FOUND",
    "OVERLOADED",
    "RATE_LIMIT",
    "RESET",
    "SERVER_ERROR",
    "STATUS_FAULTS",
    "TRUNCATED",
    "UNAVAILABLE",
    "WRONG_SHAPE",
    "CallRecord",
    "FakeProviderServer",
    "Rule",
    "load_rules",
]
