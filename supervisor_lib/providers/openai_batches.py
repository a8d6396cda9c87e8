"""OpenAI Batch API: upload a JSONL file (``purpose="batch"``), ``client.batches`` create/retrieve/cancel, and
read the output and error files. Items go to Chat Completions, the endpoint OpenAI-compatible servers offer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from supervisor_lib.providers.batches import BatchAdapter, BatchStatus, ItemStatus, RawItem, custom_id
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.types import LLMRequest

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
#: error codes OpenAI writes for items a cancelled or expired batch never ran
_UNRUN: dict[str, ItemStatus] = {"batch_cancelled": "canceled", "batch_expired": "expired"}
_END_FIELDS = ("completed_at", "failed_at", "expired_at", "cancelled_at")


class OpenAIBatches(BatchAdapter):
    """The Batch API through the ``openai`` SDK; each line's body is the hook's Chat Completions params."""

    provider = "openai"
    hook_class = OpenAIHook

    def _create(self, requests: list[LLMRequest]) -> Any:
        lines = [
            {"custom_id": custom_id(i), "method": "POST", "url": ENDPOINT, "body": self.hook_class.request_params(r)}
            for i, r in enumerate(requests)
        ]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = self.client.files.create(file=("supervisor-batch.jsonl", data), purpose="batch")
        return self.client.batches.create(
            input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW
        )

    def _retrieve(self, batch_id: str) -> Any:
        return self.client.batches.retrieve(batch_id)

    def _cancel(self, batch_id: str) -> Any:
        return self.client.batches.cancel(batch_id)

    def status_of(self, raw: Any) -> BatchStatus:
        ended_at = next((getattr(raw, name) for name in _END_FIELDS if getattr(raw, name, None)), None)
        return BatchStatus(
            raw.id,
            raw.status,
            raw.status in _ENDED,
            _time(raw.created_at),
            _time(ended_at),
            problem=_failure(raw) if raw.status == "failed" else None,
            raw=raw,
        )

    def _items(self, status: BatchStatus) -> Iterator[RawItem]:
        for file_id in (status.raw.output_file_id, status.raw.error_file_id):
            if not file_id:
                continue
            for line in self.client.files.content(file_id).text.splitlines():
                if line.strip():
                    yield _raw_item(json.loads(line))

    def _missing(self, status: BatchStatus, item_id: str) -> RawItem:
        if status.state == "cancelled":
            return RawItem(item_id, "canceled")
        if status.state == "expired":
            return RawItem(item_id, "expired")
        return super()._missing(status, item_id)


def _time(stamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def _failure(raw: Any) -> str:
    """Why a batch failed as a whole (its input was rejected: no item ran)."""
    errors = raw.errors.data if raw.errors and raw.errors.data else []
    details = "; ".join(f"line {e.line}: {e.message}" if e.line else str(e.message) for e in errors[:5])
    return details or "the provider reports the batch as failed"


def _raw_item(line: dict[str, Any]) -> RawItem:
    from openai.types.chat import ChatCompletion  # a worker-only path: results are read on workers

    response = line.get("response") or {}
    body = response.get("body") or {}
    request_id = response.get("request_id")
    if response.get("status_code") == 200 and not line.get("error"):
        # construct() builds the nested objects without validating: compatible servers omit optional fields
        return RawItem(line["custom_id"], "succeeded", message=ChatCompletion.construct(**body), request_id=request_id)
    error = line.get("error") or body.get("error") or {}
    code = error.get("code") or error.get("type") or f"http_{response.get('status_code')}"
    if code in _UNRUN:
        return RawItem(line["custom_id"], _UNRUN[code], request_id=request_id)
    message = error.get("message") or "the provider reported an error"
    return RawItem(line["custom_id"], "errored", error_type=code, error_message=message, request_id=request_id)
