"""Anthropic Message Batches: ``client.messages.batches`` (create, retrieve, cancel, results)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.batches import BatchAdapter, BatchStatus, ItemStatus, RawItem, custom_id
from supervisor_lib.providers.types import LLMRequest

_UNRUN: dict[str, ItemStatus] = {"canceled": "canceled", "expired": "expired"}


class AnthropicBatches(BatchAdapter):
    """Message Batches through the ``anthropic`` SDK; each item's params are the hook's Messages API params."""

    provider = "anthropic"
    hook_class = AnthropicHook

    def _create(self, requests: list[LLMRequest]) -> Any:
        items = [
            {"custom_id": custom_id(i), "params": self.hook_class.request_params(r)} for i, r in enumerate(requests)
        ]
        return self.client.messages.batches.create(requests=items)

    def _retrieve(self, batch_id: str) -> Any:
        return self.client.messages.batches.retrieve(batch_id)

    def _cancel(self, batch_id: str) -> Any:
        return self.client.messages.batches.cancel(batch_id)

    def status_of(self, raw: Any) -> BatchStatus:
        state = str(raw.processing_status)
        return BatchStatus(raw.id, state, state == "ended", raw.created_at, raw.ended_at, raw=raw)

    def _items(self, status: BatchStatus) -> Iterator[RawItem]:
        for entry in self.client.messages.batches.results(status.batch_id):
            yield _raw_item(entry)


def _raw_item(entry: Any) -> RawItem:
    result = entry.result
    if result.type in _UNRUN:
        return RawItem(entry.custom_id, _UNRUN[result.type])
    if result.type == "succeeded":
        return RawItem(entry.custom_id, "succeeded", message=result.message, request_id=result.message.id)
    # ``result.error`` is the API's error envelope: {"type": "error", "error": {"type", "message"}, "request_id"}
    envelope = getattr(result, "error", None)
    error = getattr(envelope, "error", None)
    return RawItem(
        entry.custom_id,
        "errored",
        error_type=getattr(error, "type", None) or "api_error",
        error_message=getattr(error, "message", None) or "the provider reported an error",
        request_id=getattr(envelope, "request_id", None),
    )
