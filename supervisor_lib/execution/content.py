"""What an attempt's record keeps beyond its numbers: the transcript (what was asked and answered) and savings.

Content recording is on by default and off with ``SUPERVISOR_RECORD_CONTENT=off``. Before anything is kept, every
secret Airflow's masker knows (connection passwords, sensitive Variables, masked values) and every provider key is
replaced by ``***`` (:func:`supervisor_lib.providers.scrub.scrub`), and long texts are cut.
"""

from __future__ import annotations

import os
from typing import Any

from supervisor_lib.model_facts import load_prices
from supervisor_lib.providers.scrub import scrub
from supervisor_lib.providers.types import LLMRequest, LLMResponse, Usage

#: the longest text kept per field of a transcript
MAX_TEXT = 100_000
CONTENT_ENV = "SUPERVISOR_RECORD_CONTENT"


def recording_content() -> bool:
    """Whether prompts and answers are kept (``SUPERVISOR_RECORD_CONTENT``: on by default)."""
    return os.environ.get(CONTENT_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def transcript(
    request: LLMRequest, response: LLMResponse | None, error: Exception | None, rejected: str | None
) -> dict[str, Any] | None:
    """The attempt's transcript, masked; ``None`` when content is not recorded."""
    if not recording_content():
        return None
    content: dict[str, Any] = {
        "request": {
            "model": request.model, "system": request.system, "messages": list(request.messages),
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "output_schema": request.output_schema,
        },
    }  # fmt: skip
    if response is not None:
        content["response"] = {"text": response.text, "output": response.output, "stop_reason": response.stop_reason,
                               "request_id": response.request_id}  # fmt: skip
    if error is not None:
        content["error"] = str(error)
    if rejected:
        content["rejected"] = rejected
    return masked(content)


def masked(value: Any) -> Any:
    """``value`` with every known secret replaced by ``***`` and strings cut at :data:`MAX_TEXT`."""
    return _walk(redacted(value), MAX_TEXT)


def redacted(value: Any) -> Any:
    """``value`` with every secret Airflow's masker knows and every provider key replaced by ``***`` (nothing cut:
    for files such as a patch)."""
    try:
        from airflow.sdk.log import redact

        value = redact(value)
    except Exception:  # outside a task (tools, tests) Airflow's masker may not be set up: our own scrub still runs
        pass
    return _walk(value, None)


def _walk(value: Any, limit: int | None) -> Any:
    if isinstance(value, str):
        text = scrub(value)
        if limit is None or len(text) <= limit:
            return text
        return text[:limit] + f"\n[... {len(text) - limit} characters cut]"
    if isinstance(value, dict):
        return {key: _walk(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, limit) for item in value]
    return value


def prompt_cache_saving(model: str, usage: Usage) -> float | None:
    """What the provider's prompt cache saved on this answer: cached input tokens at the input price, less what
    they cost as cache reads; ``None`` when the model's price is unknown."""
    price = load_prices().models.get(model)
    if price is None or not usage.cache_read_tokens:
        return None if price is None else 0.0
    return round(usage.cache_read_tokens * (price.input - price.cache_read) / 1_000_000, 8)
