"""Provider name → hook class, imported lazily so naming a provider costs nothing at DAG-parse time."""

from __future__ import annotations

import importlib

from supervisor_lib.providers.base import BaseLLMHook

HOOKS = {
    "anthropic": "supervisor_lib.providers.anthropic.AnthropicHook",
    "openai": "supervisor_lib.providers.openai.OpenAIHook",
}


def hook_class_for(provider: str) -> type[BaseLLMHook]:
    """The hook class of a provider; ``ValueError`` names the known ones."""
    try:
        module, name = HOOKS[provider].rsplit(".", 1)
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(HOOKS))}") from None
    hook: type[BaseLLMHook] = getattr(importlib.import_module(module), name)
    return hook
