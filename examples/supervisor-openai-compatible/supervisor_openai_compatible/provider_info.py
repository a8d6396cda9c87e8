"""The ``openai_compatible`` connection type, for Airflow's providers manager (the ``apache_airflow_provider``
entry point): the connection form shows the base URL as required, the API key as optional."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """The provider dict Airflow validates against its provider schema."""
    return {
        "package-name": "supervisor-openai-compatible",
        "name": "Supervisor OpenAI-compatible servers",
        "description": "Supervisor plugin: vLLM, Ollama, LM Studio, OpenRouter through the OpenAI SDK.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": "openai_compatible",
                "hook-class-name": "supervisor_openai_compatible.hook.OpenAICompatibleHook",
                "conn-fields": {
                    "default_model": {
                        "label": "Default model",
                        "schema": {"type": ["string", "null"]},
                        "description": "The model a task that names none uses, as the server's /v1/models lists it.",
                    },
                    "timeout": {
                        "label": "Timeout (s)",
                        "schema": {"type": ["number", "null"]},
                        "description": "Per-request timeout in seconds (a local model may be slow to load).",
                    },
                    "max_retries": {
                        "label": "SDK max retries",
                        "schema": {"type": ["integer", "null"]},
                        "description": "Retries inside one attempt (Airflow task retries come on top).",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key (optional)"},
                    "placeholders": {"host": "http://localhost:11434/v1", "password": "empty for Ollama and vLLM"},
                },
            }
        ],
    }
