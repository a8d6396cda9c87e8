"""Extension points: task types and provider adapters from other packages, found through entry points.

A package adds a **task type** under the entry-point group ``supervisor.task_types`` and a **provider adapter**
under ``supervisor.providers``; each entry point names a declaration (:class:`TaskTypePlugin`,
:class:`ProviderPlugin`) in a module that imports no Airflow and no SDK, so validating a spec stays cheap. The
declaration names its heavy parts (builder, operator, hook) as ``"module:attribute"`` strings, imported only when a
DAG is built or a call is made (:func:`import_object`). See ``docs/extending.md``.

Discovery is lazy. A spec that uses only built-in task types and providers never looks at entry points (listing
them costs ~50 ms in a fresh process with Airflow installed); the first name that is not built in lists the groups
once per process, and loads only the entry point of that name. Both results are cached. A plugin that fails to load
is logged once, with its package name, and every later lookup raises the same :class:`PluginError` — which the spec
layer reports at the task that names it: the built-in types and every other spec keep working.

Pure: no Airflow, no SDK (layer 0 of ``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger(__name__)

TASK_TYPES = "supervisor.task_types"
PROVIDERS = "supervisor.providers"


class PluginError(ValueError):
    """A plugin could not be loaded or is not what its entry point promises; the message names its package."""


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: it holds a class
class TaskTypePlugin:
    """A task type from a plugin: its spec fields, and how it becomes Airflow tasks.

    :param name: the spec's ``type:`` value (the entry point's name must be the same).
    :param builder: ``"module:function"``, called as ``builder(spec, task, common)`` like the built-in factories of
        :mod:`supervisor_lib.build.tasks`; it returns the operator whose result is the task's (imported at build time).
    :param fields: a pydantic model of the task's own settings, written under ``with:`` in a spec; its JSON Schema
        joins the spec format's, and its errors are reported at their file and line. ``None``: no settings.
    :param description: one line for the JSON Schema and ``supervisor validate``.
    :param calls_model: whether the task calls a model (then ``provider``, ``model``, ``budget_usd``... apply).
    """

    name: str
    builder: str
    fields: type[BaseModel] | None = None
    description: str = ""
    calls_model: bool = True


@dataclass(frozen=True, eq=False)  # by identity: it holds mappings
class ProviderPlugin:
    """A provider adapter from a plugin: its hook and operator, prices and the models the router may pick.

    :param name: the spec's ``provider:`` value (the entry point's name must be the same).
    :param hook: ``"module:Class"``, a :class:`~supervisor_lib.providers.base.BaseLLMHook` subclass whose
        ``provider`` is ``name`` (imported when a call is made).
    :param operator: ``"module:Class"``, a :class:`~supervisor_lib.operators.llm.BaseLLMOperator` subclass using
        that hook (imported when a DAG is built).
    :param prices: model → ``{input, output, cache_read, cache_write}`` in USD per million tokens; they join the
        price table (:mod:`supervisor_lib.model_facts`) once the plugin is loaded.
    :param models: model → catalogue entry (``tier``, ``context_window``, ``capabilities``): the router may pick
        them once the catalogue lists the provider under ``providers:`` (installing a plugin never reroutes).
    :param name_prefixes: how its models are told by name when the price table does not list them.
    """

    name: str
    hook: str
    operator: str
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    name_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for model, price in self.prices.items():
            unknown = set(price) - _PRICE_KEYS
            if unknown or not {"input", "output"} <= set(price):
                raise ValueError(
                    f"provider {self.name!r}: the price of {model!r} needs input and output (USD per million "
                    f"tokens), and may give {sorted(_PRICE_KEYS)}; got {sorted(price)}"
                )


_PRICE_KEYS = frozenset({"input", "output", "cache_read", "cache_write", "deprecated"})
Plugin = TaskTypePlugin | ProviderPlugin
_KINDS: dict[str, type[TaskTypePlugin] | type[ProviderPlugin]] = {TASK_TYPES: TaskTypePlugin, PROVIDERS: ProviderPlugin}
_WHAT = {TASK_TYPES: "task type", PROVIDERS: "provider"}


@cache
def _entry_points(group: str) -> dict[str, tuple[metadata.EntryPoint, ...]]:
    """The group's entry points by name (listed once per process: it reads every installed package's metadata)."""
    found: dict[str, tuple[metadata.EntryPoint, ...]] = {}
    for entry in metadata.entry_points(group=group):
        found[entry.name] = (*found.get(entry.name, ()), entry)
    return found


def names(group: str) -> tuple[str, ...]:
    """The names installed packages declare in ``group`` (nothing is imported), sorted."""
    return tuple(sorted(_entry_points(group)))


def package_of(entry: metadata.EntryPoint) -> str:
    """``name version`` of the distribution that declares ``entry`` (``unknown package`` when unknown)."""
    dist = entry.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown package"


_loaded: dict[tuple[str, str], Plugin | PluginError] = {}


def load(group: str, name: str) -> Plugin | None:
    """The declaration of plugin ``name`` in ``group``, or ``None`` when no package declares it.

    :raises PluginError: the plugin is broken (logged once; every later call raises the same error).
    """
    key = (group, name)
    if key not in _loaded:
        entries = _entry_points(group).get(name)
        if not entries:
            return None
        _loaded[key] = _load(group, name, entries)
        if isinstance(_loaded[key], PluginError):
            log.warning("%s", _loaded[key])
    result = _loaded[key]
    if isinstance(result, PluginError):
        raise result
    return result


def _load(group: str, name: str, entries: tuple[metadata.EntryPoint, ...]) -> Plugin | PluginError:
    what = f"plugin {_WHAT[group]} {name!r}"
    if len(entries) > 1:
        packages = " and ".join(sorted(package_of(e) for e in entries))
        return PluginError(f"{what} is declared by {packages}: uninstall one")
    entry = entries[0]
    where = f"{what} (package {package_of(entry)}, entry point {entry.value!r})"
    try:
        value = entry.load()
    except Exception as exc:  # a plugin's bug must name the plugin, whatever it raised
        return PluginError(f"{where} could not be loaded: {type(exc).__name__}: {exc}")
    kind = _KINDS[group]
    if not isinstance(value, kind):
        return PluginError(f"{where} is a {type(value).__name__}, not a supervisor_lib.extensions.{kind.__name__}")
    if value.name != name:
        return PluginError(f"{where} declares the name {value.name!r}: the entry point and the declaration must agree")
    return value


def task_type(name: str) -> TaskTypePlugin | None:
    """The plugin task type ``name``; ``None`` when none is installed (:class:`PluginError` when it is broken)."""
    plugin = load(TASK_TYPES, name)
    assert plugin is None or isinstance(plugin, TaskTypePlugin)
    return plugin


def provider(name: str) -> ProviderPlugin | None:
    """The plugin provider ``name``; ``None`` when none is installed (:class:`PluginError` when it is broken)."""
    plugin = load(PROVIDERS, name)
    assert plugin is None or isinstance(plugin, ProviderPlugin)
    return plugin


def loaded_providers() -> tuple[ProviderPlugin, ...]:
    """The provider plugins loaded so far in this process, by name (their prices are in the price table)."""
    return tuple(p for (group, _), p in sorted(_loaded.items()) if group == PROVIDERS and isinstance(p, ProviderPlugin))


def import_object(path: str, plugin: Plugin, what: str) -> Any:
    """Import ``"module:attribute"`` named by ``plugin``'s declaration; :class:`PluginError` names the package."""
    module, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except Exception as exc:
        package = _package_named(plugin)
        raise PluginError(
            f"the {what} {path!r} of plugin {_kind_of(plugin)} {plugin.name!r} (package {package}) could not be "
            f"imported: {type(exc).__name__}: {exc}"
        ) from exc


def _kind_of(plugin: Plugin) -> str:
    return "task type" if isinstance(plugin, TaskTypePlugin) else "provider"


def _package_named(plugin: Plugin) -> str:
    group = TASK_TYPES if isinstance(plugin, TaskTypePlugin) else PROVIDERS
    entries = _entry_points(group).get(plugin.name) or ()
    return package_of(entries[0]) if entries else "unknown package"


def clear() -> None:
    """Forget what was listed and loaded (tests; a process that installed a package meanwhile)."""
    _entry_points.cache_clear()
    _loaded.clear()
