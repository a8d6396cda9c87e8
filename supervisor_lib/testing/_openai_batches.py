"""OpenAI Files and Batch API emulation: JSONL input files in, output and error files out."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from supervisor_lib.testing._core import Incoming, Reply, State, new_id, prompt_text, request_model
from supervisor_lib.testing._openai_api import GENERATORS, error_payload, error_reply, invalid_params, ok
from supervisor_lib.testing._rules import OPENAI

_FILE_PATH = re.compile(r"^/v1/files/(?P<id>[^/]+)(?P<content>/content)?$")
_BATCH_PATH = re.compile(r"^/v1/batches/(?P<id>[^/]+)(?P<cancel>/cancel)?$")
_DONE = ("completed", "failed", "cancelled")


@dataclass
class StoredFile:
    """An uploaded (or batch-produced) file kept in memory."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def view(self) -> dict[str, Any]:
        """The ``FileObject`` for this file."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class OpenAIBatch:
    """A batch; item answers are decided at creation and published as files once the batch delay has passed."""

    id: str
    created_at: float
    ready_at: float
    request: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    cancelling_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    finalized: bool = False

    def status(self, now: float) -> str:
        """The batch status as of ``now`` (a cancel answers ``cancelling`` itself, later reads see ``cancelled``)."""
        if self.invalid:
            return "failed"
        if self.cancelling_at is not None:
            return "cancelled"
        return "completed" if now >= self.ready_at else "in_progress"

    def view(self, now: float, *, status: str | None = None) -> dict[str, Any]:
        """The ``Batch`` object as of ``now``."""
        status = status or self.status(now)
        done = status == "completed"
        total = len(self.outputs) + len(self.errors)
        created = int(self.created_at)
        stamp = int(min(now, self.ready_at))
        cancel_stamp = int(self.cancelling_at) if self.cancelling_at else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.request.get("endpoint"),
            "errors": {"object": "list", "data": self.invalid} if self.invalid else None,
            "input_file_id": self.request.get("input_file_id"),
            "completion_window": self.request.get("completion_window", "24h"),
            "status": status,
            "output_file_id": self.output_file_id if done else None,
            "error_file_id": self.error_file_id if done else None,
            "created_at": created,
            "in_progress_at": None if self.invalid else created,
            "expires_at": created + 86400,
            "finalizing_at": stamp if done else None,
            "completed_at": stamp if done else None,
            "failed_at": created if status == "failed" else None,
            "expired_at": None,
            "cancelling_at": cancel_stamp,
            "cancelled_at": cancel_stamp if status == "cancelled" else None,
            "request_counts": {
                "total": total,
                "completed": len(self.outputs) if done else 0,
                "failed": len(self.errors) if done else 0,
            },
            "metadata": self.request.get("metadata"),
        }


def handle(state: State, req: Incoming) -> Reply | None:
    """Answer a Files or Batches request, or return None when the path is neither."""
    if req.path == "/v1/files" and req.method == "POST":
        return _upload(state, req)
    found = _FILE_PATH.match(req.path)
    if found and req.method == "GET":
        return _read_file(state, found["id"], bool(found["content"]))
    if req.path == "/v1/batches":
        return _create_batch(state, req) if req.method == "POST" else _list_batches(state)
    found = _BATCH_PATH.match(req.path)
    if found:
        return _batch_action(state, req, found["id"], bool(found["cancel"]))
    return None


def _form_fields(req: Incoming) -> dict[str, tuple[str | None, bytes]]:
    """Parse a multipart/form-data body into {field: (filename, bytes)} with the standard email parser."""
    content_type = req.header("content-type") or ""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + req.body)
    result: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return result
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            result[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return result


def new_file(filename: str, purpose: str, data: bytes) -> StoredFile:
    """A new in-memory file (the caller stores it under ``state.lock``)."""
    return StoredFile(new_id("file-"), filename, purpose, data, int(time.time()))


def _upload(state: State, req: Incoming) -> Reply:
    form = _form_fields(req)
    if "file" not in form or "purpose" not in form:
        return error_reply(400, "multipart upload needs 'file' and 'purpose' fields")
    filename, data = form["file"]
    purpose = form["purpose"][1].decode()
    stored = new_file(filename or "upload.jsonl", purpose, data)
    with state.lock:
        state.files[stored.id] = stored
    return ok(stored.view())


def _read_file(state: State, file_id: str, content: bool) -> Reply:
    with state.lock:
        stored = state.files.get(file_id)
    if not isinstance(stored, StoredFile):
        return error_reply(404, f"No such File object: {file_id}")
    if not content:
        return ok(stored.view())
    headers = {"x-request-id": new_id("req_")}
    return Reply(status=200, body=stored.data, content_type="application/octet-stream", headers=headers)


def _answer_line(state: State, line_no: int, raw: str, endpoint: str, batch: OpenAIBatch) -> None:
    """Answer one input line by the same rules as a single call, filing it as an output, error or invalid line."""
    try:
        item = json.loads(raw)
    except json.JSONDecodeError:
        batch.invalid.append({"code": "invalid_json_line", "line": line_no, "message": "line is not valid JSON"})
        return
    url, body = item.get("url"), item.get("body")
    problem = invalid_params(endpoint, body) if url == endpoint else f"url {url!r} does not match {endpoint!r}"
    if problem or not item.get("custom_id"):
        batch.invalid.append({"code": "invalid_request", "line": line_no, "message": problem or "custom_id missing"})
        return
    decision = state.decide(OPENAI, prompt_text(body), request_model(body))
    request_id = new_id("req_")
    if decision.answer is not None:
        response = {"status_code": 200, "request_id": request_id, "body": GENERATORS[endpoint](body, decision.answer)}
        batch.outputs.append(
            {"id": new_id("batch_req_"), "custom_id": item["custom_id"], "response": response, "error": None}
        )
        return
    # A connection fault has no batch equivalent: it becomes a server error line.
    status = decision.status or 500
    message = decision.message or f"scripted {decision.fault} fault (fake provider rule {decision.rule_index})"
    response = {"status_code": status, "request_id": request_id, "body": error_payload(status, message)}
    batch.errors.append(
        {"id": new_id("batch_req_"), "custom_id": item["custom_id"], "response": response, "error": None}
    )


def _create_batch(state: State, req: Incoming) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    endpoint = body.get("endpoint")
    if endpoint not in GENERATORS:
        return error_reply(400, f"endpoint must be one of {sorted(GENERATORS)}, got {endpoint!r}")
    with state.lock:
        source = state.files.get(str(body.get("input_file_id")))
    if not isinstance(source, StoredFile):
        return error_reply(400, f"input_file_id {body.get('input_file_id')!r} is not an uploaded file")
    now = time.time()
    batch = OpenAIBatch(new_id("batch_"), now, now + state.batch_delay, body)
    lines = [(n, raw) for n, raw in enumerate(source.data.decode().splitlines(), start=1) if raw.strip()]
    for line_no, raw in lines:
        _answer_line(state, line_no, raw, endpoint, batch)
    if batch.invalid:  # like the real API, a batch with a bad line fails as a whole
        batch.outputs.clear()
        batch.errors.clear()
    with state.lock:
        state.batches[batch.id] = batch
    return ok(batch.view(now, status="failed" if batch.invalid else "in_progress"))


def _finalize(state: State, batch: OpenAIBatch, now: float) -> None:
    """Publish the output and error files the first time a completed batch is read."""
    with state.lock:  # one reader publishes; the others see the file ids it set
        if batch.finalized or batch.status(now) != "completed":
            return
        for kind, lines in (("output", batch.outputs), ("error", batch.errors)):
            if lines:
                data = "".join(json.dumps(line) + "\n" for line in lines).encode()
                stored = new_file(f"{batch.id}_{kind}.jsonl", "batch_output", data)
                state.files[stored.id] = stored
                setattr(batch, f"{kind}_file_id", stored.id)
        batch.finalized = True


def _list_batches(state: State) -> Reply:
    now = time.time()
    with state.lock:
        batches = [b for b in state.batches.values() if isinstance(b, OpenAIBatch)]
    for batch in batches:
        _finalize(state, batch, now)
    data = [b.view(now) for b in reversed(batches)]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return ok({"object": "list", "data": data, "has_more": False, "first_id": first, "last_id": last})


def _batch_action(state: State, req: Incoming, batch_id: str, cancel: bool) -> Reply:
    with state.lock:
        batch = state.batches.get(batch_id)
    if not isinstance(batch, OpenAIBatch):
        return error_reply(404, f"No batch found with id '{batch_id}'")
    now = time.time()
    if cancel and req.method == "POST":
        status = batch.status(now)
        if status in _DONE:
            return error_reply(400, f"Cannot cancel a batch with status '{status}'.")
        batch.cancelling_at = now
        return ok(batch.view(now, status="cancelling"))
    if not cancel and req.method == "GET":
        _finalize(state, batch, now)
        return ok(batch.view(now))
    return error_reply(404, f"no route for {req.method} {req.path}")
