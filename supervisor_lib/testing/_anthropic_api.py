"""Anthropic Messages API emulation: messages, count_tokens, Message Batches and models, in the real wire format."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from supervisor_lib.testing._core import (
    Answer,
    Decision,
    Incoming,
    Reply,
    State,
    collect_text,
    estimate_tokens,
    format_seconds,
    json_reply,
    new_id,
    prompt_text,
    request_model,
    usage_counts,
    with_key,
)
from supervisor_lib.testing._rules import ANTHROPIC

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
MODELS = (
    ("claude-opus-4-8", "Claude Opus 4.8"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-haiku-4-5", "Claude Haiku 4.5"),
)
_BATCH_PATH = re.compile(r"^/v1/messages/batches/(?P<id>[^/]+)(?P<action>/results|/cancel)?$")
_MODEL_PATH = re.compile(r"^/v1/models/(?P<id>[^/]+)$")
_EPOCH_ISO = "2025-01-01T00:00:00Z"


def iso(timestamp: float) -> str:
    """RFC 3339 UTC time, as Anthropic reports it."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def error_payload(status: int, message: str, request_id: str) -> dict[str, Any]:
    """Anthropic's error body for ``status``."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def error_reply(status: int, message: str, *, retry_after: float | None = None) -> Reply:
    """An error reply in Anthropic's shape, with its ``request-id`` (and ``retry-after`` when given)."""
    request_id = new_id("req_")
    headers = {"request-id": request_id}
    if retry_after is not None:
        headers["retry-after"] = format_seconds(retry_after)
    return json_reply(status, error_payload(status, message, request_id), headers)


def handle(state: State, req: Incoming) -> Reply | None:
    """Answer an Anthropic API request, or return None when the path is not an Anthropic route."""
    if req.method == "POST" and req.path == "/v1/messages":
        return _messages(state, req)
    if req.method == "POST" and req.path == "/v1/messages/count_tokens":
        return _count_tokens(req)
    if req.path == "/v1/messages/batches":
        return _create_batch(state, req) if req.method == "POST" else _list_batches(state)
    batch = _BATCH_PATH.match(req.path)
    if batch:
        return _batch_action(state, req, batch["id"], batch["action"] or "")
    if req.method == "GET" and req.path == "/v1/models":
        return _ok(
            {"data": [_model(m) for m in MODELS], "has_more": False, "first_id": MODELS[0][0], "last_id": MODELS[-1][0]}
        )
    model = _MODEL_PATH.match(req.path)
    if req.method == "GET" and model:
        found = [m for m in MODELS if m[0] == model["id"]]
        return _ok(_model(found[0])) if found else error_reply(404, f"model: {model['id']}")
    return None


def _ok(payload: Any) -> Reply:
    return json_reply(200, payload, {"request-id": new_id("req_")})


def _model(entry: tuple[str, str]) -> dict[str, Any]:
    return {"type": "model", "id": entry[0], "display_name": entry[1], "created_at": _EPOCH_ISO, "lifecycle": "active"}


def _invalid_params(body: Any) -> str | None:
    """Why a messages body is unusable, or None when it looks valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    missing = [key for key in ("model", "messages", "max_tokens") if key not in body]
    return f"missing required fields: {', '.join(missing)}" if missing else None


def _messages(state: State, req: Incoming) -> Reply:
    problem = _invalid_params(req.json)
    if problem:
        return error_reply(400, problem)
    body: dict[str, Any] = req.json
    if body.get("stream"):
        return error_reply(400, "streaming is not scripted by the fake provider; call without stream=True")
    decision = state.decide(ANTHROPIC, prompt_text(body), request_model(body))
    if decision.fault:
        reply = Reply(status=200, fault=decision.fault)
    elif decision.answer is None:
        reply = error_reply(
            decision.status or 500, with_key(decision.message, req.headers), retry_after=decision.retry_after
        )
    else:
        reply = _ok(message(state, body, decision.answer))
    reply.delay, reply.rule_index = decision.delay, decision.rule_index
    return reply


def message(state: State, body: dict[str, Any], answer: Answer, *, batch: bool = False) -> dict[str, Any]:
    """A complete ``Message`` object answering ``body``."""
    content, stop_reason = _content(body, answer)
    output = answer.json_text if stop_reason == "tool_use" else content[0]["text"]
    input_tokens, creation, read = _prompt_usage(state, body)
    usage: dict[str, Any] = usage_counts(input_tokens, answer, output, cache_creation=creation, cache_read=read)
    usage["service_tier"] = "batch" if batch else "standard"
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _content(body: dict[str, Any], answer: Answer) -> tuple[list[dict[str, Any]], str]:
    """Structured output goes through a forced tool when the request offers tools but no JSON output format."""
    if _wants_json_format(body):
        return [{"type": "text", "text": answer.json_text}], "end_turn"
    tool = _answer_tool(body) if answer.json is not None else None
    if tool:
        return [{"type": "tool_use", "id": new_id("toolu_"), "name": tool, "input": answer.json}], "tool_use"
    return [{"type": "text", "text": answer.text}], "end_turn"


def _wants_json_format(body: dict[str, Any]) -> bool:
    # ``output_config.format`` is the GA spelling; the older beta sent a top-level ``output_format``.
    config = body.get("output_config") or {}
    fmt = (config.get("format") if isinstance(config, dict) else None) or body.get("output_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_schema"


def _answer_tool(body: dict[str, Any]) -> str | None:
    """The tool a JSON answer should call: the one named by ``tool_choice``, else the first offered tool."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool" and choice.get("name"):
        return str(choice["name"])
    return str(tools[0]["name"])


def _cache_blocks(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The prompt as (text, carries cache_control) blocks in the API's caching order: tools, system, messages."""
    blocks = [(json.dumps(tool, sort_keys=True), bool(tool.get("cache_control"))) for tool in body.get("tools") or []]
    pieces: list[Any] = []
    system = body.get("system")
    pieces.extend([system] if isinstance(system, str) else system or [])
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        pieces.extend([content] if isinstance(content, str) else content or [])
    for piece in pieces:
        marked = isinstance(piece, dict) and bool(piece.get("cache_control"))
        blocks.append(("\n".join(collect_text(piece)), marked))
    return blocks


def _prompt_usage(state: State, body: dict[str, Any]) -> tuple[int, int, int]:
    """(input, cache creation, cache read) token counts; the first sight of a cached prefix writes the cache."""
    blocks = _cache_blocks(body)
    marks = [i for i, (_, marked) in enumerate(blocks) if marked]
    if body.get("cache_control") and blocks:  # automatic caching: everything up to the last block
        marks.append(len(blocks) - 1)
    if not marks:
        return estimate_tokens(prompt_text(body)), 0, 0
    cut = max(marks) + 1
    prefix = "\n".join(text for text, _ in blocks[:cut])
    rest = "\n".join(text for text, _ in blocks[cut:])
    cached = estimate_tokens(prefix)
    hit = state.note_cache_prefix(f"{body.get('model')}\x00{prefix}")
    return estimate_tokens(rest), (0 if hit else cached), (cached if hit else 0)


def _count_tokens(req: Incoming) -> Reply:
    body = req.json
    if not isinstance(body, dict) or "messages" not in body or "model" not in body:
        return error_reply(400, "count_tokens needs model and messages")
    return _ok({"input_tokens": estimate_tokens(prompt_text(body))})


# ---------------------------------------------------------------- Message Batches


@dataclass
class AnthropicBatch:
    """A Message Batch; item results are decided when it is created and revealed after the batch delay."""

    id: str
    created_at: float
    ready_at: float
    results: list[dict[str, Any]]
    base_url: str
    cancel_initiated_at: float | None = None

    def ended(self, now: float) -> bool:
        """Whether processing has ended (cancellation ends it at once, after the ``canceling`` answer)."""
        return self.cancel_initiated_at is not None or now >= self.ready_at

    def lines(self) -> list[dict[str, Any]]:
        """The results file lines; a batch canceled before it ended reports every item canceled."""
        if self.cancel_initiated_at is not None and self.cancel_initiated_at < self.ready_at:
            return [{"custom_id": r["custom_id"], "result": {"type": "canceled"}} for r in self.results]
        return self.results

    def view(self, now: float, *, canceling: bool = False) -> dict[str, Any]:
        """The ``MessageBatch`` object as of ``now``."""
        ended = self.ended(now) and not canceling
        counts = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
        counts["processing"] = 0 if ended else len(self.results)
        if ended:
            for line in self.lines():
                counts[line["result"]["type"]] += 1
        end_time = min(self.ready_at, self.cancel_initiated_at or self.ready_at)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else ("canceling" if canceling else "in_progress"),
            "request_counts": counts,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.created_at + 86400),
            "ended_at": iso(end_time) if ended else None,
            "archived_at": None,
            "cancel_initiated_at": iso(self.cancel_initiated_at) if self.cancel_initiated_at else None,
            "results_url": f"{self.base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


def _invalid_batch(body: Any) -> str | None:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests must be a non-empty list"
    ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
    if None in ids or len(set(ids)) != len(ids):
        return "every request needs a unique custom_id"
    for item in requests:
        problem = _invalid_params(item.get("params"))
        if problem:
            return f"requests[{item['custom_id']}].params: {problem}"
    return None


def _batch_item(state: State, item: dict[str, Any]) -> dict[str, Any]:
    """Answer one batch request by the same rules as a single call (latency does not apply in batches)."""
    params = item["params"]
    decision = state.decide(ANTHROPIC, prompt_text(params), request_model(params))
    if decision.fault:  # a broken connection has no batch equivalent: report it as an API error
        message_text = f"scripted {decision.fault} fault (fake provider rule {decision.rule_index})"
        decision = Decision(decision.rule_index, status=500, message=message_text)
    if decision.answer is None:
        status = decision.status or 500
        error = error_payload(status, decision.message, new_id("req_"))
        return {"custom_id": item["custom_id"], "result": {"type": "errored", "error": error}}
    succeeded = {"type": "succeeded", "message": message(state, params, decision.answer, batch=True)}
    return {"custom_id": item["custom_id"], "result": succeeded}


def _create_batch(state: State, req: Incoming) -> Reply:
    problem = _invalid_batch(req.json)
    if problem:
        return error_reply(400, problem)
    now = time.time()
    results = [_batch_item(state, item) for item in req.json["requests"]]
    batch = AnthropicBatch(new_id("msgbatch_"), now, now + state.batch_delay, results, req.base_url)
    with state.lock:
        state.batches[batch.id] = batch
    return _ok(batch.view(now))


def _list_batches(state: State) -> Reply:
    now = time.time()
    with state.lock:
        batches = [b for b in state.batches.values() if isinstance(b, AnthropicBatch)]
    data = [b.view(now) for b in reversed(batches)]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return _ok({"data": data, "has_more": False, "first_id": first, "last_id": last})


def _batch_action(state: State, req: Incoming, batch_id: str, action: str) -> Reply:
    with state.lock:
        batch = state.batches.get(batch_id)
    if not isinstance(batch, AnthropicBatch):
        return error_reply(404, f"message_batch: {batch_id} not found")
    now = time.time()
    if action == "/cancel" and req.method == "POST":
        if batch.ended(now):
            return _ok(batch.view(now))
        batch.cancel_initiated_at = now
        return _ok(batch.view(now, canceling=True))
    if action == "/results" and req.method == "GET":
        if not batch.ended(now):
            return error_reply(400, f"message_batch {batch_id} has not finished processing")
        body = "".join(json.dumps(line) + "\n" for line in batch.lines()).encode()
        return Reply(status=200, body=body, content_type="application/binary", headers={"request-id": new_id("req_")})
    if action == "" and req.method == "GET":
        return _ok(batch.view(now))
    return error_reply(404, f"no route for {req.method} {req.path}")
