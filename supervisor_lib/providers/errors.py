"""Map SDK exceptions to Supervisor's error tree, split by what the caller should do.

Both SDKs are generated from the same template, so they share the shape used here: ``APIStatusError`` with
``status_code`` and ``response``, ``APITimeoutError`` and ``APIConnectionError``. Classification is by
status code and class *name*, so this module imports neither SDK.
"""

from __future__ import annotations

import contextlib
import json

from supervisor_lib.exceptions import ProviderConfigError, RetryableError, SupervisorError
from supervisor_lib.providers.scrub import scrub

#: HTTP statuses that a later try may get past. 529 is Anthropic's "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

_FIXES = {
    400: "the request was rejected as malformed: check the prompt, max_tokens and output_schema",
    401: "the API key was rejected: set the connection's password to a valid key",
    402: "the account has no credit left: check billing with the provider",
    403: "the API key may not use this model or endpoint: check the key's permissions",
    404: "the model or endpoint does not exist: check the model name and the connection's base URL",
    413: "the request is too large: send less context",
    422: "the request was rejected as invalid: check the parameters",
}


def retry_after_seconds(exc: BaseException) -> float | None:
    """The provider's ``retry-after`` header (seconds), when the error carries one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def map_sdk_error(exc: BaseException, provider: str, model: str) -> SupervisorError:
    """Translate an SDK exception into a :class:`RetryableError` or a fatal :class:`ProviderConfigError`.

    The caller raises the result ``from exc`` so the SDK error stays available as ``__cause__``. The message never
    includes request headers, and a key the provider echoes in its error body is scrubbed (:mod:`.scrub`).
    """
    error = _map(exc, provider, model)
    error.args = (scrub(str(error)),)
    scrub_exception(exc)
    return error


def scrub_exception(exc: BaseException) -> None:
    """Scrub keys from an SDK exception in place: it stays the mapped error's ``__cause__``, and a traceback
    (Airflow logs a failed task's) prints its message, which quotes the provider's error body."""
    exc.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in exc.args)
    if isinstance(getattr(exc, "message", None), str):
        exc.message = scrub(exc.message)  # type: ignore[attr-defined]
    body = getattr(exc, "body", None)
    if body is not None:
        with contextlib.suppress(TypeError, ValueError, AttributeError):  # not JSON: it is not printed
            exc.body = json.loads(scrub(json.dumps(body)))  # type: ignore[attr-defined]


def _map(exc: BaseException, provider: str, model: str) -> SupervisorError:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    where = f"{provider} model {model!r}"
    if isinstance(status, int):
        detail = _error_detail(exc)
        if status in RETRYABLE_STATUSES or status >= 500:
            return RetryableError(
                f"{where}: HTTP {status} ({detail}); retrying may help", retry_after=retry_after_seconds(exc)
            )
        fix = _FIXES.get(status, "the provider refused the request")
        return ProviderConfigError(f"{where}: HTTP {status} ({detail}): {fix}")
    if name in ("APITimeoutError", "APIConnectionError", "TimeoutError", "ConnectionError"):
        return RetryableError(f"{where}: {'timed out' if 'Timeout' in name else 'connection failed'} ({name})")
    if name == "APIResponseValidationError" or isinstance(exc, ValueError):
        return RetryableError(f"{where}: the provider sent a response that could not be parsed ({name})")
    if isinstance(exc, TypeError | AttributeError | KeyError | IndexError):  # a 200 of the wrong shape
        return RetryableError(f"{where}: the provider's answer does not have the shape of an answer ({name}); "
                              "a gateway or proxy in between may have changed it; retrying may help")  # fmt: skip
    return RetryableError(f"{where}: unexpected {name}: {exc}")


def _error_detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return f"{err.get('type', 'error')}: {str(err['message'])[:300]}"
    return type(exc).__name__
