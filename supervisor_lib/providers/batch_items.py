"""Per-item results of a batch: the XCom shape of each item, structured-output checks, the batch price, and the
analytics row each item is recorded as. Pure functions: no I/O, no SDK import."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.policy import output_problem
from supervisor_lib.providers.scrub import scrub
from supervisor_lib.providers.types import LLMRequest, Usage

if TYPE_CHECKING:
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.providers.base import BaseLLMHook
    from supervisor_lib.providers.batches import ItemStatus, RawItem


@dataclass(frozen=True)
class ItemResult:
    """One parsed item. ``cost_usd`` is at the batch price; ``None`` when the model's price is unknown.

    :param error: ``{"type": ..., "message": ...}`` for an item that did not succeed, else ``None``.
    """

    index: int
    custom_id: str
    status: ItemStatus
    model: str
    text: str | None = None
    output: Any = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    error: dict[str, str] | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as it appears in the task's XCom result."""
        return {
            "custom_id": self.custom_id,
            "index": self.index,
            "status": self.status,
            "text": self.text,
            "output": self.output,
            "usage": asdict(self.usage),
            "cost_usd": self.cost_usd,
            "error": self.error,
        }


def parse_item(hook_class: type[BaseLLMHook], request: LLMRequest, raw: RawItem, index: int) -> ItemResult:
    """Turn one provider item into an :class:`ItemResult`; an answer that breaks ``output_schema`` is ``errored``."""
    if raw.status != "succeeded":
        message = scrub(raw.error_message or f"the provider reports the item as {raw.status}")  # may echo the key
        error = {"type": raw.error_type or raw.status, "message": message}
        return ItemResult(index, raw.custom_id, raw.status, request.model, error=error, request_id=raw.request_id)
    # Parsed without the schema: an answer that is not JSON fails this item only, and its tokens were still paid.
    response = hook_class.parse_response(raw.message, replace(request, output_schema=None))
    item = ItemResult(
        index,
        raw.custom_id,
        "succeeded",
        response.model,
        text=response.text,
        usage=response.usage,
        cost_usd=load_prices().cost_usd(response.model, response.usage, batch=True),
        request_id=raw.request_id or response.request_id,
    )
    if request.output_schema is None:
        return item
    output, problem = structured_output(response.text, request.output_schema)
    if problem:
        return replace(item, status="errored", error={"type": "invalid_output", "message": problem})
    return replace(item, output=output)


def structured_output(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The parsed answer and ``None``, or ``None`` and why it does not satisfy ``schema``."""
    try:
        output = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc})"
    problem = output_problem(output, schema)
    return (None, f"the answer does not match output_schema {problem}") if problem else (output, None)


def summarize(*, batch_id: str, provider: str, model: str, items: list[ItemResult]) -> dict[str, Any]:
    """The task's XCom result. It never holds the API key."""
    costs = [item.cost_usd for item in items]
    succeeded = sum(item.status == "succeeded" for item in items)
    return {
        "batch_id": batch_id,
        "provider": provider,
        "model": model,
        "items": [item.to_dict() for item in items],
        "succeeded": succeeded,
        "failed": len(items) - succeeded,
        "cost_usd": None if None in costs else round(sum(c for c in costs if c is not None), 8),
        "usage": asdict(sum((item.usage for item in items), Usage())),
    }


def item_row(
    scope: CallScope, provider: str, item: ItemResult, *, started_at: datetime, duration_s: float
) -> dict[str, Any]:
    """The analytics row of one item (``task_type`` from the scope, normally ``batch``).

    ``scope.try_number`` should be the try that *submitted* the batch: the row's call id is then the same
    whichever try collects the results, so a re-attached retry never records an item twice. ``step`` makes the
    id unique per item.
    """
    ok = item.status == "succeeded"
    return {
        "dag_id": scope.dag_id,
        "run_id": scope.run_id,
        "task_id": scope.task_id,
        "map_index": scope.map_index,
        "try_number": scope.try_number,
        "attempt": 1,
        "provider": provider,
        "model": item.model,
        "task_type": scope.task_type,
        "started_at": started_at,
        "duration_s": duration_s,
        **asdict(item.usage),
        "cost_usd": item.cost_usd,
        "status": "success" if ok else "error",
        "error_type": None if ok or item.error is None else item.error["type"],
        "request_id": item.request_id,
        "tags": ",".join(scope.tags) or None,
        "step": f"batch-item-{item.index}",
        "deferred": scope.deferred,
    }
