"""Scripted answers for the fake provider: the :class:`Rule` type, fault names and the script-file loader."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ANTHROPIC = "anthropic"
OPENAI = "openai"
PROVIDERS = (ANTHROPIC, OPENAI)

RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
BAD_GATEWAY = "bad_gateway"
UNAVAILABLE = "unavailable"
OVERLOADED = "overloaded"
BAD_REQUEST = "bad_request"
AUTH = "auth"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
HANG = "hang"
RESET = "reset"
MALFORMED = "malformed"
TRUNCATED = "truncated"
WRONG_SHAPE = "wrong_shape"

#: Faults answered with an HTTP error status in the provider's own error-body shape.
STATUS_FAULTS: dict[str, int] = {
    BAD_REQUEST: 400,
    AUTH: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    RATE_LIMIT: 429,
    SERVER_ERROR: 500,
    BAD_GATEWAY: 502,
    UNAVAILABLE: 503,
    OVERLOADED: 529,
}
#: Faults that break the HTTP exchange itself instead of answering with an error status.
CONNECTION_FAULTS = frozenset({HANG, RESET, MALFORMED, TRUNCATED, WRONG_SHAPE})
FAULTS = frozenset(STATUS_FAULTS) | CONNECTION_FAULTS

#: How long a ``hang`` fault holds the connection when the rule gives no latency.
DEFAULT_HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Rule:
    """One scripted answer; the server checks rules in the order they were added and uses the first match.

    Args:
        provider: ``"anthropic"``, ``"openai"`` or None for both.
        model: the model the request names (exactly); None matches every model. Lets one script answer two models
            differently (the offline coding benchmark's experiment arms).
        match: a substring or compiled regex searched in the request's prompt text (system, messages, input);
            None matches every request.
        text: the answer text.
        json: a dict/list answer, sent through the provider's structured-output mechanism when the request asked
            for one (Anthropic ``output_config.format`` or a tool, OpenAI ``response_format``/``text.format`` or a
            function tool), else as JSON text. With both ``text`` and ``json``, structured requests get the JSON
            and the others the text.
        fault: one of :data:`FAULTS` instead of an answer.
        latency: seconds to wait before answering (for ``hang``: how long to hold the connection).
        usage: overrides of the token counts (``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
            ``cache_read_input_tokens``).
        times: how many requests the rule answers before it is used up; None means unlimited.
        retry_after: the ``retry-after`` header (seconds) sent with a ``rate_limit`` fault; None sends none.
        message: the error message of a status fault; ``{api_key}`` in it is replaced by the key the request
            carried (a gateway that echoes the key, for leak tests).
    """

    provider: str | None = None
    model: str | None = None
    match: str | re.Pattern[str] | None = None
    text: str | None = None
    json: Any = None
    fault: str | None = None
    latency: float | None = None
    usage: dict[str, int] | None = None
    times: int | None = None
    retry_after: float | None = 1.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.provider is not None and self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS} or None, got {self.provider!r}")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(FAULTS)}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be None or >= 1, got {self.times}")

    def matches(self, provider: str, prompt: str, model: str | None = None) -> bool:
        """Tell whether this rule applies to a request of ``provider`` for ``model`` whose prompt text is ``prompt``."""
        if self.provider is not None and self.provider != provider:
            return False
        if self.model is not None and self.model != model:
            return False
        if self.match is None:
            return True
        if isinstance(self.match, re.Pattern):
            return self.match.search(prompt) is not None
        return self.match in prompt

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        """Build a rule from a script-file entry; ``match_regex`` gives a regular expression instead of ``match``."""
        data = dict(data)
        known = {f.name for f in fields(cls)}
        pattern = data.pop("match_regex", None)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; expected some of {sorted(known | {'match_regex'})}")
        if pattern is not None:
            if data.get("match") is not None:
                raise ValueError("give either match or match_regex, not both")
            data["match"] = re.compile(pattern)
        return cls(**data)


def load_rules(path: str | Path) -> list[Rule]:
    """Read rules from a YAML (``.yaml``/``.yml``) or JSON script file.

    The file holds either a list of rule mappings or a mapping with a ``rules`` list.
    """
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # deferred: only the CLI and script users need PyYAML

        data = yaml.safe_load(raw)
    else:
        data = json.loads(raw)
    if isinstance(data, dict):
        data = data.get("rules", [])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected a list of rule mappings (or a mapping with a 'rules' list)")
    return [Rule.from_dict(item) for item in data]
