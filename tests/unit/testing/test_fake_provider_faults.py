"""Every scripted fault reaches the real SDKs as the exception a real outage would raise."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from supervisor_lib.testing import FakeProviderServer, Rule

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-5.5"


def call_claude(client: anthropic.Anthropic, **options: Any) -> Any:
    return client.with_options(**options).messages.create(
        model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hello"}]
    )


def call_gpt(client: openai.OpenAI, **options: Any) -> Any:
    return client.with_options(**options).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "hello"}]
    )


STATUS_CASES = [
    ("rate_limit", 429, anthropic.RateLimitError, openai.RateLimitError, "rate_limit_error"),
    ("server_error", 500, anthropic.InternalServerError, openai.InternalServerError, "api_error"),
    ("overloaded", 529, anthropic.OverloadedError, openai.InternalServerError, "overloaded_error"),
    ("bad_request", 400, anthropic.BadRequestError, openai.BadRequestError, "invalid_request_error"),
    ("auth", 401, anthropic.AuthenticationError, openai.AuthenticationError, "authentication_error"),
    ("forbidden", 403, anthropic.PermissionDeniedError, openai.PermissionDeniedError, "permission_error"),
    ("not_found", 404, anthropic.NotFoundError, openai.NotFoundError, "not_found_error"),
]


@pytest.mark.parametrize(("fault", "status", "anthropic_error", "openai_error", "error_type"), STATUS_CASES)
def test_status_faults_raise_the_sdk_exceptions(
    fake_provider: FakeProviderServer,
    anthropic_client: anthropic.Anthropic,
    openai_client: openai.OpenAI,
    fault: str,
    status: int,
    anthropic_error: type[anthropic.APIStatusError],
    openai_error: type[openai.APIStatusError],
    error_type: str,
) -> None:
    fake_provider.add_rule(Rule(fault=fault))

    with pytest.raises(anthropic_error) as claude_caught:
        call_claude(anthropic_client)
    with pytest.raises(openai_error) as gpt_caught:
        call_gpt(openai_client)

    assert claude_caught.value.status_code == gpt_caught.value.status_code == status
    assert claude_caught.value.type == error_type
    assert claude_caught.value.request_id and claude_caught.value.request_id.startswith("req_")
    assert gpt_caught.value.request_id and gpt_caught.value.request_id.startswith("req_")
    assert f"scripted {fault} fault" in str(gpt_caught.value.message)
    assert [call.status for call in fake_provider.calls] == [status, status]


def test_overloaded_is_an_api_status_error_529(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(fault="overloaded"))

    with pytest.raises(anthropic.APIStatusError) as caught:
        call_claude(anthropic_client)

    assert caught.value.status_code == 529


def test_rate_limit_carries_retry_after(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(provider="anthropic", fault="rate_limit", retry_after=7))
    fake_provider.add_rule(Rule(provider="openai", fault="rate_limit", retry_after=0.5))

    with pytest.raises(anthropic.RateLimitError) as claude_caught:
        call_claude(anthropic_client)
    with pytest.raises(openai.RateLimitError) as gpt_caught:
        call_gpt(openai_client)

    assert claude_caught.value.response.headers["retry-after"] == "7"
    assert gpt_caught.value.response.headers["retry-after"] == "0.5"
    assert gpt_caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_fail_once_then_succeed_with_sdk_retries(
    provider: str,
    fake_provider: FakeProviderServer,
    anthropic_client: anthropic.Anthropic,
    openai_client: openai.OpenAI,
) -> None:
    fake_provider.add_rule(Rule(fault="rate_limit", retry_after=0.05, times=1))
    fake_provider.add_rule(Rule(text="second time lucky"))

    if provider == "anthropic":
        text = call_claude(anthropic_client, max_retries=1).content[0].text
    else:
        text = call_gpt(openai_client, max_retries=1).choices[0].message.content

    assert text == "second time lucky"
    assert [call.status for call in fake_provider.calls] == [429, 200]
    assert [call.rule_index for call in fake_provider.calls] == [0, 1]


CALLERS: list[tuple[str, Callable[..., Any]]] = [("anthropic", call_claude), ("openai", call_gpt)]


def _client(name: str, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI) -> Any:
    return anthropic_client if name == "anthropic" else openai_client


@pytest.mark.parametrize(("name", "call"), CALLERS)
def test_hang_times_the_client_out(
    name: str,
    call: Callable[..., Any],
    fake_provider: FakeProviderServer,
    anthropic_client: anthropic.Anthropic,
    openai_client: openai.OpenAI,
) -> None:
    fake_provider.add_rule(Rule(fault="hang", latency=5))
    timeout_error = anthropic.APITimeoutError if name == "anthropic" else openai.APITimeoutError

    started = time.monotonic()
    with pytest.raises(timeout_error):
        call(_client(name, anthropic_client, openai_client), timeout=0.3)

    assert time.monotonic() - started < 3
    assert fake_provider.calls[0].status is None and fake_provider.calls[0].fault == "hang"


@pytest.mark.parametrize(("name", "call"), CALLERS)
@pytest.mark.parametrize("fault", ["reset", "truncated"])
def test_broken_connections_raise_connection_errors(
    name: str,
    call: Callable[..., Any],
    fault: str,
    fake_provider: FakeProviderServer,
    anthropic_client: anthropic.Anthropic,
    openai_client: openai.OpenAI,
) -> None:
    fake_provider.add_rule(Rule(fault=fault))
    connection_error = anthropic.APIConnectionError if name == "anthropic" else openai.APIConnectionError
    timeout_error = anthropic.APITimeoutError if name == "anthropic" else openai.APITimeoutError

    with pytest.raises(connection_error) as caught:
        call(_client(name, anthropic_client, openai_client))

    assert not isinstance(caught.value, timeout_error)
    assert fake_provider.calls[0].fault == fault


@pytest.mark.parametrize(("name", "call"), CALLERS)
def test_malformed_body_fails_json_parsing(
    name: str,
    call: Callable[..., Any],
    fake_provider: FakeProviderServer,
    anthropic_client: anthropic.Anthropic,
    openai_client: openai.OpenAI,
) -> None:
    fake_provider.add_rule(Rule(fault="malformed"))

    with pytest.raises(json.JSONDecodeError):
        call(_client(name, anthropic_client, openai_client))

    assert fake_provider.calls[0].status == 200


def test_fault_then_answer_on_the_responses_api(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(fault="server_error", times=1))

    with pytest.raises(openai.InternalServerError):
        openai_client.responses.create(model=GPT, input="hi")
    assert openai_client.responses.create(model=GPT, input="hi").output_text


def test_stop_wakes_hanging_handlers_quickly() -> None:
    server = FakeProviderServer().start()
    server.add_rule(Rule(fault="hang"))  # would hold the connection for 30 s
    client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
    with pytest.raises(anthropic.APITimeoutError):
        call_claude(client, timeout=0.2)

    started = time.monotonic()
    server.stop()

    assert time.monotonic() - started < 2
