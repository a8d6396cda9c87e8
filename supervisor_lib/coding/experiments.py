"""A supervised task's outcome as one experiment arm's run: the ``experiment_runs`` row the operators record when a
task that runs an experiment ends (``docs/experiments.md``). Recording never fails the task."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor_lib.store.db import DEFAULT_CONN_ID, get_store
from supervisor_lib.store.experiments import ArmOutcome, record_outcome

if TYPE_CHECKING:
    from supervisor_lib.coding.jobs import Log
    from supervisor_lib.execution.runner import CallScope

__all__ = ["ACCEPTED", "ArmRun", "passed"]

#: the statuses of an accepted change: the validation passed and, with a reviewer, the review approved it
#: (a report task's result is ``passed`` once its report is valid)
ACCEPTED = frozenset({"passed", "no_changes"})


def passed(result: Mapping[str, Any] | None) -> bool:
    """Whether a result counts as a pass for the experiment (``None``: the task raised)."""
    return result is not None and result.get("status") in ACCEPTED


@dataclass(frozen=True)
class ArmRun:
    """One task instance running one arm of ``experiment``: runs the job, times it and records its outcome.

    :param arm: the arm as the builder maps it: ``{"name", "index", "settings"}``.
    :param model: ``provider model`` of the author, read when the job is done (a routed task's last answer).
    """

    experiment: str
    arm: Mapping[str, Any]
    scope: CallScope
    model: Callable[[], str]
    conn_id: str | None
    log: Log

    def run(self, job: Callable[[], dict[str, Any]], not_outcomes: tuple[type[BaseException], ...] = ()) -> dict:
        """``job()``'s result, recorded; an exception is recorded as an ``error`` run (unless one of
        ``not_outcomes``: a skip is no run) and raised again."""
        started = time.monotonic()
        try:
            result = job()
        except not_outcomes:
            raise
        except Exception as err:
            self.record(None, time.monotonic() - started, type(err).__name__)
            raise
        self.record(result, time.monotonic() - started)
        return result

    def record(self, result: Mapping[str, Any] | None, wall_s: float, error: str | None = None) -> None:
        """Store the outcome; a store that is down only costs a warning."""
        try:
            outcome = self.outcome(result, wall_s, error)
            record_outcome(get_store(self.conn_id or DEFAULT_CONN_ID), outcome)
        except Exception as err:  # the task's own outcome matters more than its experiment row
            self.log.warning("experiment %s: could not record arm %s: %s", self.experiment, self.arm.get("name"), err)
            return
        self.log.info("experiment %s, arm %s: %s (%s)", self.experiment, outcome.arm, outcome.status,
                      "passed" if outcome.passed else "not passed")  # fmt: skip

    def outcome(self, result: Mapping[str, Any] | None, wall_s: float, error: str | None = None) -> ArmOutcome:
        """The row of this run."""
        provider, _, model = self.model().partition(" ")
        usage = (result or {}).get("usage") or {}
        review = (result or {}).get("review") or {}
        scope = self.scope
        return ArmOutcome(
            experiment=self.experiment, arm=str(self.arm["name"]), arm_index=int(self.arm.get("index", 0)),
            dag_id=scope.dag_id, run_id=scope.run_id, task_id=scope.task_id, map_index=scope.map_index,
            try_number=scope.try_number, task_type=scope.task_type, provider=provider, model=model or None,
            status=str(result["status"]) if result is not None else f"error: {error}"[:200],
            passed=passed(result), review=review.get("decision"),
            iterations=len((result or {}).get("iterations") or []),
            tokens=sum(v for k, v in usage.items() if k.endswith("_tokens")),
            cost_usd=float(result["cost_usd"]) if result is not None and result.get("cost_usd") is not None else None,
            duration_s=round(wall_s, 3),
        )  # fmt: skip
