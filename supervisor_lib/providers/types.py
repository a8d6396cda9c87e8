"""The provider-neutral call contract: plain frozen dataclasses, no SDK import."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ProviderName = Literal["anthropic", "openai"]


@dataclass(frozen=True)
class LLMRequest:
    """One model call, independent of the provider that will answer it.

    :param messages: chat messages as ``{"role": "user"|"assistant", "content": str}``.
    :param output_schema: a JSON schema; when set the provider's native structured output is requested.
    :param prompt_cache: mark the system prompt (and large context) as cacheable where the provider supports it.
    """

    model: str
    messages: tuple[dict[str, Any], ...]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    output_schema: dict[str, Any] | None = None
    prompt_cache: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["messages"] = list(self.messages)
        return data


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens)


@dataclass(frozen=True)
class LLMResponse:
    """What a provider answered: the text, the parsed structured output (if asked for) and the accounting."""

    provider: ProviderName
    model: str
    text: str
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    stop_reason: str | None = None
    output: Any = None
