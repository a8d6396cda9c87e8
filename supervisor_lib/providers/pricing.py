"""Model prices and deprecations, read from ``supervisor_lib/data/models.yaml`` (data, not code)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from supervisor_lib.providers.types import Usage

log = logging.getLogger(__name__)

MODELS_FILE = Path(__file__).resolve().parent.parent / "data" / "models.yaml"


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
    return PriceTable(models=models, batch_discount=float(data.get("batch_discount", 1.0)))
