"""The operators of the ``supervisor_task`` DAG (:mod:`supervisor_lib.build.rest_task`): the coding operators, with
their settings taken from the run's request when they run instead of from a spec when the DAG is parsed.

The request is the ``request`` task's result: the run's ``params`` (validated by Airflow when the run was
triggered) with the repository checked against :class:`~supervisor_lib.coding.repo_policy.RepoPolicy`. Each operator
checks the repository again on its own worker (on Celery it may not be the worker that ran ``request``). The request's
text (instructions, issue) is never rendered as a template: a ``{{ ... }}`` in it stays text.
"""

from __future__ import annotations

from typing import Any

from supervisor_lib.operators.coding import CodingTaskOperator, ReportOperator

__all__ = ["REQUEST_TASK", "RequestedChangeOperator", "RequestedReportOperator", "checked_repo"]

REQUEST_TASK = "request"


def checked_repo(repo: str, dag_file: str | None) -> str:
    """``repo`` resolved and allowed by the settings, or :class:`~airflow.sdk.exceptions.AirflowFailException`
    naming the setting to change (a refused repository is not retried)."""
    from airflow.sdk.exceptions import AirflowFailException

    from supervisor_lib.coding.repo_policy import RepoPolicy, RepoRefused
    from supervisor_lib.coding.settings import find_project_root

    root = find_project_root(dag_file)
    try:
        return RepoPolicy.from_env(root).check(repo, root)
    except RepoRefused as err:
        raise AirflowFailException(str(err)) from None


class _FromRequest:
    """Take the task's settings from the request when it runs; skip when the request's task type is the other
    operator's (``kind``: ``change`` or ``report``)."""

    kind: str

    def from_request(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        request: dict[str, Any] = context["ti"].xcom_pull(task_ids=REQUEST_TASK)
        if request["kind"] != self.kind:
            raise AirflowSkipException(f"skipped: {request['task_type']} runs in the {request['kind']} task")
        op: Any = self
        op.task_kind, op.instructions, op.ref = request["task_type"], request["instructions"], request["ref"]
        op.repo = checked_repo(request["repo"], op.spec_file)
        op.paths = request["paths"]
        op.provider, op.model = request["provider"], request["model"]
        op.route = {"capabilities": (), "tier": None, "budget": None, "team": None} if op.provider == "auto" else None
        op.budget_usd, op.max_tokens = request["budget_usd"], request["max_tokens"]
        op.system = None
        return request


class RequestedChangeOperator(_FromRequest, CodingTaskOperator):
    """A write task (``bug_fix``, ``feature``, ``refactor``, ``testing``, ``documentation``) from the request."""

    kind = "change"
    template_fields = ()  # the request's text is data, not a template

    def execute(self, context: Any) -> dict[str, Any]:
        request = self.from_request(context)
        self.validate_command, self.validate_timeout = request["validate"], request["validate_timeout"]
        self.max_iterations = request["max_iterations"]
        self.reviewer_provider, self.reviewer_model = request["reviewer_provider"], request["reviewer_model"]
        return super().execute(context)


class RequestedReportOperator(_FromRequest, ReportOperator):
    """A read-only task (``pr_review``, ``issue_summary``, ``code_analysis``, ``security_audit``) from the
    request."""

    kind = "report"
    template_fields = ()

    def execute(self, context: Any) -> dict[str, Any]:
        request = self.from_request(context)
        self.issue, self.base_ref, self.head_ref = request["issue"], request["base_ref"], request["head_ref"]
        return super().execute(context)
