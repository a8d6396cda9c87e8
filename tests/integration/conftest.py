"""Fixtures of the modules that start a real Airflow (``tests.support.stack``): one of each per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supervisor_lib.testing import FakeProviderServer
from tests.conftest import DATABASES, ROOT
from tests.support.databases import fresh_database_url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    """A strict fake provider (an unscripted request fails) shared by the module's stack."""
    with FakeProviderServer(strict=True) as server:
        yield server


@pytest.fixture(scope="module")
def demo() -> Iterator[FakeProviderServer]:
    """A strict fake provider with the offline demo's script (``make run``'s answers): a request the script does
    not answer fails, so a green run proves the offline demo covers it."""
    with FakeProviderServer(strict=True, latency=0.05) as server:
        server.load_script(ROOT / "include" / "demo" / "fake_provider.yaml")
        yield server


@pytest.fixture(scope="module")
def analytics_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh analytics store for the module (``supervisor_it_<module>_analytics``)."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    name = f"supervisor_it_{module}_analytics"
    return fresh_database_url(DATABASES, name, tmp_path_factory.mktemp("analytics"))
