"""The provider-neutral call contract: plain frozen dataclasses, no SDK import."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: ``anthropic``, ``openai`` or the name of a plugin's provider (:mod:`supervisor_lib.extensions`)
ProviderName = str


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

    @classmethod
    def build(
        cls,
        *,
        model: str | None,
        default_model: str | None,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output_schema: dict[str, Any] | None = None,
        prompt_cache: bool = True,
        where: str = "task",
    ) -> LLMRequest:
        """Build a request from an operator's (rendered) arguments; ``ValueError`` says what is missing."""
        chosen = model or default_model
        if not chosen:
            raise ValueError(f"{where}: no model given; set model= or the connection's default_model extra")
        if not messages:
            if prompt is None or not str(prompt).strip():
                raise ValueError(f"{where}: the prompt rendered empty; give a prompt or messages")
            messages = [{"role": "user", "content": str(prompt)}]
        return cls(
            model=chosen,
            messages=tuple(messages),
            system=str(system) if system else None,
            max_tokens=max_tokens,
            temperature=temperature,
            output_schema=output_schema,
            prompt_cache=prompt_cache,
        )

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
