"""Anthropic: the hook, and the mapping between :class:`LLMRequest` and the Messages API."""

from __future__ import annotations

from typing import Any

from supervisor_lib.providers.base import BaseLLMHook, ClientConfig, parse_json_output
from supervisor_lib.providers.types import LLMRequest, LLMResponse, Usage

_CACHE = {"type": "ephemeral"}


class AnthropicHook(BaseLLMHook):
    """Talks to the Anthropic Messages API through the official ``anthropic`` SDK.

    :param conn_id: connection of type ``anthropic`` (default ``anthropic_default``); password = API key,
        host = base URL (optional), extras ``default_model``, ``timeout``, ``max_retries``.
    """

    provider = "anthropic"
    sdk_module = "anthropic"
    default_conn_name = "anthropic_default"
    conn_type = "anthropic"
    hook_name = "Anthropic"

    @classmethod
    def build_client(cls, config: ClientConfig, *, use_async: bool = False) -> Any:
        import anthropic

        factory = anthropic.AsyncAnthropic if use_async else anthropic.Anthropic
        return factory(
            api_key=config.api_key, base_url=config.base_url, timeout=config.timeout, max_retries=config.max_retries
        )

    @classmethod
    def request_params(cls, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": list(request.messages),
        }
        if request.system:
            block: dict[str, Any] = {"type": "text", "text": request.system}
            if request.prompt_cache:
                block["cache_control"] = _CACHE  # a cache breakpoint after the (usually long, stable) system prompt
            params["system"] = [block]
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.output_schema is not None:
            params["output_config"] = {"format": {"type": "json_schema", "schema": request.output_schema}}
        return params

    @classmethod
    def send(cls, client: Any, params: dict[str, Any]) -> Any:
        return client.messages.create(**params)

    @classmethod
    async def asend(cls, client: Any, params: dict[str, Any]) -> Any:
        return await client.messages.create(**params)

    @classmethod
    def count_input_tokens(cls, client: Any, request: LLMRequest) -> int | None:
        try:
            return int(client.messages.count_tokens(**_count_params(cls.request_params(request))).input_tokens)
        except Exception:  # counting is an optimisation: fall back to the conservative estimate
            return None

    @classmethod
    async def acount_input_tokens(cls, client: Any, request: LLMRequest) -> int | None:
        try:
            counted = await client.messages.count_tokens(**_count_params(cls.request_params(request)))
            return int(counted.input_tokens)
        except Exception:
            return None

    @classmethod
    def parse_response(cls, raw: Any, request: LLMRequest) -> LLMResponse:
        text = "".join(block.text for block in raw.content if getattr(block, "type", None) == "text")
        usage = raw.usage
        output = parse_json_output(text, cls.provider, request.model) if request.output_schema is not None else None
        return LLMResponse(
            provider="anthropic",
            model=raw.model or request.model,
            text=text,
            output=output,
            usage=Usage(
                input_tokens=usage.input_tokens or 0,
                output_tokens=usage.output_tokens or 0,
                cache_read_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
                cache_write_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
            ),
            request_id=getattr(raw, "_request_id", None),
            stop_reason=raw.stop_reason,
        )


def _count_params(params: dict[str, Any]) -> dict[str, Any]:
    """count_tokens takes the request without generation settings."""
    return {k: v for k, v in params.items() if k not in ("max_tokens", "temperature")}
