"""Provider name → hook class, imported lazily so naming a provider costs nothing at DAG-parse time.

Built-in providers are listed here; any other name is a plugin's (``supervisor.providers`` entry points, see
:mod:`supervisor_lib.extensions`), whose hook is imported the first time a call needs it.
"""

from __future__ import annotations

import importlib

from supervisor_lib import extensions
from supervisor_lib.providers.base import BaseLLMHook

HOOKS = {
    "anthropic": "supervisor_lib.providers.anthropic.AnthropicHook",
    "openai": "supervisor_lib.providers.openai.OpenAIHook",
}


def hook_class_for(provider: str) -> type[BaseLLMHook]:
    """The hook class of a provider; ``ValueError`` names the known ones (``PluginError``, a ``ValueError``, a
    broken plugin and its package)."""
    if provider in HOOKS:
        module, name = HOOKS[provider].rsplit(".", 1)
        hook: type[BaseLLMHook] = getattr(importlib.import_module(module), name)
        return hook
    plugin = extensions.provider(provider)
    if plugin is None:
        known = [*sorted(HOOKS), *extensions.names(extensions.PROVIDERS)]
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(known)}")
    found = extensions.import_object(plugin.hook, plugin, "hook")
    if not (isinstance(found, type) and issubclass(found, BaseLLMHook)) or found.provider != provider:
        raise extensions.PluginError(
            f"the hook {plugin.hook!r} of plugin provider {provider!r} must be a BaseLLMHook subclass whose "
            f"provider is {provider!r}, got {found!r}"
        )
    return found
