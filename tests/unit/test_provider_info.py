"""The package registers its connection types (with UI form fields) through Airflow's provider entry point."""

from __future__ import annotations

import importlib.metadata

import pytest

from supervisor_lib.provider_info import get_provider_info


def test_entry_point_is_installed() -> None:
    points = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [p for p in points if p.value == "supervisor_lib.provider_info:get_provider_info"]
    assert ours, "pip install -e . registers the provider entry point"


def test_provider_info_is_valid_for_airflow() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    info = manager.providers["supervisor-lib"]
    assert info.data["connection-types"] == get_provider_info()["connection-types"]


@pytest.mark.parametrize(("conn_type", "hook"), [("anthropic", "AnthropicHook"), ("openai", "OpenAIHook")])
def test_connection_types_have_form_fields(conn_type: str, hook: str) -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    assert hooks[conn_type] is not None and hooks[conn_type].hook_class_name.endswith(hook)
    manager = ProvidersManager()
    behaviour = manager.field_behaviours[conn_type]
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert "login" in behaviour["hidden_fields"]
    widgets = manager.connection_form_widgets
    assert any(name.endswith("default_model") for name in widgets if name.startswith(f"extra__{conn_type}__"))
