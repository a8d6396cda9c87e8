"""SDK clients pointed at the ``fake_provider`` fixture (registered by the root conftest's ``pytest_plugins``)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from supervisor_lib.testing import FakeProviderServer

API_KEY = "test-key-do-not-log"
# Short client timeouts keep the hang tests fast; no test answer takes this long otherwise.
CLIENT_TIMEOUT = 5.0


@pytest.fixture
def anthropic_client(fake_provider: FakeProviderServer) -> anthropic.Anthropic:
    """The real Anthropic SDK client, without retries, talking to the fake provider."""
    return anthropic.Anthropic(
        api_key=API_KEY, base_url=fake_provider.anthropic_base_url, max_retries=0, timeout=CLIENT_TIMEOUT
    )


@pytest.fixture
def openai_client(fake_provider: FakeProviderServer) -> openai.OpenAI:
    """The real OpenAI SDK client, without retries, talking to the fake provider."""
    return openai.OpenAI(api_key=API_KEY, base_url=fake_provider.openai_base_url, max_retries=0, timeout=CLIENT_TIMEOUT)
