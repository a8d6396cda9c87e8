"""OpenAI API emulation: chat completions, Responses, Files, Batches and models, in the real wire format."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from supervisor_lib.testing._core import (
    Answer,
    Incoming,
    Reply,
    State,
    estimate_tokens,
    format_seconds,
    json_reply,
    new_id,
    prompt_text,
    request_model,
    unix_now,
    usage_counts,
    with_key,
)
from supervisor_lib.testing._rules import OPENAI

# (error type, error code) per status, as the OpenAI API reports them.
ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    529: ("server_error", "overloaded"),
}
MODELS = ("gpt-5.5", "gpt-5.6-sol", "gpt-5.6-luna")
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
_MODEL_PATH = re.compile(r"^/v1/models/(?P<id>[^/]+)$")
_STRUCTURED_TYPES = ("json_schema", "json_object")


def error_payload(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body for ``status``."""
    kind, code = ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_reply(status: int, message: str, *, retry_after: float | None = None) -> Reply:
    """An error reply in OpenAI's shape, with its ``x-request-id`` (and ``retry-after`` when given)."""
    headers = {"x-request-id": new_id("req_")}
    if retry_after is not None:
        headers["retry-after"] = format_seconds(retry_after)
    return json_reply(status, error_payload(status, message), headers)


def ok(payload: Any) -> Reply:
    """A 200 JSON reply with an ``x-request-id``."""
    return json_reply(200, payload, {"x-request-id": new_id("req_")})


def handle(state: State, req: Incoming) -> Reply | None:
    """Answer an OpenAI generation or models request, or return None for other paths (files and batches too)."""
    if req.method == "POST" and req.path in GENERATORS:
        return _generate(state, req)
    if req.method == "GET" and req.path == "/v1/models":
        return ok({"object": "list", "data": [_model(name) for name in MODELS]})
    model = _MODEL_PATH.match(req.path)
    if req.method == "GET" and model:
        name = model["id"]
        return ok(_model(name)) if name in MODELS else error_reply(404, f"The model '{name}' does not exist")
    return None


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1735689600, "owned_by": "openai"}


def invalid_params(path: str, body: Any) -> str | None:
    """Why a generation body is unusable for ``path``, or None when it looks valid."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    needed = ("model", "messages") if path == CHAT_PATH else ("model", "input")
    missing = [key for key in needed if key not in body]
    return f"Missing required parameter(s): {', '.join(missing)}" if missing else None


def _generate(state: State, req: Incoming) -> Reply:
    problem = invalid_params(req.path, req.json)
    if problem:
        return error_reply(400, problem)
    body: dict[str, Any] = req.json
    if body.get("stream"):
        return error_reply(400, "streaming is not scripted by the fake provider; call without stream=True")
    decision = state.decide(OPENAI, prompt_text(body), request_model(body))
    if decision.fault:
        reply = Reply(status=200, fault=decision.fault)
    elif decision.answer is None:
        reply = error_reply(
            decision.status or 500, with_key(decision.message, req.headers), retry_after=decision.retry_after
        )
    else:
        reply = ok(GENERATORS[req.path](body, decision.answer))
    reply.delay, reply.rule_index = decision.delay, decision.rule_index
    return reply


def _usage(body: dict[str, Any], answer: Answer, output: str) -> dict[str, int]:
    return usage_counts(estimate_tokens(prompt_text(body)), answer, output)


def _function_tool(body: dict[str, Any], *, nested: bool) -> str | None:
    """The function a JSON answer should call: the one ``tool_choice`` names, else the first function tool.

    Chat completions nest the name under ``function``; the Responses API puts it on the tool itself.
    """
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            holder = (tool.get("function") or {}) if nested else tool
            if holder.get("name"):
                names.append(str(holder["name"]))
    choice = body.get("tool_choice")
    if not names or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        named = (choice.get("function") or {}).get("name") if nested else choice.get("name")
        return str(named) if named else names[0]
    return names[0]


def chat_completion(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """A ``chat.completion`` object answering ``body``."""
    structured = (body.get("response_format") or {}).get("type") in _STRUCTURED_TYPES
    tool = None if structured or answer.json is None else _function_tool(body, nested=True)
    output = answer.json_text if structured or tool else answer.text
    message: dict[str, Any] = {"role": "assistant", "content": output, "refusal": None, "annotations": []}
    if tool:
        call = {"id": new_id("call_"), "type": "function", "function": {"name": tool, "arguments": output}}
        message.update(content=None, tool_calls=[call])
    counts = _usage(body, answer, output)
    prompt, completion = counts["input_tokens"], counts["output_tokens"]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": counts["cache_read_input_tokens"]},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake_provider",
    }


def response_object(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """A Responses API ``response`` object answering ``body``."""
    text_config = body.get("text") or {"format": {"type": "text"}}
    structured = (text_config.get("format") or {}).get("type") in _STRUCTURED_TYPES
    tool = None if structured or answer.json is None else _function_tool(body, nested=False)
    output = answer.json_text if structured or tool else answer.text
    if tool:
        item: dict[str, Any] = {
            "type": "function_call",
            "id": new_id("fc_"),
            "call_id": new_id("call_"),
            "name": tool,
            "arguments": output,
            "status": "completed",
        }
    else:
        content = [{"type": "output_text", "text": output, "annotations": [], "logprobs": []}]
        item = {"type": "message", "id": new_id("msg_"), "status": "completed", "role": "assistant", "content": content}
    counts = _usage(body, answer, output)
    now = unix_now()
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "temperature": body.get("temperature", 1.0),
        "text": text_config,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "metadata": body.get("metadata") or {},
        "usage": {
            "input_tokens": counts["input_tokens"],
            "input_tokens_details": {"cached_tokens": counts["cache_read_input_tokens"], "cache_write_tokens": 0},
            "output_tokens": counts["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counts["input_tokens"] + counts["output_tokens"],
        },
    }


GENERATORS: dict[str, Callable[[dict[str, Any], Answer], dict[str, Any]]] = {
    CHAT_PATH: chat_completion,
    RESPONSES_PATH: response_object,
}
