"""The spec's ``human_approval`` task: Airflow's own HITL operators, plus the spec's ``when``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

from supervisor_lib.operators.flow import skip_unless


class SpecApprovalOperator(ApprovalOperator):
    """Approve / Reject; a rejection skips what follows.

    :param when: a templated condition; when it renders false nobody is asked and the task is skipped.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "when")

    def __init__(self, *, when: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.when = when

    def execute(self, context: Any) -> Any:
        skip_unless(self.when)
        return super().execute(context)


class SpecChoiceOperator(HITLOperator):
    """A human choice among the spec's own options; the chosen options are the task's XCom result.

    :param when: a templated condition; when it renders false nobody is asked and the task is skipped.
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "when")

    def __init__(self, *, when: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.when = when

    def execute(self, context: Any) -> Any:
        skip_unless(self.when)
        return super().execute(context)
