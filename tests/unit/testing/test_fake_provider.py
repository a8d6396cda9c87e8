"""The fake provider answers the real Anthropic and OpenAI SDKs over HTTP: answers, rules, usage and the call log."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from supervisor_lib.testing import DEFAULT_TEXT, FakeProviderServer, Rule, load_rules
from tests.unit.testing.conftest import API_KEY

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-5.5"


class Verdict(BaseModel):
    """A structured answer the SDKs parse."""

    verdict: str
    score: int


def ask_claude(client: anthropic.Anthropic, prompt: str, **kwargs: Any) -> anthropic.types.Message:
    return client.messages.create(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": prompt}], **kwargs)


def ask_gpt(client: openai.OpenAI, prompt: str) -> str | None:
    completion = client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": prompt}])
    return completion.choices[0].message.content


# ---------------------------------------------------------------- plain answers


def test_anthropic_plain_answer_has_text_usage_and_request_id(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(text="y" * 20))
    first = ask_claude(anthropic_client, "x" * 40)
    second = ask_claude(anthropic_client, "x" * 40)

    assert first.content[0].type == "text"
    assert first.content[0].text == "y" * 20
    assert first.model == CLAUDE
    assert first.stop_reason == "end_turn"
    assert (first.usage.input_tokens, first.usage.output_tokens) == (10, 5)
    assert first._request_id and first._request_id.startswith("req_")
    assert first.id != second.id
    assert first._request_id != second._request_id


def test_openai_chat_and_responses_answers(fake_provider: FakeProviderServer, openai_client: openai.OpenAI) -> None:
    fake_provider.add_rule(Rule(provider="openai", text="z" * 8))
    completion = openai_client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "q" * 40}])
    response = openai_client.responses.create(model=GPT, input="q" * 40, instructions="be brief")

    assert completion.choices[0].message.content == "z" * 8
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 2)
    assert completion._request_id and completion._request_id.startswith("req_")
    assert response.output_text == "z" * 8
    assert response.usage is not None and response.usage.output_tokens == 2
    assert response._request_id and response._request_id != completion._request_id


def test_unmatched_request_gets_the_offline_demo_answer(
    anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    message = ask_claude(anthropic_client, "anything")

    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT
    assert "offline demo provider" in DEFAULT_TEXT
    assert ask_gpt(openai_client, "anything") == DEFAULT_TEXT


def test_raw_response_headers_carry_provider_request_ids(
    anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    raw_claude = anthropic_client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    raw_gpt = openai_client.chat.completions.with_raw_response.create(
        model=GPT, messages=[{"role": "user", "content": "hi"}]
    )

    assert raw_claude.headers["request-id"].startswith("req_")
    assert raw_gpt.headers["x-request-id"].startswith("req_")


def test_models_lists(anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI) -> None:
    claude_models = [model.id for model in anthropic_client.models.list()]
    gpt_models = [model.id for model in openai_client.models.list()]

    assert CLAUDE in claude_models
    assert GPT in gpt_models
    assert anthropic_client.models.retrieve(CLAUDE).display_name.startswith("Claude")


def test_streaming_is_refused(anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI) -> None:
    with pytest.raises(anthropic.BadRequestError, match="streaming is not scripted"):
        ask_claude(anthropic_client, "hi", stream=True)
    with pytest.raises(openai.BadRequestError, match="streaming is not scripted"):
        openai_client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}], stream=True)


# ---------------------------------------------------------------- rules


def test_rules_match_substring_regex_and_provider(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rules(
        [
            Rule(provider="openai", match="weather", text="gpt weather"),
            Rule(match="weather", text="any weather"),
            Rule(match=re.compile(r"ticket-\d+"), text="ticket answer"),
        ]
    )

    assert ask_gpt(openai_client, "what weather today?") == "gpt weather"
    assert ask_claude(anthropic_client, "what weather today?").content[0].text == "any weather"  # type: ignore[union-attr]
    assert ask_gpt(openai_client, "fix ticket-42 please") == "ticket answer"
    assert ask_gpt(openai_client, "fix ticket-x please") == DEFAULT_TEXT


def test_rules_can_answer_one_model_only(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rules([Rule(model="claude-sonnet-4-6", match="fix", text="sonnet fix"),
                             Rule(match="fix", text="any model's fix")])  # fmt: skip

    sonnet = anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
                                              messages=[{"role": "user", "content": "fix it"}])  # fmt: skip

    assert sonnet.content[0].text == "sonnet fix"  # type: ignore[union-attr]
    assert ask_claude(anthropic_client, "fix it").content[0].text == "any model's fix"  # type: ignore[union-attr]
    assert Rule.from_dict({"model": "gpt-5", "text": "x"}).matches("openai", "", "gpt-5")


def test_rules_see_system_prompt_and_instructions(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(match="You are a reviewer", text="reviewed"))

    message = ask_claude(anthropic_client, "hi", system=[{"type": "text", "text": "You are a reviewer."}])
    response = openai_client.responses.create(model=GPT, input="hi", instructions="You are a reviewer.")

    assert message.content[0].text == "reviewed"  # type: ignore[union-attr]
    assert response.output_text == "reviewed"


def test_times_consumes_a_rule_then_falls_through(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(match="step", text="first", times=2))
    fake_provider.add_rule(Rule(match="step", text="later"))

    answers = [ask_gpt(openai_client, "step") for _ in range(4)]

    assert answers == ["first", "first", "later", "later"]
    assert [call.rule_index for call in fake_provider.calls] == [0, 0, 1, 1]


def test_usage_override(fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic) -> None:
    fake_provider.add_rule(Rule(text="ok", usage={"input_tokens": 1234, "output_tokens": 56}))

    usage = ask_claude(anthropic_client, "hi").usage

    assert (usage.input_tokens, usage.output_tokens) == (1234, 56)


def test_reset_forgets_rules_and_calls(fake_provider: FakeProviderServer, openai_client: openai.OpenAI) -> None:
    fake_provider.add_rule(Rule(text="scripted"))
    assert ask_gpt(openai_client, "hi") == "scripted"

    fake_provider.reset()

    assert fake_provider.rules == [] and fake_provider.calls == []
    assert ask_gpt(openai_client, "hi") == DEFAULT_TEXT


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Rule(fault="explode")
    with pytest.raises(ValueError, match="provider"):
        Rule(provider="gemini")
    with pytest.raises(ValueError, match="times"):
        Rule(times=0)
    with pytest.raises(ValueError, match="unknown rule keys"):
        Rule.from_dict({"answer": "x"})


# ---------------------------------------------------------------- structured output


def test_anthropic_structured_output_via_output_config(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(json={"verdict": "pass", "score": 9}))

    parsed = anthropic_client.messages.parse(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "grade it"}], output_format=Verdict
    )

    assert parsed.parsed_output == Verdict(verdict="pass", score=9)
    sent = fake_provider.calls[-1].body
    assert sent["output_config"]["format"]["type"] == "json_schema"


def test_anthropic_structured_output_via_forced_tool(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(json={"verdict": "fail", "score": 2}))
    tool = {"name": "record_verdict", "description": "Record it.", "input_schema": Verdict.model_json_schema()}

    message = ask_claude(
        anthropic_client, "grade it", tools=[tool], tool_choice={"type": "tool", "name": "record_verdict"}
    )

    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "record_verdict"
    assert Verdict.model_validate(block.input) == Verdict(verdict="fail", score=2)


def test_json_rule_without_a_format_answers_json_text(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(json=[1, 2, 3]))

    block = ask_claude(anthropic_client, "list").content[0]

    assert block.type == "text" and json.loads(block.text) == [1, 2, 3]


def test_rule_with_text_and_json_answers_each_kind_of_request(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.add_rule(Rule(text="plain words", json={"verdict": "pass", "score": 5}))

    plain = ask_claude(anthropic_client, "grade it").content[0]
    parsed = anthropic_client.messages.parse(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "grade it"}], output_format=Verdict
    )

    assert plain.type == "text" and plain.text == "plain words"
    assert parsed.parsed_output == Verdict(verdict="pass", score=5)


def test_openai_structured_output_chat_and_responses(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(json={"verdict": "pass", "score": 7}))
    messages: list[Any] = [{"role": "user", "content": "grade it"}]

    chat = openai_client.chat.completions.parse(model=GPT, messages=messages, response_format=Verdict)
    response = openai_client.responses.parse(model=GPT, input="grade it", text_format=Verdict)

    assert chat.choices[0].message.parsed == Verdict(verdict="pass", score=7)
    assert response.output_parsed == Verdict(verdict="pass", score=7)
    assert json.loads(response.output_text) == {"verdict": "pass", "score": 7}
    bodies = [call.body for call in fake_provider.calls]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[1]["text"]["format"]["type"] == "json_schema"


def test_openai_structured_output_via_function_tool(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(json={"verdict": "pass", "score": 1}))
    tool: Any = {"type": "function", "function": {"name": "record", "parameters": Verdict.model_json_schema()}}

    completion = openai_client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "grade"}], tools=[tool], tool_choice="required"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "record"
    assert json.loads(call.function.arguments) == {"verdict": "pass", "score": 1}


# ---------------------------------------------------------------- tokens and prompt caching


def test_count_tokens(anthropic_client: anthropic.Anthropic) -> None:
    counted = anthropic_client.messages.count_tokens(
        model=CLAUDE, system="s" * 39, messages=[{"role": "user", "content": "m" * 40}]
    )

    assert counted.input_tokens == (39 + 1 + 40) // 4


def test_anthropic_prompt_cache_write_then_read(anthropic_client: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": "policy " * 200, "cache_control": {"type": "ephemeral"}}]

    first = ask_claude(anthropic_client, "question one", system=system).usage
    second = ask_claude(anthropic_client, "question two", system=system).usage
    other_system: Any = [{"type": "text", "text": "other " * 200, "cache_control": {"type": "ephemeral"}}]
    third = ask_claude(anthropic_client, "question three", system=other_system).usage
    uncached = ask_claude(anthropic_client, "question four").usage

    assert first.cache_creation_input_tokens == len("policy " * 200) // 4
    assert first.cache_read_input_tokens == 0
    assert second.cache_creation_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.input_tokens == len("question two") // 4
    assert third.cache_creation_input_tokens and not third.cache_read_input_tokens
    assert (uncached.cache_creation_input_tokens, uncached.cache_read_input_tokens) == (0, 0)


# ---------------------------------------------------------------- call log, strict mode, scripts


def test_call_log_redacts_keys_and_counts(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    keyed = anthropic_client.with_options(default_headers={"x-api-key": API_KEY})
    ask_claude(keyed, "hi")
    ask_gpt(openai_client, "hi")
    openai_client.models.list()

    calls = fake_provider.calls
    assert [(c.provider, c.method, c.path) for c in calls] == [
        ("anthropic", "POST", "/v1/messages"),
        ("openai", "POST", "/v1/chat/completions"),
        ("openai", "GET", "/v1/models"),
    ]
    assert all(call.had_api_key for call in calls)
    assert calls[0].headers["authorization"] == calls[0].headers["x-api-key"] == "<redacted>"
    assert calls[1].headers["authorization"] == "<redacted>"
    assert API_KEY not in repr(calls)
    assert not hasattr(fake_provider, "received_api_keys")
    assert calls[0].model == CLAUDE and calls[0].status == 200 and calls[0].body["messages"][0]["content"] == "hi"
    assert calls[0].rule_index is None and calls[0].timestamp <= calls[1].timestamp
    assert fake_provider.count() == 3
    assert fake_provider.count(provider="openai") == 2
    assert fake_provider.count(path="/v1/messages") == 1
    assert fake_provider.count(provider="anthropic", path="/v1/models") == 0


def test_strict_mode_rejects_unmatched_requests(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    fake_provider.strict = True
    fake_provider.add_rule(Rule(match="known", text="scripted"))

    assert ask_gpt(openai_client, "a known prompt") == "scripted"
    with pytest.raises(anthropic.InternalServerError, match="no scripted rule matched") as caught:
        ask_claude(anthropic_client, "a surprise prompt")
    with pytest.raises(openai.InternalServerError, match="no scripted rule matched"):
        ask_gpt(openai_client, "another surprise")

    assert "a surprise prompt" in str(caught.value)
    assert fake_provider.calls[-1].status == 500


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_script_file_loading(
    tmp_path: Path, suffix: str, fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    rules = [
        {"match": "flaky", "fault": "server_error", "times": 1},
        {"match_regex": "fla+ky", "text": "recovered"},
        {"provider": "openai", "json": {"ok": True}},
    ]
    script = tmp_path / f"rules{suffix}"
    if suffix == ".yaml":
        import yaml

        script.write_text(yaml.safe_dump({"rules": rules}))
    else:
        script.write_text(json.dumps(rules))

    assert fake_provider.load_script(script) == [0, 1, 2]
    loaded = load_rules(script)
    assert isinstance(loaded[1].match, re.Pattern)
    with pytest.raises(openai.InternalServerError):
        ask_gpt(openai_client, "flaky")
    assert ask_gpt(openai_client, "flaaaky") == "recovered"
    assert json.loads(ask_gpt(openai_client, "other") or "") == {"ok": True}


def test_script_file_must_hold_rules(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps({"rules": "nope"}))

    with pytest.raises(ValueError, match="list of rule mappings"):
        load_rules(script)


# ---------------------------------------------------------------- concurrency and lifecycle


def test_fifty_concurrent_slow_requests_run_in_parallel(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.add_rule(Rule(text="slow", latency=0.3))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda n: ask_gpt(openai_client, f"request {n}"), range(50)))
    elapsed = time.monotonic() - started

    assert answers == ["slow"] * 50
    assert elapsed < 5.0, f"50 requests of 0.3 s took {elapsed:.1f} s: they did not overlap"
    assert fake_provider.count() == 50


def test_server_default_latency_applies_to_unscripted_answers(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.latency = 0.2

    started = time.monotonic()
    ask_gpt(openai_client, "hi")

    assert time.monotonic() - started >= 0.2


def test_server_restarts_and_reports_urls() -> None:
    server = FakeProviderServer(latency=0.0)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
    with server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert server.openai_base_url == server.url + "/v1"
        assert server.anthropic_base_url == server.url
    server.stop()  # stopping twice is harmless
