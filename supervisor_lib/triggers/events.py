"""The payload a trigger sends back to the worker when a call failed, and how the worker re-raises it."""

from __future__ import annotations

from typing import Any

from supervisor_lib import exceptions

_CLASSES: dict[str, type[exceptions.SupervisorError]] = {
    cls.__name__: cls
    for cls in (
        exceptions.RetryableError,
        exceptions.FatalError,
        exceptions.ProviderConfigError,
        exceptions.BudgetExceededError,
        exceptions.OutputValidationError,
    )
}


def error_event(err: Exception) -> dict[str, Any]:
    """A JSON payload describing ``err`` (its message never holds a key: SDK errors were mapped already)."""
    name = type(err).__name__ if type(err).__name__ in _CLASSES else "ProviderConfigError"
    if isinstance(err, exceptions.RetryableError):
        name = "RetryableError"
    return {
        "status": "error",
        "error_class": name,
        "message": str(err),
        "retry_after": getattr(err, "retry_after", None),
    }


def raise_from_event(event: dict[str, Any]) -> None:
    """Re-raise a trigger's error on the worker, with the same retry semantics it had in the trigger."""
    cls = _CLASSES.get(str(event.get("error_class")), exceptions.RetryableError)
    if cls is exceptions.RetryableError:
        raise exceptions.RetryableError(str(event.get("message")), retry_after=event.get("retry_after"))
    raise cls(str(event.get("message")))
