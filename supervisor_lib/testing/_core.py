"""Provider-independent machinery of the fake provider: replies, rule picking, prompt text and token estimates."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from supervisor_lib.testing._rules import CONNECTION_FAULTS, DEFAULT_HANG_SECONDS, STATUS_FAULTS, Rule

DEFAULT_TEXT = (
    "Hello from the Supervisor offline demo provider. No real AI model was called: this is a canned answer "
    "from the local fake provider, so the pipeline can run without network access or API keys."
)
#: How much of an unmatched prompt a strict-mode error quotes.
PROMPT_HEAD_CHARS = 200
# Serialises id generation so ids stay unique and ordered across handler threads.
_ID_COUNTER = itertools.count(1)
_ID_LOCK = threading.Lock()


def new_id(prefix: str) -> str:
    """Return a unique id that looks like the provider's, e.g. ``msg_fake0001a1b2c3d4``."""
    with _ID_LOCK:
        serial = next(_ID_COUNTER)
    return f"{prefix}fake{serial:04d}{uuid.uuid4().hex[:12]}"


def estimate_tokens(text: str) -> int:
    """Deterministic token estimate: a quarter of the characters, at least one."""
    return max(1, len(text) // 4)


def format_seconds(seconds: float) -> str:
    """A ``retry-after`` value: whole seconds as an integer, else a float (both SDKs parse either)."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def collect_text(value: Any) -> list[str]:
    """Gather the human-readable text of any provider's message structure (strings, ``text`` and ``content``)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in collect_text(item)]
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return [value["text"]]
        if "content" in value:
            return collect_text(value["content"])
        if "input" in value and isinstance(value["input"], str | list):
            return collect_text(value["input"])
    return []


def prompt_text(body: dict[str, Any]) -> str:
    """The text rules are matched against: system/instructions first, then messages or input, newline-joined."""
    parts: list[str] = []
    for key in ("system", "instructions", "messages", "input"):
        if key in body:
            parts.extend(collect_text(body[key]))
    return "\n".join(parts)


def request_model(body: dict[str, Any]) -> str | None:
    """The model a request names, for rules that answer one model only."""
    model = body.get("model")
    return model if isinstance(model, str) else None


@dataclass
class Reply:
    """What the HTTP layer should send back; ``fault`` names a connection-level fault that replaces the answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: str | None = None
    rule_index: int | None = None


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply with the given status."""
    return Reply(status=status, body=json.dumps(payload).encode(), headers=dict(headers or {}))


@dataclass(frozen=True)
class Answer:
    """The content a rule (or the default) settled on for one generation request."""

    text: str
    json: Any = None
    usage: dict[str, int] | None = None

    @property
    def json_text(self) -> str:
        """What a structured-output request gets: the rule's JSON when it has one, else the plain text."""
        return json.dumps(self.json) if self.json is not None else self.text


@dataclass(frozen=True)
class Decision:
    """Outcome of picking a rule: an answer, or an error status, or a connection fault."""

    rule_index: int | None
    answer: Answer | None = None
    status: int | None = None
    error_kind: str | None = None
    message: str = ""
    fault: str | None = None
    delay: float = 0.0
    retry_after: float | None = None


class RuleBook:
    """The ordered, thread-safe list of rules with their remaining use counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._remaining: list[int | None] = []

    def add(self, rule: Rule) -> int:
        """Append a rule and return its index."""
        with self._lock:
            self._rules.append(rule)
            self._remaining.append(rule.times)
            return len(self._rules) - 1

    def clear(self) -> None:
        """Forget every rule."""
        with self._lock:
            self._rules.clear()
            self._remaining.clear()

    def snapshot(self) -> list[Rule]:
        """A copy of the rules in order."""
        with self._lock:
            return list(self._rules)

    def take(self, provider: str, prompt: str, model: str | None = None) -> tuple[int, Rule] | None:
        """Find the first live rule for this request and consume one of its uses (atomically)."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                remaining = self._remaining[index]
                if remaining == 0 or not rule.matches(provider, prompt, model):
                    continue
                if remaining is not None:
                    self._remaining[index] = remaining - 1
                return index, rule
        return None


def decide(
    rules: RuleBook, provider: str, prompt: str, *, strict: bool, default_text: str, latency: float,
    model: str | None = None,
) -> Decision:  # fmt: skip
    """Pick the rule for a generation request (for ``model``) and turn it into a :class:`Decision`."""
    found = rules.take(provider, prompt, model)
    if found is None:
        if strict:
            head = prompt[:PROMPT_HEAD_CHARS]
            return Decision(None, status=500, error_kind="no_rule", message=f"no scripted rule matched: {head!r}")
        return Decision(None, answer=Answer(default_text), delay=latency)
    index, rule = found
    delay = rule.latency if rule.latency is not None else latency
    if rule.fault in STATUS_FAULTS:
        retry_after = rule.retry_after if rule.fault == "rate_limit" else None
        message = rule.message or f"scripted {rule.fault} fault (fake provider rule {index})"
        status = STATUS_FAULTS[rule.fault]
        return Decision(
            index, status=status, error_kind=rule.fault, message=message, delay=delay, retry_after=retry_after
        )
    if rule.fault in CONNECTION_FAULTS:
        if rule.fault == "hang":
            delay = rule.latency if rule.latency is not None else DEFAULT_HANG_SECONDS
        return Decision(index, fault=rule.fault, delay=delay)
    text = rule.text if rule.text is not None else (json.dumps(rule.json) if rule.json is not None else default_text)
    return Decision(index, answer=Answer(text, rule.json, rule.usage), delay=delay)


def usage_counts(
    input_tokens: int, answer: Answer, output: str, *, cache_creation: int = 0, cache_read: int = 0
) -> dict[str, int]:
    """Token counts for an answer whose emitted text is ``output``, overridden by the rule's ``usage``."""
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": estimate_tokens(output),
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
    }
    counts.update(answer.usage or {})
    return counts


def unix_now() -> int:
    """Seconds since the epoch, as the OpenAI API reports times."""
    return int(time.time())


def with_key(message: str, headers: dict[str, str]) -> str:
    """``message`` with ``{api_key}`` replaced by the key the request carried (``x-api-key`` or a bearer token)."""
    if "{api_key}" not in message:
        return message
    key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
    return message.replace("{api_key}", key)


@dataclass(frozen=True)
class Incoming:
    """A parsed HTTP request as the provider emulations see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    base_url: str

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass
class State:
    """Everything the provider emulations share: settings, rules, prompt-cache prefixes, batches and files."""

    default_text: str = DEFAULT_TEXT
    strict: bool = False
    latency: float = 0.0
    batch_delay: float = 0.2
    rules: RuleBook = field(default_factory=RuleBook)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cache_prefixes: set[str] = field(default_factory=set)
    batches: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)

    def decide(self, provider: str, prompt: str, model: str | None = None) -> Decision:
        """Pick the rule for one generation request (naming ``model``) with the current settings."""
        return decide(self.rules, provider, prompt, strict=self.strict, default_text=self.default_text,
                      latency=self.latency, model=model)  # fmt: skip

    def note_cache_prefix(self, key: str) -> bool:
        """Remember a prompt-cache prefix; return True when it was already cached (a cache read)."""
        with self.lock:
            hit = key in self.cache_prefixes
            self.cache_prefixes.add(key)
            return hit

    def reset(self) -> None:
        """Forget rules, cached prefixes, batches and files."""
        self.rules.clear()
        with self.lock:
            self.cache_prefixes.clear()
            self.batches.clear()
            self.files.clear()
