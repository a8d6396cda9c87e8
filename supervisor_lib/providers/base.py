"""The shared base of the provider hooks: connection → client config → sync and async clients, and one call.

A hook is the only code that reads a connection. The API key is the connection's password, the base URL its
host (so OpenAI-compatible servers and gateways work), and the extras hold ``default_model``, ``timeout``,
``max_retries`` and, for OpenAI, ``organization`` / ``project``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from supervisor_lib.exceptions import ProviderConfigError, RetryableError, SupervisorError
from supervisor_lib.providers import scrub
from supervisor_lib.providers.errors import map_sdk_error
from supervisor_lib.providers.types import LLMRequest, LLMResponse, ProviderName

#: connection lookups in flight on one event loop, per conn_id (concurrent readers share one)
_CONFIG_READS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]] = (
    weakref.WeakKeyDictionary()
)
#: async SDK clients shared by every call on one event loop (the triggerer's), per provider and client config
_SHARED_SYNC: dict[tuple[Any, ...], Any] = {}
_SHARED_SYNC_LOCK = threading.Lock()
_SHARED_ASYNC: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to build an SDK client; ``api_key`` is never part of ``repr``."""

    base_url: str | None
    api_key: str | None = field(repr=False)
    timeout: float = 120.0
    max_retries: int = 0
    default_model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class BaseLLMHook(BaseHook):
    """Connection handling and one model call; subclasses supply the SDK-specific parts.

    :param conn_id: the Airflow connection to use (``conn_type`` ``anthropic`` or ``openai``).
    """

    provider: ClassVar[ProviderName]
    #: the SDK's top-level module (imported lazily)
    sdk_module: ClassVar[str]
    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    #: extras passed straight to the SDK client constructor
    client_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name

    # -- connection → config --------------------------------------------------------------------------------
    @classmethod
    def config_from_connection(cls, conn: Any) -> ClientConfig:
        """Validate a connection and turn it into a :class:`ClientConfig` (the key is masked in logs)."""
        if conn.conn_type not in (cls.conn_type, "generic", "http"):
            raise ProviderConfigError(
                f"connection {conn.conn_id!r} has conn_type {conn.conn_type!r}; {cls.hook_name} needs '{cls.conn_type}'"
            )
        extra = conn.extra_dejson or {}
        if conn.password:
            mask_secret(conn.password)
            scrub.register(conn.password)  # also out of the messages and rows Supervisor writes itself
        try:
            timeout = float(extra.get("timeout") or 120.0)
            max_retries = int(extra.get("max_retries") or 0)
        except (TypeError, ValueError) as exc:
            raise ProviderConfigError(
                f"connection {conn.conn_id!r}: extras timeout/max_retries must be numbers"
            ) from exc
        return ClientConfig(
            base_url=conn.host or None,
            api_key=conn.password or None,
            timeout=timeout,
            max_retries=max_retries,
            default_model=extra.get("default_model"),
            options={k: extra[k] for k in cls.client_options if extra.get(k)},
        )

    @cached_property
    def config(self) -> ClientConfig:
        return self.config_from_connection(self.get_connection(self.conn_id))

    async def aconfig(self) -> ClientConfig:
        """The config read through Airflow's async connection API (for triggers).

        Concurrent reads of one connection on one loop share a single lookup: in the triggerer, hundreds of calls
        that start together would otherwise queue one round trip each through the triggerer's comms. A read that
        starts after the shared one ended looks the connection up again, so a changed connection is seen.
        """
        loop = asyncio.get_running_loop()
        pending = _CONFIG_READS.setdefault(loop, {})
        read = pending.get(self.conn_id)
        if read is None:
            read = pending[self.conn_id] = loop.create_task(self.aget_connection(self.conn_id))
            read.add_done_callback(lambda _: pending.pop(self.conn_id, None))
        return self.config_from_connection(await asyncio.shield(read))

    @classmethod
    async def aimport_sdk(cls) -> None:
        """Import the SDK in a thread the first time: an import takes ~1 s, which on the triggerer's loop would
        stall every trigger. Start it before the connection lookup so the two overlap (a fresh triggerer's first
        lookup waits ~4 s while Airflow builds its in-process API: ``docs/providers.md``)."""
        if cls.sdk_module not in sys.modules:
            await asyncio.to_thread(importlib.import_module, cls.sdk_module)

    @classmethod
    async def ashared_client(cls, config: ClientConfig) -> Any:
        """:meth:`shared_async_client`, with the SDK imported off the loop (:meth:`aimport_sdk`)."""
        await cls.aimport_sdk()
        return cls.shared_async_client(config)

    # -- clients --------------------------------------------------------------------------------------------
    @classmethod
    def build_client(cls, config: ClientConfig, *, use_async: bool = False) -> Any:
        """Build the SDK client (sync or async) from one config: the single place clients are made."""
        raise NotImplementedError

    @cached_property
    def client(self) -> Any:
        return self.build_client(self.config)

    @classmethod
    def shared_client(cls, config: ClientConfig) -> Any:
        """The sync client for ``config``, built once per process and shared (SDK clients are thread-safe):
        building one costs ~17 ms, more than everything else Supervisor adds to a call."""
        key = _client_key(cls.provider, config)
        with _SHARED_SYNC_LOCK:
            client = _SHARED_SYNC.get(key)
            if client is None:
                client = _SHARED_SYNC[key] = cls.build_client(config)
        return client

    @classmethod
    def shared_async_client(cls, config: ClientConfig) -> Any:
        """The async client for ``config`` on the running event loop, built once and shared by every call on it.

        In the triggerer many calls run on one loop: building a client costs ~20 ms of the loop's time (its SSL
        context), so a client per call would stall every other trigger, and a shared one keeps connections alive
        between calls. Never close it: it lives as long as its loop.
        """
        clients = _SHARED_ASYNC.setdefault(asyncio.get_running_loop(), {})
        key = _client_key(cls.provider, config)
        client = clients.get(key)
        if client is None:
            client = clients[key] = cls.build_client(config, use_async=True)
        return client

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test connection" button: list the models the key can see."""
        try:
            models = self.client.models.list()
            return True, f"connected; {len(list(models))} models visible"
        except Exception as exc:  # the UI shows the message; the key is masked by Airflow
            return False, str(self.map_error(exc, "-"))

    # -- one call -------------------------------------------------------------------------------------------
    @classmethod
    def request_params(cls, request: LLMRequest) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def send(cls, client: Any, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    async def asend(cls, client: Any, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    def parse_response(cls, raw: Any, request: LLMRequest) -> LLMResponse:
        raise NotImplementedError

    @classmethod
    def count_input_tokens(cls, client: Any, request: LLMRequest) -> int | None:
        """The provider's own count of the request's input tokens, where it has an endpoint for it."""
        return None

    @classmethod
    async def acount_input_tokens(cls, client: Any, request: LLMRequest) -> int | None:
        return None

    def complete(self, request: LLMRequest) -> tuple[LLMResponse, float]:
        """Send one request synchronously; return the response and its latency in seconds."""
        return self.call_once(lambda: self.send(self.client, self.request_params(request)), request, self.provider)

    @classmethod
    def call_once(cls, send: Callable[[], Any], request: LLMRequest, provider: str) -> tuple[LLMResponse, float]:
        started = time.monotonic()
        try:
            raw = send()
            response = cls.parse_response(raw, request)  # a 200 of the wrong shape fails here, not later
        except SupervisorError:
            raise
        except Exception as exc:
            raise cls.map_error(exc, request.model) from exc
        return response, time.monotonic() - started

    @classmethod
    def map_error(cls, exc: BaseException, model: str) -> SupervisorError:
        """The SDK error ``exc`` as Supervisor's retryable or fatal error (:func:`~supervisor_lib.providers.errors.
        map_sdk_error`); an adapter may override it to add what its servers' errors mean. Never raises."""
        return map_sdk_error(exc, cls.provider, model)


def parse_json_output(text: str, provider: str, model: str) -> Any:
    """Parse a structured-output answer; a body that is not JSON is retryable (the model may do better)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RetryableError(f"{provider} model {model!r} returned structured output that is not JSON: {exc}") from exc


def _client_key(provider: str, config: ClientConfig) -> tuple[Any, ...]:
    options = json.dumps(config.options, sort_keys=True, default=str)
    return (provider, config.base_url, config.api_key, config.timeout, config.max_retries, options)
