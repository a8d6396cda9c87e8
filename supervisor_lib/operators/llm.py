"""``AnthropicOperator`` and ``OpenAIOperator``: one model call as an Airflow task.

Thin by design: the hook owns the connection and the call, pure functions own pricing and the result shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.base import BaseLLMHook
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.pricing import load_prices
from supervisor_lib.providers.types import LLMRequest, LLMResponse


def result_dict(response: LLMResponse, latency_s: float, attempts: int) -> dict[str, Any]:
    """The JSON-serialisable XCom result of a call. It never holds the API key."""
    usage = response.usage
    return {
        "text": response.text,
        "output": response.output,
        "provider": response.provider,
        "model": response.model,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "cost_usd": load_prices().cost_usd(response.model, usage),
        "latency_s": round(latency_s, 4),
        "request_id": response.request_id,
        "attempts": attempts,
    }


class BaseLLMOperator(BaseOperator):
    """Send one prompt (or a message list) to a model and return the result dict via XCom.

    :param prompt: the user prompt (templated). Give either ``prompt`` or ``messages``.
    :param messages: chat messages ``[{"role": "user", "content": "..."}]`` (templated).
    :param system: the system prompt (templated).
    :param model: the model; defaults to the connection's ``default_model`` extra.
    :param conn_id: the provider connection.
    :param max_tokens: the answer's token limit.
    :param temperature: sampling temperature; ``None`` leaves the provider's default.
    """

    hook_class: ClassVar[type[BaseLLMHook]]
    template_fields: Sequence[str] = ("prompt", "messages", "system", "model")
    ui_color = "#e8e0f7"

    def __init__(
        self,
        *,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: str | None = None,
        model: str | None = None,
        conn_id: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (prompt is None) == (messages is None):
            raise ValueError(
                f"{type(self).__name__}({kwargs.get('task_id')!r}): give exactly one of prompt or messages"
            )
        self.prompt = prompt
        self.messages = messages
        self.system = system
        self.model = model
        self.conn_id = conn_id or self.hook_class.default_conn_name
        self.max_tokens = max_tokens
        self.temperature = temperature

    @cached_property
    def hook(self) -> BaseLLMHook:
        return self.hook_class(conn_id=self.conn_id)

    def build_request(self) -> LLMRequest:
        model = self.model or self.hook.config.default_model
        if not model:
            from supervisor_lib.exceptions import ProviderConfigError

            raise ProviderConfigError(
                f"task {self.task_id!r}: no model given; set model= or the connection's default_model extra"
            )
        messages = self.messages or [{"role": "user", "content": self.prompt}]
        return LLMRequest(
            model=model,
            messages=tuple(messages),
            system=self.system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        request = self.build_request()
        response, latency = self.hook.complete(request)
        self.log.info(
            "%s %s answered in %.2fs (request id %s)", response.provider, response.model, latency, response.request_id
        )
        return result_dict(response, latency, attempts=1)


class AnthropicOperator(BaseLLMOperator):
    """One call to an Anthropic model (connection type ``anthropic``, default ``anthropic_default``)."""

    hook_class = AnthropicHook


class OpenAIOperator(BaseLLMOperator):
    """One call to an OpenAI (or OpenAI-compatible) model (connection type ``openai``, default ``openai_default``)."""

    hook_class = OpenAIHook
