"""The fake provider's HTTP server: a standard-library threading server that routes to the provider emulations."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from supervisor_lib.testing import _anthropic_api, _openai_api, _openai_batches
from supervisor_lib.testing._core import DEFAULT_TEXT, Incoming, Reply, State, json_reply
from supervisor_lib.testing._rules import (
    ANTHROPIC,
    HANG,
    MALFORMED,
    OPENAI,
    RESET,
    TRUNCATED,
    WRONG_SHAPE,
    Rule,
    load_rules,
)

#: Request headers whose values never reach the call log.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})
REDACTED = "<redacted>"
_MALFORMED_BODY = b"<html><body>fake provider: this 200 answer is deliberately not JSON</body></html>"


@dataclass(frozen=True)
class CallRecord:
    """One request the server received; secrets are redacted and only ``had_api_key`` says one was sent."""

    provider: str | None
    method: str
    path: str
    model: str | None
    body: Any
    headers: dict[str, str]
    had_api_key: bool
    rule_index: int | None
    status: int | None
    fault: str | None
    timestamp: float


def _redact(headers: dict[str, str]) -> tuple[dict[str, str], bool]:
    redacted = {name: (REDACTED if name in SECRET_HEADERS else value) for name, value in headers.items()}
    had_key = any(headers.get(name) for name in ("authorization", "x-api-key", "api-key"))
    return redacted, had_key


def _provider_for(req: Incoming) -> str | None:
    """Which API a path belongs to; ``/v1/models`` exists on both, so the Anthropic version header decides."""
    if req.path.startswith("/v1/messages"):
        return ANTHROPIC
    if req.path.startswith("/v1/models"):
        return ANTHROPIC if req.header("anthropic-version") else OPENAI
    if req.path.startswith(("/v1/chat/", "/v1/responses", "/v1/files", "/v1/batches")):
        return OPENAI
    return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when hundreds of clients connect at once.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], owner: FakeProviderServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, closed pool) makes the late write fail; that is expected, not a bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can take seconds; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed
        # ACK add ~40 ms to every keep-alive response, which would swamp latency measurements.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.owner._track(self.connection, add=False)
        with contextlib.suppress(OSError):  # the socket may already be gone after a reset fault
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the call log records every request."""

    def do_GET(self) -> None:
        """Serve every method the same way."""
        self._serve()

    do_POST = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _incoming(self) -> Incoming:
        body = self._read_body()
        parts = urlsplit(self.path)
        try:
            parsed = json.loads(body) if body and "json" in self.headers.get("content-type", "") else None
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        base_url = f"http://{headers['host']}" if headers.get("host") else self.server.owner.url
        return Incoming(self.command, parts.path, dict(parse_qsl(parts.query)), headers, body, parsed, base_url)

    def _serve(self) -> None:
        owner = self.server.owner
        req = self._incoming()
        provider, reply = owner._dispatch(req)
        owner._record(req, provider, reply)
        if reply.fault == HANG:
            owner._stopping.wait(reply.delay)
            self.close_connection = True
            return
        if reply.delay > 0:
            owner._stopping.wait(reply.delay)
        if reply.fault == RESET:
            self._reset()
        elif reply.fault in (MALFORMED, TRUNCATED, WRONG_SHAPE):
            self._broken_body(reply.fault)
        else:
            self._send(reply.status, reply.body, reply.content_type, reply.headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str], length: int = -1) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length < 0 else length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _broken_body(self, fault: str | None) -> None:
        self.close_connection = True
        if fault == MALFORMED:
            self._send(200, _MALFORMED_BODY, "application/json", {})
            return
        if fault == WRONG_SHAPE:  # valid JSON, but not a message or a completion (a confused gateway)
            self._send(200, b'{"status": "ok", "data": null}', "application/json", {})
            return
        body = b'{"id": "truncated", "type": "message", "content": [{"type": "text", "text": "cut he'
        self._send(200, body, "application/json", {}, length=len(body) + 512)


class FakeProviderServer:
    """A local stand-in for the Anthropic and OpenAI HTTP APIs, driven by scripted :class:`Rule` objects.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`) and point the real SDKs at
    :attr:`anthropic_base_url` / :attr:`openai_base_url`. Unmatched requests get ``default_text``, or an HTTP 500
    in ``strict`` mode. ``latency`` delays every answer whose rule sets none; ``batch_delay`` is how long batches
    stay in progress.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        default_text: str = DEFAULT_TEXT,
        strict: bool = False,
        latency: float = 0.0,
        batch_delay: float = 0.2,
    ) -> None:
        self._address = (host, port)
        self._state = State(default_text=default_text, strict=strict, latency=latency, batch_delay=batch_delay)
        self._calls: list[CallRecord] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeProviderServer:
        """Bind the port and serve in a background daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed or hanging handlers and close open connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the fake provider is not started")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.Anthropic``."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI``."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------ settings
    @property
    def default_text(self) -> str:
        """The answer to requests no rule matches (when not strict)."""
        return self._state.default_text

    @default_text.setter
    def default_text(self, value: str) -> None:
        self._state.default_text = value

    @property
    def strict(self) -> bool:
        """When True, an unmatched request gets HTTP 500 "no scripted rule matched"."""
        return self._state.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._state.strict = value

    @property
    def latency(self) -> float:
        """Seconds every answer waits when its rule sets no latency."""
        return self._state.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._state.latency = value

    @property
    def batch_delay(self) -> float:
        """Seconds a new batch stays in progress before it ends."""
        return self._state.batch_delay

    @batch_delay.setter
    def batch_delay(self, value: float) -> None:
        self._state.batch_delay = value

    # ------------------------------------------------------------ scripting
    def add_rule(self, rule: Rule) -> int:
        """Append a rule (checked after the earlier ones) and return its index."""
        return self._state.rules.add(rule)

    def add_rules(self, rules: Iterable[Rule]) -> list[int]:
        """Append several rules; returns their indexes."""
        return [self.add_rule(rule) for rule in rules]

    def load_script(self, path: str | Path) -> list[int]:
        """Append the rules of a YAML or JSON script file; returns their indexes."""
        return self.add_rules(load_rules(path))

    @property
    def rules(self) -> list[Rule]:
        """A copy of the rules in order."""
        return self._state.rules.snapshot()

    def reset(self) -> None:
        """Forget rules, the call log, prompt-cache prefixes, batches and files."""
        self._state.reset()
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------ call log
    @property
    def calls(self) -> list[CallRecord]:
        """A snapshot of the call log, oldest first."""
        with self._lock:
            return list(self._calls)

    def count(self, provider: str | None = None, path: str | None = None) -> int:
        """How many requests were received, optionally only for one provider and/or exact path."""
        return sum(1 for call in self.calls if provider in (None, call.provider) and path in (None, call.path))

    # ------------------------------------------------------------ internals used by the handler
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _dispatch(self, req: Incoming) -> tuple[str | None, Reply]:
        provider = _provider_for(req)
        errors = _anthropic_api if provider == ANTHROPIC else _openai_api
        if req.body and req.json is None and "json" in (req.header("content-type") or ""):
            return provider, errors.error_reply(400, "request body is not valid JSON")
        try:
            if provider == ANTHROPIC:
                reply = _anthropic_api.handle(self._state, req)
            elif provider == OPENAI:
                reply = _openai_api.handle(self._state, req) or _openai_batches.handle(self._state, req)
            else:
                reply = json_reply(404, {"error": {"message": f"fake provider has no route {req.path}"}})
        except Exception:  # a bug here must reach the client as a 500, not kill the handler thread silently
            traceback.print_exc(file=sys.stderr)
            reply = errors.error_reply(500, "fake provider crashed; see its stderr")
        return provider, reply or errors.error_reply(404, f"fake provider has no route {req.method} {req.path}")

    def _record(self, req: Incoming, provider: str | None, reply: Reply) -> None:
        headers, had_key = _redact(req.headers)
        model = req.json.get("model") if isinstance(req.json, dict) else None
        record = CallRecord(
            provider=provider,
            method=req.method,
            path=req.path,
            model=model if isinstance(model, str) else None,
            body=req.json,
            headers=headers,
            had_api_key=had_key,
            rule_index=reply.rule_index,
            status=None if reply.fault in (HANG, RESET) else reply.status,
            fault=reply.fault,
            timestamp=time.time(),
        )
        with self._lock:
            self._calls.append(record)
