"""Point provider connections at a fake provider server through Airflow's env-var connections."""

from __future__ import annotations

import json

import pytest

from supervisor_lib.testing import FakeProviderServer

CANARY_KEY = "sk-canary-7f3a9c1e5b2d4f60a8e7"


def use_fake_provider(
    monkeypatch: pytest.MonkeyPatch, server: FakeProviderServer, *, key: str = CANARY_KEY, **extra: object
) -> None:
    """Set ``anthropic_default`` and ``openai_default`` to the fake server (JSON form: the host has a scheme)."""
    for conn_id, conn_type, base in (
        ("anthropic_default", "anthropic", server.anthropic_base_url),
        ("openai_default", "openai", server.openai_base_url),
    ):
        payload = {"conn_type": conn_type, "host": base, "password": key, "extra": {"timeout": 5, **extra}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
