"""The provider hooks drive the real SDKs over HTTP against the fake provider server."""

from __future__ import annotations

import asyncio
import json

import pytest

from supervisor_lib.exceptions import FatalError, ProviderConfigError, RetryableError
from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.base import BaseLLMHook
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.types import LLMRequest
from supervisor_lib.testing import FakeProviderServer, Rule
from tests.support.connections import CANARY_KEY, use_fake_provider

HOOKS = [pytest.param(AnthropicHook, id="anthropic"), pytest.param(OpenAIHook, id="openai")]


@pytest.fixture
def server(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> FakeProviderServer:
    use_fake_provider(monkeypatch, fake_provider)
    return fake_provider


def _request(**kw: object) -> LLMRequest:
    base: dict[str, object] = {"model": "m-1", "messages": ({"role": "user", "content": "hello there"},)}
    return LLMRequest(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("hook_class", HOOKS)
def test_plain_answer(server: FakeProviderServer, hook_class: type[BaseLLMHook]) -> None:
    server.add_rule(Rule(match="hello", text="general kenobi"))
    response, latency = hook_class().complete(_request(system="be brief"))
    assert response.text == "general kenobi"
    assert response.provider == hook_class.provider
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.request_id
    assert latency > 0
    call = server.calls[-1]
    assert call.had_api_key and CANARY_KEY not in json.dumps(call.headers)


@pytest.mark.parametrize("hook_class", HOOKS)
def test_structured_output(server: FakeProviderServer, hook_class: type[BaseLLMHook]) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    server.add_rule(Rule(json={"n": 3}))
    response, _ = hook_class().complete(_request(output_schema=schema))
    assert response.output == {"n": 3}


def test_anthropic_caches_the_system_prompt(server: FakeProviderServer) -> None:
    hook = AnthropicHook()
    first, _ = hook.complete(_request(system="long stable instructions " * 50))
    second, _ = hook.complete(_request(system="long stable instructions " * 50))
    assert first.usage.cache_write_tokens > 0
    assert second.usage.cache_read_tokens > 0
    body = server.calls[-1].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize("hook_class", HOOKS)
@pytest.mark.parametrize(("fault", "status"), [("rate_limit", 429), ("server_error", 500), ("overloaded", 529)])
def test_retryable_statuses(server: FakeProviderServer, hook_class: type[BaseLLMHook], fault: str, status: int) -> None:
    server.add_rule(Rule(fault=fault, retry_after=7))
    with pytest.raises(RetryableError, match=f"HTTP {status}") as info:
        hook_class().complete(_request())
    assert info.value.__cause__ is not None
    if fault == "rate_limit":
        assert info.value.retry_after == 7


@pytest.mark.parametrize("hook_class", HOOKS)
@pytest.mark.parametrize(
    ("fault", "fix"),
    [
        ("auth", "API key was rejected"),
        ("bad_request", "malformed"),
        ("not_found", "model or endpoint"),
        ("forbidden", "permissions"),
    ],
)
def test_fatal_statuses_say_what_to_fix(
    server: FakeProviderServer, hook_class: type[BaseLLMHook], fault: str, fix: str
) -> None:
    server.add_rule(Rule(fault=fault))
    with pytest.raises(ProviderConfigError, match=fix) as info:
        hook_class().complete(_request())
    assert isinstance(info.value, FatalError)
    assert CANARY_KEY not in str(info.value)


@pytest.mark.parametrize("hook_class", HOOKS)
@pytest.mark.parametrize("fault", ["reset", "malformed", "truncated"])
def test_broken_exchanges_are_retryable(server: FakeProviderServer, hook_class: type[BaseLLMHook], fault: str) -> None:
    server.add_rule(Rule(fault=fault))
    with pytest.raises(RetryableError):
        hook_class().complete(_request())


@pytest.mark.parametrize("hook_class", HOOKS)
def test_timeout_is_retryable(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch, hook_class: type[BaseLLMHook]
) -> None:
    use_fake_provider(monkeypatch, fake_provider, timeout=0.3)
    fake_provider.add_rule(Rule(fault="hang", latency=3))
    with pytest.raises(RetryableError, match="timed out"):
        hook_class().complete(_request())


def test_wrong_connection_type_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WRONG", json.dumps({"conn_type": "postgres", "host": "x"}))
    with pytest.raises(ProviderConfigError, match="conn_type 'postgres'; Anthropic needs 'anthropic'"):
        _ = AnthropicHook(conn_id="wrong").config


def test_config_repr_hides_the_key(server: FakeProviderServer) -> None:
    config = OpenAIHook().config
    assert config.api_key == CANARY_KEY
    assert CANARY_KEY not in repr(config)


@pytest.mark.parametrize("hook_class", HOOKS)
def test_async_client_from_the_same_builder(server: FakeProviderServer, hook_class: type[BaseLLMHook]) -> None:
    server.add_rule(Rule(text="async answer"))

    async def call() -> str:
        hook = hook_class()
        client = hook_class.build_client(await hook.aconfig(), use_async=True)
        raw = await hook_class.asend(client, hook_class.request_params(_request()))
        return hook_class.parse_response(raw, _request()).text

    assert asyncio.run(call()) == "async answer"


def test_async_clients_are_shared_per_event_loop_and_config() -> None:
    from supervisor_lib.providers.base import ClientConfig

    config = ClientConfig(base_url="http://127.0.0.1:9", api_key="k1")
    other_key = ClientConfig(base_url="http://127.0.0.1:9", api_key="k2")

    async def clients() -> tuple[object, ...]:
        first = AnthropicHook.shared_async_client(config)
        return (first, AnthropicHook.shared_async_client(config), AnthropicHook.shared_async_client(other_key),
                OpenAIHook.shared_async_client(config))  # fmt: skip

    first, again, keyed, openai = asyncio.run(clients())
    assert first is again  # one client per loop and config: no per-call SSL setup on the triggerer's loop
    assert keyed is not first and openai is not first and type(openai).__module__.startswith("openai")
    [elsewhere, *_] = asyncio.run(clients())
    assert elsewhere is not first  # a client is bound to its loop: another loop gets its own


def test_concurrent_connection_lookups_on_a_loop_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Connection

    lookups: list[str] = []

    async def slow_lookup(self: AnthropicHook, conn_id: str) -> Connection:
        lookups.append(conn_id)
        await asyncio.sleep(0.1)
        return Connection(conn_id=conn_id, conn_type="anthropic", host="http://127.0.0.1:9", password="k")

    monkeypatch.setattr(AnthropicHook, "aget_connection", slow_lookup)

    async def configs() -> list[object]:
        together = await asyncio.gather(*(AnthropicHook(conn_id="shared").aconfig() for _ in range(10)))
        later = await AnthropicHook(conn_id="shared").aconfig()  # after the shared lookup ended: looked up again
        return [*together, later]

    found = asyncio.run(configs())
    assert lookups == ["shared", "shared"] and {c.base_url for c in found} == {"http://127.0.0.1:9"}  # type: ignore[attr-defined]
