"""What Supervisor knows about each model — its provider, prices and deprecation — read from one data file,
``supervisor_lib/data/models.yaml``. The spec layer, the builder, the router's catalogue and the call runner all ask
here; nothing else in the code names a model or guesses a provider from a name. No Airflow, no SDK."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from supervisor_lib import extensions

if TYPE_CHECKING:
    from supervisor_lib.providers.types import Usage

log = logging.getLogger(__name__)

MODELS_FILE = Path(__file__).resolve().parent / "data" / "models.yaml"


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    provider: str
    input: float
    output: float
    cache_read: float
    cache_write: float
    deprecated: bool = False


@dataclass(frozen=True)
class PriceTable:
    """All known models and the batch discount."""

    models: dict[str, ModelPrice]
    batch_discount: float
    #: provider → the name prefixes of its models (for models the table does not list)
    name_prefixes: dict[str, tuple[str, ...]]

    def provider_of(self, model: str | None) -> str | None:
        """The provider of ``model``: from the table, else from its name; ``None`` when neither tells."""
        if not model:
            return None
        if (price := self.models.get(model)) is not None:
            return price.provider
        lowered = model.lower()
        return next((p for p, prefixes in self.name_prefixes.items() if lowered.startswith(prefixes)), None)

    def cost_usd(self, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        """The cost of one call, or ``None`` (with a warning) for a model with no known price."""
        price = self.models.get(model)
        if price is None:
            log.warning("no price known for model %r: cost recorded as unknown; add it to %s", model, MODELS_FILE.name)
            return None
        total = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_read_tokens * price.cache_read
            + usage.cache_write_tokens * price.cache_write
        ) / 1_000_000
        return round(total * (self.batch_discount if batch else 1.0), 8)


def load_prices(path: Path = MODELS_FILE) -> PriceTable:
    """The price table of a data file (read once per process), with the prices of the provider plugins loaded so
    far (:func:`supervisor_lib.extensions.loaded_providers`: a plugin is loaded when something names its provider
    — a spec, the catalogue, a call — so its models are priced wherever they are used)."""
    return _with_plugins(path, extensions.loaded_providers())


@lru_cache(maxsize=8)
def _with_plugins(path: Path, plugins: tuple[extensions.ProviderPlugin, ...]) -> PriceTable:
    return with_plugin_prices(_read_prices(path), plugins)


def with_plugin_prices(table: PriceTable, plugins: tuple[extensions.ProviderPlugin, ...]) -> PriceTable:
    """``table`` with the models and name prefixes of provider plugins added (the table's own entries win)."""
    if not plugins:
        return table
    models, prefixes = dict(table.models), dict(table.name_prefixes)
    for plugin in plugins:
        for name, fields in plugin.prices.items():
            cache_read, cache_write = fields.get("cache_read", fields["input"]), fields.get("cache_write", 0.0)
            price = ModelPrice(plugin.name, fields["input"], fields["output"], cache_read, cache_write,
                               bool(fields.get("deprecated", False)))  # fmt: skip
            models.setdefault(name, price)  # the project's own table wins
        if plugin.name_prefixes:
            prefixes.setdefault(plugin.name, plugin.name_prefixes)
    return PriceTable(models=models, batch_discount=table.batch_discount, name_prefixes=prefixes)


@lru_cache(maxsize=4)
def _read_prices(path: Path) -> PriceTable:
    data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C loader: 8x faster
    models = {name: ModelPrice(**fields) for name, fields in (data.get("models") or {}).items()}
    prefixes = {name: tuple(values) for name, values in (data.get("name_prefixes") or {}).items()}
    return PriceTable(models=models, batch_discount=float(data.get("batch_discount", 1.0)), name_prefixes=prefixes)


def provider_of(model: str | None) -> str | None:
    """:meth:`PriceTable.provider_of` of the packaged table."""
    return load_prices().provider_of(model)
