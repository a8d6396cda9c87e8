"""Pytest plugin with the ``fake_provider`` fixture: a fresh :class:`FakeProviderServer` per test.

Register it with ``pytest_plugins = ["supervisor_lib.testing.pytest_plugin"]`` in a root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supervisor_lib.testing._server import FakeProviderServer


@pytest.fixture
def fake_provider() -> Iterator[FakeProviderServer]:
    """A started fake provider on a free 127.0.0.1 port, stopped after the test (binding takes milliseconds)."""
    with FakeProviderServer() as server:
        yield server
