"""Provider metadata read by Airflow's providers manager (the ``apache_airflow_provider`` entry point).

It registers the ``anthropic`` and ``openai`` connection types with their UI form fields, so the
connection form in the Airflow UI shows a password field for the API key and the base URL as host.
This module must stay import-cheap: Airflow calls it while it builds its configuration.
"""

from __future__ import annotations

from typing import Any


def _llm_connection(conn_type: str, label: str, hook: str, default_url: str) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "conn-fields": {
            "default_model": {
                "label": "Default model",
                "schema": {"type": ["string", "null"]},
                "description": "Model used when a task names none.",
            },
            "timeout": {
                "label": "Timeout (s)",
                "schema": {"type": ["number", "null"]},
                "description": "Per-request timeout in seconds.",
            },
            "max_retries": {
                "label": "SDK max retries",
                "schema": {"type": ["integer", "null"]},
                "description": "Retries inside one attempt (Airflow task retries come on top).",
            },
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {"host": default_url, "password": f"{label} API key"},
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider dict Airflow validates against its provider schema."""
    return {
        "package-name": "supervisor-lib",
        "name": "Supervisor",
        "description": "Supervisor for AI coding agents: Anthropic and OpenAI hooks, operators and triggers.",
        "versions": ["0.1.0"],
        "connection-types": [
            _llm_connection(
                "anthropic",
                "Anthropic",
                "supervisor_lib.providers.anthropic.AnthropicHook",
                "https://api.anthropic.com",
            ),
            _llm_connection(
                "openai", "OpenAI", "supervisor_lib.providers.openai.OpenAIHook", "https://api.openai.com/v1"
            ),
        ],
    }
