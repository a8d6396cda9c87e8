"""The provider catalogue: what each model can do, its tier, context window, price and pool (no Airflow import).

The data lives in ``include/catalog.yaml`` (found at ``$AIRFLOW_HOME/include/`` or the project's ``include/``);
prices come from the one price table (:mod:`supervisor_lib.model_facts`). An override — a file named by
``$SUPERVISOR_CATALOG``, or at run time the Airflow Variable ``supervisor_catalog`` (a path or inline YAML) — is
merged over it key by key; ``model: null`` removes a model. The Variable is read only by task execution
(:mod:`supervisor_lib.execution.variables`): parsing a DAG never reads a Variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from supervisor_lib import extensions
from supervisor_lib.model_facts import ModelPrice, PriceTable, load_prices, with_plugin_prices
from supervisor_lib.routing.forecast import ForecastThresholds
from supervisor_lib.routing.health import HealthThresholds

log = logging.getLogger(__name__)

CATALOG_ENV = "SUPERVISOR_CATALOG"
CATALOG_VARIABLE = "supervisor_catalog"
_PROJECT_INCLUDE = Path(__file__).resolve().parents[2] / "include"


class CatalogError(ValueError):
    """The catalogue (or its override) is invalid; the message names the source and the key."""


@dataclass(frozen=True)
class ProviderEntry:
    """A provider: the Airflow pool its calls queue in, the pool's size, and the connection the router uses."""

    name: str
    pool: str
    pool_slots: int
    conn_id: str


@dataclass(frozen=True)
class ModelEntry:
    """A model the router may choose; ``price`` is ``None`` when the price table does not know it."""

    name: str
    provider: str
    tier: str
    context_window: int
    capabilities: frozenset[str]
    price: ModelPrice | None = field(default=None, compare=False)

    def worst_case_usd(self, input_tokens: int, max_tokens: int, sends: int = 1) -> float | None:
        """The most ``sends`` calls can cost: every input token uncached and answers of ``max_tokens``."""
        if self.price is None:
            return None
        one = (input_tokens * self.price.input + max_tokens * self.price.output) / 1_000_000
        # a corrective send repeats the input and adds the rejected answer to it
        extra = (sends - 1) * ((input_tokens + max_tokens) * self.price.input + max_tokens * self.price.output)
        return one + extra / 1_000_000


@dataclass(frozen=True)
class RoutingSettings:
    """The catalogue's ``routing`` section."""

    default_tier: str
    health: HealthThresholds = field(default_factory=HealthThresholds)
    forecast: ForecastThresholds = field(default_factory=ForecastThresholds)
    reservation_ttl_s: float = 3600.0


@dataclass(frozen=True)
class Catalog:
    """The parsed catalogue (see the module docstring)."""

    tiers: tuple[str, ...]
    capabilities: Mapping[str, str]
    providers: Mapping[str, ProviderEntry]
    models: Mapping[str, ModelEntry]
    task_types: Mapping[str, frozenset[str]]
    settings: RoutingSettings
    source: str = "catalog"
    #: parse-time plans by request (see ``policy.static_plan``): a catalogue is immutable, so they never go stale
    static_plans: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def tier_rank(self, tier: str) -> int:
        """0 for the lowest tier; ``CatalogError`` for an unknown one."""
        try:
            return self.tiers.index(tier)
        except ValueError:
            raise CatalogError(f"unknown tier {tier!r}; the catalogue has {list(self.tiers)}") from None

    def required(self, task_type: str, extra: Iterable[str] = ()) -> frozenset[str]:
        """The capabilities a task needs: its type's (unknown types need none) plus its own."""
        return self.task_types.get(task_type, frozenset()) | frozenset(extra)

    def unknown_capabilities(self, names: Iterable[str]) -> list[str]:
        """The names that are not capabilities of this catalogue."""
        return sorted(set(names) - set(self.capabilities))


# -- loading ------------------------------------------------------------------------------------------------------
def default_catalog_path() -> Path:
    """``$AIRFLOW_HOME/include/catalog.yaml`` when it exists (a deployed project), else this project's copy."""
    home = os.environ.get("AIRFLOW_HOME")
    deployed = Path(home) / "include" / "catalog.yaml" if home else None
    return deployed if deployed is not None and deployed.is_file() else _PROJECT_INCLUDE / "catalog.yaml"


def load_catalog(path: str | os.PathLike[str] | None = None, *, variable: tuple[str, str] | None = None) -> Catalog:
    """The catalogue with its overrides merged in (parsed once per content).

    :param path: the base file; default :func:`default_catalog_path`.
    :param variable: ``(source, text)`` of the Airflow Variable ``supervisor_catalog``, which the run-time caller
        read (:func:`supervisor_lib.execution.variables.runtime_catalog`); never while DAGs are parsed.
    """
    base = Path(path) if path is not None else default_catalog_path()
    try:
        base_text = read_text(base)
    except OSError as exc:
        raise CatalogError(f"cannot read the catalogue {base}: {exc}; set ${CATALOG_ENV} to its path") from None
    overrides = [env_override(CATALOG_ENV), variable]
    found = tuple(o for o in overrides if o is not None)
    return _parse_cached(str(base), base_text, found, _prices_token())


_texts: dict[Path, tuple[tuple[int, int], str]] = {}


def read_text(path: Path) -> str:
    """A file's text, read again only when its size or mtime changed (DAG parsing asks once per task)."""
    stat = path.stat()
    signature = (stat.st_mtime_ns, stat.st_size)
    cached = _texts.get(path)
    if cached is None or cached[0] != signature:
        cached = _texts[path] = (signature, path.read_text(encoding="utf-8"))
    return cached[1]


def env_override(name: str) -> tuple[str, str] | None:
    """``(source, YAML text)`` of the file the environment variable ``name`` names, or ``None`` when unset."""
    path = os.environ.get(name)
    if not path:
        return None
    try:
        return f"${name} ({path})", read_text(Path(path).expanduser())
    except OSError as exc:
        raise CatalogError(f"${name} names {path}, which cannot be read: {exc}") from None


def _prices_token() -> int:
    return id(load_prices())  # load_prices is cached: a new table (tests) means a new catalogue


@lru_cache(maxsize=16)
def _parse_cached(source: str, base_text: str, overrides: tuple[tuple[str, str], ...], _prices: int) -> Catalog:
    data = parse_yaml(base_text, source)
    sources = [source]
    for name, text in overrides:
        data = merge(data, parse_yaml(text, name))
        sources.append(name)
    return parse_catalog(data, " + ".join(sources), load_prices())


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping; ``CatalogError`` names ``source`` when it is not one."""
    try:  # the C loader when PyYAML has it: every DAG file that builds a provider operator reads the catalogue
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: expected a mapping at the top level")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``base``: mappings key by key, anything else replaced; ``None`` removes a key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- parsing ------------------------------------------------------------------------------------------------------
def parse_catalog(data: Mapping[str, Any], source: str, prices: PriceTable) -> Catalog:
    """Validate and build a :class:`Catalog`; ``CatalogError`` names ``source`` and the key.

    A provider under ``providers:`` that is not built in is a plugin's: its models and prices join the catalogue
    (:func:`with_plugin_models`).
    """
    data, prices = with_plugin_models(data, prices)
    tiers = tuple(str(t) for t in data.get("tiers") or ())
    if not tiers:
        raise CatalogError(f"{source}: tiers: give at least one tier, lowest first")
    capabilities = {str(k): str(v or "") for k, v in (data.get("capabilities") or {}).items()}
    providers = {name: _provider(name, entry or {}, source) for name, entry in (data.get("providers") or {}).items()}
    models = {
        name: _model(name, entry, source, tiers, capabilities, providers, prices)
        for name, entry in (data.get("models") or {}).items()
    }
    task_types = {
        str(name): _capabilities(caps or [], capabilities, f"{source}: task_types.{name}")
        for name, caps in (data.get("task_types") or {}).items()
    }
    return Catalog(tiers, capabilities, providers, models, task_types, _settings(data, source, tiers), source)


#: the providers whose hooks ship with Supervisor (any other name under ``providers:`` is a plugin's)
BUILTIN_PROVIDERS = ("anthropic", "openai")


def with_plugin_models(data: Mapping[str, Any], prices: PriceTable) -> tuple[Mapping[str, Any], PriceTable]:
    """The catalogue with the models of the plugin providers it lists under ``providers:`` (the catalogue's own
    entry of a model wins), and the prices with theirs. Only the plugins named are loaded; one that is broken
    adds nothing (it is logged once, with its package: :mod:`supervisor_lib.extensions`)."""
    plugins = []
    for name in data.get("providers") or {}:
        if name in BUILTIN_PROVIDERS:
            continue
        try:
            plugin = extensions.provider(str(name))
        except extensions.PluginError:
            continue
        if plugin is not None:
            plugins.append(plugin)
    if not plugins:
        return data, prices
    models = {name: dict(entry) for plugin in plugins for name, entry in plugin.models.items()}
    models.update(data.get("models") or {})
    return {**data, "models": models}, with_plugin_prices(prices, tuple(plugins))


def _provider(name: str, entry: Mapping[str, Any], source: str) -> ProviderEntry:
    where = f"{source}: providers.{name}"
    check_keys(entry, {"pool", "pool_slots", "conn_id"}, where)
    slots = entry.get("pool_slots", 8)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise CatalogError(f"{where}.pool_slots: expected a whole number >= 1, got {slots!r}")
    return ProviderEntry(name, str(entry.get("pool") or name), slots, str(entry.get("conn_id") or f"{name}_default"))


def _model(name: str, entry: Any, source: str, tiers: tuple[str, ...], capabilities: Mapping[str, str],
           providers: Mapping[str, ProviderEntry], prices: PriceTable) -> ModelEntry:  # fmt: skip
    where = f"{source}: models.{name}"
    if not isinstance(entry, Mapping):
        raise CatalogError(f"{where}: expected a mapping")
    check_keys(entry, {"provider", "tier", "context_window", "capabilities"}, where)
    price = prices.models.get(name)
    provider = entry.get("provider") or (price.provider if price is not None else None)  # one source: the prices
    tier, window = entry.get("tier"), entry.get("context_window")
    if provider not in providers:
        raise CatalogError(f"{where}.provider: {provider!r} is not under providers ({sorted(providers)})")
    if tier not in tiers:
        raise CatalogError(f"{where}.tier: {tier!r} is not one of the tiers {list(tiers)}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise CatalogError(f"{where}.context_window: expected a number of tokens, got {window!r}")
    if price is not None and price.provider != provider:
        raise CatalogError(f"{where}.provider: {provider!r}, but the price table lists it under {price.provider!r}")
    caps = _capabilities(entry.get("capabilities") or [], capabilities, f"{where}.capabilities")
    return ModelEntry(name, str(provider), str(tier), window, caps, price)


def _capabilities(names: Any, known: Mapping[str, str], where: str) -> frozenset[str]:
    if not isinstance(names, list | tuple):
        raise CatalogError(f"{where}: expected a list of capabilities")
    unknown = sorted(set(map(str, names)) - set(known))
    if unknown:
        raise CatalogError(f"{where}: unknown capabilities {unknown}; declare them under capabilities")
    return frozenset(map(str, names))


def _settings(data: Mapping[str, Any], source: str, tiers: tuple[str, ...]) -> RoutingSettings:
    routing = data.get("routing") or {}
    where = f"{source}: routing"
    check_keys(routing, {"default_tier", "health", "forecast", "reservation_ttl_s"}, where)
    tier = str(routing.get("default_tier") or tiers[len(tiers) // 2])
    if tier not in tiers:
        raise CatalogError(f"{where}.default_tier: {tier!r} is not one of the tiers {list(tiers)}")
    try:
        health = HealthThresholds(**(routing.get("health") or {}))
        forecast = ForecastThresholds(**(routing.get("forecast") or {}))
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{where}: {exc}") from None
    return RoutingSettings(tier, health, forecast, float(routing.get("reservation_ttl_s", 3600.0)))


def check_keys(entry: Mapping[str, Any], known: set[str], where: str) -> None:
    """``CatalogError`` (a ``ValueError``) unless ``entry`` is a mapping with only ``known`` keys."""
    if not isinstance(entry, Mapping):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = sorted(set(entry) - known)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
