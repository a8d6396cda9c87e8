"""The spec's ``human_approval`` task: Airflow's own HITL operators, plus the spec's ``when``.

After coding tasks, an approval without a ``body`` of its own shows their results (status, review, validation,
diff) and records the decision next to their artifacts (see :mod:`supervisor_lib.coding.approval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

from supervisor_lib.operators.flow import skip_unless


class _ShowsResults(HITLOperator):
    """Shared by both spec approval operators: the ``when`` check and the body built from coding results.

    :param when: a templated condition; when it renders false nobody is asked and the task is skipped.
    :param results_from: ids of upstream coding tasks; when the body is empty it shows their results, and the
        decision is recorded as ``approval.json`` in their artifact folders.
    """

    def __init__(self, *, when: Any = None, results_from: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.when, self.results_from = when, list(results_from)

    def execute(self, context: Any) -> Any:
        skip_unless(self.when)
        if self.results_from and not (self.body or "").strip():
            from supervisor_lib.coding.approval import approval_body, upstream_results

            self.body = approval_body(list(upstream_results(context["ti"], self.results_from)))
        return super().execute(context)

    def record(self, context: Any, chosen: Sequence[str], by: Any, *, approved: bool | None) -> None:
        """Write the decision next to the coding tasks' artifacts."""
        if not self.results_from:
            return
        from supervisor_lib.coding.approval import record_approval, upstream_results

        results = list(upstream_results(context["ti"], self.results_from))
        for location in record_approval(results, approved=approved, chosen=chosen, by=by):
            self.log.info("decision recorded in %s", location)


class SpecApprovalOperator(_ShowsResults, ApprovalOperator):
    """Approve / Reject; a rejection skips what follows. The XCom result adds ``approved`` (true or false)."""

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "when")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context, event)
        approved = result["chosen_options"] == [self.APPROVE]
        self.record(context, result["chosen_options"], result.get("responded_by_user"), approved=approved)
        return {**result, "approved": approved}


class SpecChoiceOperator(_ShowsResults):
    """A human choice among the spec's own options; the chosen options are the task's XCom result."""

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "when")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context, event)
        self.record(context, result["chosen_options"], result.get("responded_by_user"), approved=None)
        return result
