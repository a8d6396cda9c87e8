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


@lru_cache(maxsize=4)
def load_prices(path: Path = MODELS_FILE) -> PriceTable:
    """Load (once per process) the price table from a data file."""
    data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C loader: 8x faster
    models = {name: ModelPrice(**fields) for name, fields in (data.get("models") or {}).items()}
    prefixes = {name: tuple(values) for name, values in (data.get("name_prefixes") or {}).items()}
    return PriceTable(models=models, batch_discount=float(data.get("batch_discount", 1.0)), name_prefixes=prefixes)


def provider_of(model: str | None) -> str | None:
    """:meth:`PriceTable.provider_of` of the packaged table."""
    return load_prices().provider_of(model)
