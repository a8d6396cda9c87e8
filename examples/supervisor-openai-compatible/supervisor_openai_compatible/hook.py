"""``OpenAICompatibleHook``: the OpenAI SDK pointed at any server that speaks the Chat Completions API.

The request and response mapping are OpenAI's (:class:`~supervisor_lib.providers.openai.OpenAIHook`); what differs
is the connection (its own type, ``openai_compatible``, whose host — the server's base URL — is required and whose
API key is optional: Ollama and vLLM need none) and what its errors mean.
"""

from __future__ import annotations

from typing import Any

from supervisor_lib.exceptions import ProviderConfigError, SupervisorError
from supervisor_lib.providers.base import ClientConfig
from supervisor_lib.providers.openai import OpenAIHook

#: what the OpenAI SDK is given when the server wants no key (it refuses to build a client without one)
NO_KEY = "no-key"


class OpenAICompatibleHook(OpenAIHook):
    """One model call to an OpenAI-compatible server.

    :param conn_id: connection of type ``openai_compatible`` (default ``openai_compatible_default``): host = the
        server's base URL (e.g. ``http://localhost:11434/v1`` for Ollama), password = its API key if it wants one,
        extras ``default_model``, ``timeout``, ``max_retries``.
    """

    provider = "openai_compatible"
    default_conn_name = "openai_compatible_default"
    conn_type = "openai_compatible"
    hook_name = "OpenAI-compatible server"
    client_options = ()

    @classmethod
    def config_from_connection(cls, conn: Any) -> ClientConfig:
        config = super().config_from_connection(conn)
        if not config.base_url:
            raise ProviderConfigError(
                f"connection {conn.conn_id!r}: set its host to the server's base URL, e.g. http://localhost:8000/v1"
            )
        return config

    @classmethod
    def build_client(cls, config: ClientConfig, *, use_async: bool = False) -> Any:
        import openai

        factory = openai.AsyncOpenAI if use_async else openai.OpenAI
        return factory(api_key=config.api_key or NO_KEY, base_url=config.base_url, timeout=config.timeout,
                       max_retries=config.max_retries)  # fmt: skip

    @classmethod
    def map_error(cls, exc: BaseException, model: str) -> SupervisorError:
        """OpenAI's mapping, plus what a self-hosted server's failures usually mean."""
        error = super().map_error(exc, model)
        status = getattr(exc, "status_code", None)
        if status == 404:
            error.args = (f"{error}; a local server (Ollama, vLLM) answers 404 for a model it does not serve: "
                          "pull or load it, or check the name its /v1/models lists",)  # fmt: skip
        elif type(exc).__name__ == "APIConnectionError":
            error.args = (f"{error}; is the server running and its connection's host right?",)
        return error
