"""``supervisor_task``: one supervised coding task described entirely by the run's ``conf``, for runs triggered
through Airflow's REST API (a CI job, a chat bot, an issue-tracker webhook).

The DAG's ``params`` are the request's schema, so a bad ``conf`` is refused by the API server with a 400 that names
the field, before anything runs. Then:

``request``
    checks the repository against the platform's settings (:mod:`supervisor_lib.coding.repo_policy`: only folders
    under ``SUPERVISOR_TASK_REPO_ROOTS`` and remotes under ``SUPERVISOR_TASK_REPO_REMOTES``); a refusal fails the
    run here, naming the setting, before any model is called.
``change`` / ``report``
    the supervised work: a write task (edit in an isolated worktree until the validation command passes in the
    sandbox, then a second-model review) or a read-only report; the other one is skipped.
``result``
    what a caller reads through the REST API (its XCom ``return_value``): status, patch text, review, validation,
    cost, tokens, and where the transcript and artifacts are. It fails the run when the work failed.
``approve``
    with ``approval: true``, Airflow's Approve / Reject on the result (the UI's Required Actions, or ``PATCH
    .../taskInstances/approve/-1/hitlDetails``); its XCom says ``approved``.

Settings read when the DAG file is parsed: ``SUPERVISOR_TASK_PROVIDER`` (the default ``provider``, else ``auto``),
``SUPERVISOR_TASK_MAX_BUDGET_USD`` (the largest ``budget_usd`` a request may ask for, default 5), and
``SUPERVISOR_TASK_POOL`` (the pool the work queues in, default ``default_pool``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from supervisor_lib.coding.repo_policy import REF_PATTERN

DAG_ID = "supervisor_task"
WRITE_TYPES = ("bug_fix", "feature", "refactor", "testing", "documentation")
REPORT_TYPES = ("pr_review", "issue_summary", "code_analysis", "security_audit")
PROVIDERS = ("auto", "anthropic", "openai")
#: the most of a patch the ``result`` XCom carries (the whole patch is in the artifacts)
PATCH_LIMIT = 200_000


def non_finite(params: Mapping[str, Any]) -> str | None:
    """The first param that is NaN or infinite, said the way Airflow says a param is wrong; ``None`` when none is.

    JSON's ``NaN`` passes every JSON Schema check (a comparison with NaN is false), and Airflow's REST API accepts
    it in a conf: a ``budget_usd`` of NaN would compare as within every budget. So the ``request`` task refuses it
    before anything runs. (A real Airflow stores the NaN as null, and its own param check then fails the task
    first; this catches a conf that reaches the task unchanged, as in ``dag.test()``.)"""
    for name, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"param {name}: {value!r} is not a finite number; give a number within its documented range"
    return None


def request_params(default_provider: str = "auto", max_budget_usd: float = 5.0) -> dict[str, Param]:
    """The request's schema (the DAG's ``params``)."""
    text: dict[str, Any] = {"type": "string", "minLength": 1}
    optional: dict[str, Any] = {"type": ["null", "string"]}
    return {
        "repo": Param(type="string", minLength=1, maxLength=500, title="Repository",
                      description="A local path under SUPERVISOR_TASK_REPO_ROOTS (relative: from the project root) or "
                                  "a git URL under SUPERVISOR_TASK_REPO_REMOTES"),
        "ref": Param("HEAD", type="string", pattern=REF_PATTERN, description="The branch, tag or commit to start "
                                                                               "from"),
        "task_type": Param(type="string", enum=[*WRITE_TYPES, *REPORT_TYPES],
                           description="A write task (" + ", ".join(WRITE_TYPES) + ") or a report ("
                                       + ", ".join(REPORT_TYPES) + ")"),
        "instructions": Param(**text, maxLength=20_000, description="What to do"),
        "validate": Param(None, **optional, maxLength=2_000,
                          description="Write tasks: the command that must pass in the sandbox, e.g. python -m pytest "
                                      "-q (none: any change that applies is accepted, with a warning)"),
        "validate_timeout": Param(300, type="integer", minimum=10, maximum=3_600,
                                  description="Seconds the validation command may run"),
        "provider": Param(default_provider, type="string", enum=list(PROVIDERS),
                          description="The author's provider; auto: the router picks the model"),
        "model": Param(None, **optional, maxLength=200, description="The author's model (default: the "
                                                                    "connection's default_model)"),
        "reviewer_provider": Param("auto", type="string", enum=["none", *PROVIDERS],
                                   description="Write tasks: the second model's provider; auto: the other provider "
                                               "than the author's; none: no review"),
        "reviewer_model": Param(None, **optional, maxLength=200, description="The reviewer's model"),
        "budget_usd": Param(1.0, type="number", exclusiveMinimum=0, maximum=max_budget_usd,
                            description=f"The most this task may spend, every call together (at most "
                                        f"{max_budget_usd:g}: SUPERVISOR_TASK_MAX_BUDGET_USD)"),
        "max_tokens": Param(None, type=["null", "integer"], minimum=256, maximum=64_000,
                            description="The answer's token limit per call"),
        "max_iterations": Param(3, type="integer", minimum=1, maximum=10,
                                description="Write tasks: attempts to reach a passing change"),
        "approval": Param(False, type="boolean", description="Ask a human to approve the result"),
        "paths": Param(None, type=["null", "array"], items={"type": "string", "minLength": 1, "maxLength": 300},
                       maxItems=50, description="Globs of the files to show the model (default: a repo map and the "
                                                "most relevant files)"),
        "issue": Param(None, **optional, maxLength=50_000, description="issue_summary: the issue's text"),
        "base_ref": Param(None, type=["null", "string"], pattern=REF_PATTERN,
                          description="pr_review: the base of the change"),
        "head_ref": Param(None, type=["null", "string"], pattern=REF_PATTERN,
                          description="pr_review: the head of the change"),
    }  # fmt: skip


def supervisor_task_dag(dag_id: str = DAG_ID, dag_file: str | None = None) -> DAG:
    """The DAG (``dag_file``: the file that defines it, which locates the project root for relative repos)."""
    from supervisor_lib.operators.requested import REQUEST_TASK, RequestedChangeOperator, RequestedReportOperator

    provider = os.environ.get("SUPERVISOR_TASK_PROVIDER") or "auto"
    max_budget = float(os.environ.get("SUPERVISOR_TASK_MAX_BUDGET_USD") or 5.0)
    pool = os.environ.get("SUPERVISOR_TASK_POOL") or "default_pool"
    with DAG(
        dag_id=dag_id,
        description="One supervised coding task described by the run's conf (for the REST API)",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        is_paused_upon_creation=False,  # triggered by other systems: ready from the start
        max_active_runs=16,
        params=request_params(provider, max_budget),
        tags=["supervisor", "rest"],
        default_args={"owner": "supervisor", "retries": 1, "retry_delay": timedelta(seconds=30)},
        doc_md=__doc__,
    ) as dag:

        @task(task_id=REQUEST_TASK)
        def request(**context: Any) -> dict[str, Any]:
            """The request, its repository and refs checked against the settings (a refusal names the setting,
            and is kept as the XCom ``refusal`` for the ``result``)."""
            from airflow.sdk.exceptions import AirflowFailException

            from supervisor_lib.coding.repo_policy import RepoPolicy, RepoRefused, check_ref, describe
            from supervisor_lib.coding.settings import find_project_root

            params, ti = context["params"], context["ti"]
            if problem := non_finite(params):
                ti.xcom_push(key="refusal", value=problem)
                raise AirflowFailException(problem)
            root = find_project_root(dag_file)
            policy = RepoPolicy.from_env(root)
            for line in describe(policy):
                print(f"repository policy: {line}")
            try:
                for name in ("ref", "base_ref", "head_ref"):
                    if params.get(name):
                        check_ref(str(params[name]))
                repo = policy.check(str(params["repo"]), root)
            except RepoRefused as err:
                ti.xcom_push(key="refusal", value=str(err))
                raise AirflowFailException(str(err)) from None
            kind = "change" if params["task_type"] in WRITE_TYPES else "report"
            reviewer = params.get("reviewer_provider") or "none"
            return {
                **params,
                "repo": repo,
                "kind": kind,
                "reviewer_provider": None if reviewer == "none" or kind == "report" else reviewer,
            }

        common: dict[str, Any] = {"repo": None, "task_kind": "bug_fix", "pool": pool, "spec_file": dag_file}
        change = RequestedChangeOperator(task_id="change", **common)
        report = RequestedReportOperator(task_id="report", **common)

        @task(task_id="result", trigger_rule="all_done")
        def result(**context: Any) -> dict[str, Any]:
            """What the caller reads: the work's outcome in one XCom (the run fails when the work failed)."""
            summary = summarize(context["ti"], context["dag_run"].run_id, context["params"])
            context["ti"].xcom_push(key="return_value", value=summary)
            if summary["status"] not in ("passed", "no_changes"):
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(f"the {summary['task_type']} task ended {summary['status']}: "
                                           f"{summary.get('error') or 'see its log'}")  # fmt: skip
            return summary

        from supervisor_lib.operators.approval import SpecApprovalOperator

        approve = SpecApprovalOperator(
            task_id="approve", subject="Approve the change of {{ dag_run.run_id }}?", body=None,
            results_from=["change", "report"], when="{{ params.approval }}",
        )  # fmt: skip
        checked = request()
        checked >> [change, report] >> result() >> approve
    return dag


def summarize(ti: Any, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` XCom: the outcome of ``change`` or ``report``, its patch text, review, cost and tokens, and
    where its transcript and artifacts are."""
    from supervisor_lib.coding.artifacts import read_artifact

    kind = "change" if params["task_type"] in WRITE_TYPES else "report"
    work = ti.xcom_pull(task_ids=kind)
    found: dict[str, Any] = {
        "task_type": params["task_type"], "task_id": kind, "repo": params["repo"], "ref": params["ref"],
        "transcript": _transcript_location(ti.dag_id, run_id, kind),
    }  # fmt: skip
    if not isinstance(work, dict) or "status" not in work:
        refusal = ti.xcom_pull(task_ids="request", key="refusal")
        if refusal:
            return {**found, "status": "refused", "error": refusal}
        return {**found, "status": "error", "error": f"the {kind} task ended without a result: see its log"}
    patch = None
    if work.get("patch"):
        try:
            text = read_artifact(work["patch"])
            patch = text if len(text) <= PATCH_LIMIT else text[:PATCH_LIMIT] + "\n... (truncated: see patch_location)"
        except OSError:
            patch = work.get("diff_preview")
    review = work.get("review") or None
    usage = work.get("usage") or {}
    return {
        **found,
        "status": work["status"],
        "patch": patch,
        "patch_location": work.get("patch"),
        "branch": work.get("branch"),
        "commit": work.get("commit"),
        "files_changed": work.get("files_changed"),
        "review": review,
        "validation": work.get("validation"),
        "report": work.get("report"),
        "iterations": len(work.get("iterations") or []),
        "cost_usd": work.get("cost_usd"),
        "tokens": {name.removesuffix("_tokens"): value for name, value in usage.items() if name.endswith("_tokens")},
        "artifacts": work.get("artifacts"),
        "routed": work.get("routed"),
        "warnings": work.get("warnings") or [],
    }


def _transcript_location(dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
    """Where the task's transcript is: the Supervisor tab of the task instance and the plugin's API (both under the
    API server's base URL)."""
    from urllib.parse import quote

    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    path = f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{task_id}"
    return {"ui": f"{base}/{path}/plugin/supervisor-task", "api": f"{base}/supervisor/api/{path}/-1"}
