"""Anthropic Message Batches and OpenAI Files + Batches, end to end through the real SDKs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anthropic
import openai
import pytest

from supervisor_lib.testing import FakeProviderServer, Rule

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-5.5"
T = TypeVar("T")


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Poll ``read`` until ``done`` holds, as a batch client would."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def claude_request(custom_id: str, prompt: str) -> Any:
    params = {"model": CLAUDE, "max_tokens": 32, "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "params": params}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def chat_line(custom_id: str, prompt: str) -> dict[str, Any]:
    body = {"model": GPT, "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


# ---------------------------------------------------------------- Anthropic


def test_anthropic_batch_with_partial_failure(
    fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic
) -> None:
    fake_provider.batch_delay = 0.1
    fake_provider.add_rule(Rule(match="poison", fault="overloaded"))
    fake_provider.add_rule(Rule(match="summarise", text="a summary"))
    batches = anthropic_client.messages.batches

    created = batches.create(
        requests=[claude_request("a", "summarise A"), claude_request("b", "poison B"), claude_request("c", "hi C")]
    )
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3 and created.results_url is None

    ended = wait_for(lambda: batches.retrieve(created.id), lambda b: b.processing_status == "ended")
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (2, 1)
    results = {item.custom_id: item.result for item in batches.results(created.id)}

    assert results["a"].type == "succeeded"
    assert results["a"].message.content[0].text == "a summary"  # type: ignore[union-attr]
    assert results["a"].message.usage.service_tier == "batch"
    assert results["c"].type == "succeeded"
    assert results["b"].type == "errored"
    assert results["b"].error.error.type == "overloaded_error"
    assert created.id in [batch.id for batch in batches.list()]


def test_anthropic_batch_cancel(fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic) -> None:
    fake_provider.batch_delay = 30
    batches = anthropic_client.messages.batches
    created = batches.create(requests=[claude_request("a", "one"), claude_request("b", "two")])

    canceling = batches.cancel(created.id)
    ended = batches.retrieve(created.id)

    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert {item.result.type for item in batches.results(created.id)} == {"canceled"}


def test_anthropic_batch_errors(fake_provider: FakeProviderServer, anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.batches.retrieve("msgbatch_missing")
    with pytest.raises(anthropic.BadRequestError, match="unique custom_id"):
        anthropic_client.messages.batches.create(requests=[claude_request("a", "x"), claude_request("a", "y")])


# ---------------------------------------------------------------- OpenAI


def test_openai_batch_with_partial_failure(fake_provider: FakeProviderServer, openai_client: openai.OpenAI) -> None:
    fake_provider.batch_delay = 0.1
    fake_provider.add_rule(Rule(match="poison", fault="rate_limit"))
    fake_provider.add_rule(Rule(match="grade", json={"score": 3}))
    lines = [chat_line("a", "grade A"), chat_line("b", "poison B"), chat_line("c", "hello C")]
    uploaded = openai_client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.filename == "input.jsonl" and uploaded.bytes > 0

    created = openai_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert created.status == "in_progress" and created.output_file_id is None

    done = wait_for(lambda: openai_client.batches.retrieve(created.id), lambda b: b.status == "completed")
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    assert done.output_file_id and done.error_file_id
    outputs = [json.loads(line) for line in openai_client.files.content(done.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in openai_client.files.content(done.error_file_id).text.splitlines()]

    by_id = {line["custom_id"]: line["response"] for line in outputs}
    assert set(by_id) == {"a", "c"}
    assert by_id["a"]["status_code"] == 200
    assert json.loads(by_id["a"]["body"]["choices"][0]["message"]["content"]) == {"score": 3}
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("b", 429)]
    assert errors[0]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"


def test_openai_batch_on_the_responses_endpoint(
    fake_provider: FakeProviderServer, openai_client: openai.OpenAI
) -> None:
    fake_provider.batch_delay = 0.0
    line = {"custom_id": "r1", "method": "POST", "url": "/v1/responses", "body": {"model": GPT, "input": "hi"}}
    uploaded = openai_client.files.create(file=("in.jsonl", jsonl([line])), purpose="batch")

    created = openai_client.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    done = openai_client.batches.retrieve(created.id)

    assert done.status == "completed" and done.error_file_id is None and done.output_file_id
    output = json.loads(openai_client.files.content(done.output_file_id).text)
    assert output["response"]["body"]["object"] == "response"


def test_openai_batch_cancel(fake_provider: FakeProviderServer, openai_client: openai.OpenAI) -> None:
    fake_provider.batch_delay = 30
    uploaded = openai_client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    created = openai_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    cancelling = openai_client.batches.cancel(created.id)
    cancelled = openai_client.batches.retrieve(created.id)

    assert cancelling.status == "cancelling"
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.output_file_id is None
    with pytest.raises(openai.BadRequestError, match="Cannot cancel"):
        openai_client.batches.cancel(created.id)


def test_openai_batch_with_a_bad_line_fails(fake_provider: FakeProviderServer, openai_client: openai.OpenAI) -> None:
    data = jsonl([chat_line("a", "x")]) + b"{not json\n"
    uploaded = openai_client.files.create(file=("in.jsonl", data), purpose="batch")

    created = openai_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    assert created.status == "failed"
    assert created.errors is not None and created.errors.data
    assert created.errors.data[0].line == 2


def test_openai_batch_needs_an_uploaded_file(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="not an uploaded file"):
        openai_client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        openai_client.files.content("file-nope")
