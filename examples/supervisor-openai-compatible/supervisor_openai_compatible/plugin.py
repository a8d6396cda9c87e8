"""The declarations Supervisor finds through this package's entry points (see ``pyproject.toml``).

Imported while specs are validated (``supervisor validate``, DAG parsing): only pydantic and
``supervisor_lib.extensions`` here, never Airflow or the OpenAI SDK.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor_lib.extensions import ProviderPlugin, TaskTypePlugin

PROVIDER_NAME = "openai_compatible"

#: what the models served cost, USD per million tokens (a self-hosted model costs what its GPUs do: set your own)
PRICES = {
    "llama-3.1-8b-instruct": {"input": 0.02, "output": 0.05},
    "qwen2.5-coder-32b-instruct": {"input": 0.07, "output": 0.16},
}

#: what the router may pick once the catalogue lists the provider (``providers: {openai_compatible: {...}}``)
MODELS = {
    "llama-3.1-8b-instruct": {"tier": "economy", "context_window": 131072, "capabilities": ["structured_output"]},
    "qwen2.5-coder-32b-instruct": {
        "tier": "standard",
        "context_window": 32768,
        "capabilities": ["structured_output", "code_edit"],
    },
}

PROVIDER = ProviderPlugin(
    name=PROVIDER_NAME,
    hook="supervisor_openai_compatible.hook:OpenAICompatibleHook",
    operator="supervisor_openai_compatible.operators:OpenAICompatibleOperator",
    prices=PRICES,
    models=MODELS,
    name_prefixes=("llama-", "qwen"),
)


class ChangelogSettings(BaseModel):
    """The ``with:`` settings of a ``changelog`` task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    changes: str = Field(
        description="The changes to describe (templated): commit subjects, a diff stat or merged PR titles."
    )
    version: str = Field(description="The version being released, e.g. 1.4.0 (templated).")
    audience: Literal["users", "developers", "operators"] = Field(
        "users", description="Who reads the changelog: it decides what is left out."
    )
    sections: tuple[str, ...] = Field(
        ("Added", "Changed", "Fixed"), min_length=1, description="The headings, in order (Keep a Changelog's)."
    )
    max_words: int = Field(300, ge=20, le=2000, description="The most words the entry may take.")


CHANGELOG = TaskTypePlugin(
    name="changelog",
    builder="supervisor_openai_compatible.builders:changelog_task",
    fields=ChangelogSettings,
    description="Write a release's changelog entry from its changes (an LLM task).",
)
