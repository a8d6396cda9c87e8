"""Warnings (never errors) about the models a spec names: unknown to the price table, or deprecated.

Model names are data (``supervisor_lib/data/models.yaml``), not code: a model missing there still runs, but its
cost is recorded as unknown and a ``budget_usd`` cannot be enforced for it, so authors hear about it early.
"""

from __future__ import annotations

import os

from supervisor_lib.model_facts import MODELS_FILE, load_prices
from supervisor_lib.spec.models import WorkflowSpec


def _display(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def model_warnings(spec: WorkflowSpec) -> list[str]:
    """One line per questionable model: ``file: [tasks[2].model] ...``."""
    prices = load_prices()
    where = _display(spec.source_path) if spec.source_path else spec.dag_id
    found: list[str] = []
    for index, task in enumerate(spec.effective_tasks):
        named = [("model", task.model)]
        if task.reviewer is not None:
            named.append(("reviewer.model", task.reviewer.model))
        for field, model in named:
            if model is None:
                continue
            price = prices.models.get(model)
            if price is None:
                found.append(
                    f"{where}: [tasks[{index}].{field}] unknown model '{model}': it will run, but its cost "
                    f"is recorded as unknown and budget_usd cannot be enforced; add it to {MODELS_FILE.name}"
                )
            elif price.deprecated:
                found.append(f"{where}: [tasks[{index}].{field}] model '{model}' is deprecated; choose a current one")
    return found
