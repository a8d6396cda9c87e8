"""OpenAI (and OpenAI-compatible servers): the hook, and the mapping to the Chat Completions API."""

from __future__ import annotations

from typing import Any

from supervisor_lib.providers.base import BaseLLMHook, ClientConfig, parse_json_output
from supervisor_lib.providers.types import LLMRequest, LLMResponse, Usage


class OpenAIHook(BaseLLMHook):
    """Talks to OpenAI's Chat Completions API through the official ``openai`` SDK.

    Chat Completions is used (rather than the Responses API) because OpenAI-compatible servers such as vLLM,
    Ollama and most gateways implement it.

    :param conn_id: connection of type ``openai`` (default ``openai_default``); password = API key,
        host = base URL (optional, e.g. a vLLM server), extras ``default_model``, ``timeout``, ``max_retries``,
        ``organization``, ``project``.
    """

    provider = "openai"
    sdk_module = "openai"
    default_conn_name = "openai_default"
    conn_type = "openai"
    hook_name = "OpenAI"
    client_options = ("organization", "project")

    @classmethod
    def build_client(cls, config: ClientConfig, *, use_async: bool = False) -> Any:
        import openai

        factory = openai.AsyncOpenAI if use_async else openai.OpenAI
        return factory(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.max_retries,
            **config.options,
        )

    @classmethod
    def request_params(cls, request: LLMRequest) -> dict[str, Any]:
        messages = list(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_completion_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.output_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.output_schema},
            }
        return params

    @classmethod
    def send(cls, client: Any, params: dict[str, Any]) -> Any:
        return client.chat.completions.create(**params)

    @classmethod
    async def asend(cls, client: Any, params: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**params)

    @classmethod
    def parse_response(cls, raw: Any, request: LLMRequest) -> LLMResponse:
        choice = raw.choices[0]
        text = choice.message.content or ""
        usage = raw.usage
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
        output = parse_json_output(text, cls.provider, request.model) if request.output_schema is not None else None
        return LLMResponse(
            provider=cls.provider,
            model=raw.model or request.model,
            text=text,
            output=output,
            usage=Usage(
                input_tokens=(usage.prompt_tokens - cached) if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                cache_read_tokens=cached,
            ),
            request_id=getattr(raw, "_request_id", None),
            stop_reason=choice.finish_reason,
        )
