"""The fake provider as a process and under load: the CLI, 200 concurrent slow requests, the pytest fixture."""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from supervisor_lib.testing import FakeProviderServer, Rule

ROOT = Path(__file__).resolve().parents[3]


def _post_json(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_two_hundred_concurrent_slow_requests(fake_provider: FakeProviderServer) -> None:
    fake_provider.add_rule(Rule(text="done", latency=0.5))
    body: dict[str, object] = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    url = fake_provider.openai_base_url + "/chat/completions"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(lambda _: _post_json(url, body), range(200)))
    elapsed = time.monotonic() - started

    assert all(answer["choices"][0]["message"]["content"] == "done" for answer in answers)  # type: ignore[index]
    assert elapsed < 8, f"200 requests of 0.5 s took {elapsed:.1f} s"
    assert fake_provider.count(path="/v1/chat/completions") == 200


def test_unknown_paths_get_a_404(fake_provider: FakeProviderServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(fake_provider.url + "/nowhere", timeout=5)

    assert caught.value.code == 404


def test_invalid_json_body_is_a_bad_request(fake_provider: FakeProviderServer) -> None:
    request = urllib.request.Request(
        fake_provider.url + "/v1/messages", data=b"{oops", headers={"content-type": "application/json"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)

    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["type"] == "invalid_request_error"


def test_cli_serves_a_script_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "rules.yaml"
    script.write_text("- match: ping\n  text: pong from the script\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "supervisor_lib.testing.fake_provider", "--port", "0", "--script", str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the CLI printed no URL line"
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        client = openai.OpenAI(api_key="k", base_url=url.group(0) + "/v1", max_retries=0, timeout=5)
        completion = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "ping"}])
        assert completion.choices[0].message.content == "pong from the script"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Warning" not in stderr, stderr
