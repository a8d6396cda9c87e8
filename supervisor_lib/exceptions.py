"""The one error tree of Supervisor, split by what the caller should do.

::

    SpecError (ValueError)              a task spec is invalid: fix the file (no Airflow import; spec/errors.py)
    SupervisorError (Exception)         base of every runtime error raised by Supervisor
    ├── RetryableError (AirflowException)   transient: rate limit, overload, 5xx, timeout, reset.
    │                                       Airflow's task retries may help; the SDK error is kept as __cause__.
    └── FatalError (AirflowFailException)   no retry can help; the message says what to fix
        ├── ProviderConfigError             auth (401/403), unknown model (404), bad request (400), bad connection
        ├── BudgetExceededError             the call would push spend over a budget; it was not sent
        ├── NoRouteError                    no model in the catalogue can serve the task (capabilities, context)
        ├── OutputValidationError           the model's structured output never matched the schema
        └── ChangeNotAcceptedError          a coding task's change never passed validation (or its review)

Raising a ``FatalError`` fails the task at once (Airflow skips the remaining retries);
raising a ``RetryableError`` fails this try and lets Airflow retry it.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from supervisor_lib.spec.errors import SpecError, SpecProblem

__all__ = [
    "BudgetExceededError",
    "ChangeNotAcceptedError",
    "FatalError",
    "NoRouteError",
    "OutputValidationError",
    "ProviderConfigError",
    "RetryableError",
    "SpecError",
    "SpecProblem",
    "SupervisorError",
]


class SupervisorError(Exception):
    """Base of every runtime error raised by Supervisor."""


class RetryableError(SupervisorError, AirflowException):
    """A transient failure: this try fails and Airflow's retries may succeed.

    :param retry_after: seconds the provider asked us to wait, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(SupervisorError, AirflowFailException):
    """A failure no retry can help: the task fails at once and the message says what to fix."""


class ProviderConfigError(FatalError):
    """The provider rejected the request for a reason only a person can fix (key, model, request shape)."""


class BudgetExceededError(FatalError):
    """The call would push spend over a budget, so it was not sent."""


class NoRouteError(FatalError):
    """No model in the provider catalogue can serve the task (capabilities, context window, tier, provider)."""


class OutputValidationError(FatalError):
    """The model's structured output did not match the requested JSON schema, even after a corrective retry."""


class ChangeNotAcceptedError(FatalError):
    """A coding task ended ``failed`` or ``rejected``: its change never passed validation (or its reviewer asked
    for changes in the last iteration). Its result was still pushed to XCom and saved as artifacts. A retry would
    replay the same cached answers, so it fails at once."""
