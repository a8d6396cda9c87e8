"""The payload a trigger sends back to the worker when a call failed, and how the worker re-raises it.

The error keeps its class across the boundary, so it has the same retry semantics whether the call ran on a
worker or in the triggerer: a ``NoRouteError`` stays a ``NoRouteError`` (fatal), a ``RetryableError`` stays
retryable, and anything this version does not know arrives as retryable (a newer writer's transient error).
"""

from __future__ import annotations

from typing import Any

import supervisor_lib.exceptions as exceptions


def _classes() -> dict[str, type[exceptions.SupervisorError]]:
    found: dict[str, type[exceptions.SupervisorError]] = {}
    pending: list[type[exceptions.SupervisorError]] = [exceptions.SupervisorError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_event(err: exceptions.SupervisorError) -> dict[str, Any]:
    """A JSON payload describing ``err`` (its message never holds a key: SDK errors were mapped already)."""
    name = type(err).__name__ if type(err).__name__ in _classes() else _nearest(err)
    return {
        "status": "error",
        "error_class": name,
        "message": str(err),
        "retry_after": getattr(err, "retry_after", None),
    }


def raise_from_event(event: dict[str, Any]) -> None:
    """Re-raise a trigger's error on the worker, with the same retry semantics it had in the trigger."""
    cls = _classes().get(str(event.get("error_class")), exceptions.RetryableError)
    if issubclass(cls, exceptions.RetryableError):
        raise cls(str(event.get("message")), retry_after=event.get("retry_after"))
    raise cls(str(event.get("message")))


def _nearest(err: exceptions.SupervisorError) -> str:
    """The closest class the worker knows, for an error class defined outside :mod:`supervisor_lib.exceptions`."""
    known = _classes()
    return next(cls.__name__ for cls in type(err).__mro__ if cls.__name__ in known)
