"""``ReportOperator`` and ``CodingTaskOperator``: supervised coding tasks as Airflow tasks.

Thin by design: the work is :func:`~supervisor_lib.coding.report_task.run_report_job` (read-only types) and
:func:`~supervisor_lib.coding.write_task.run_write_job` (write types), which need no Airflow. Both run on the
worker, synchronously, because the workspace lives on its filesystem; every model call goes through the call
runner (response cache, budget, attempts, recording) under its own step. Heavy imports happen in ``execute``,
so building a DAG of these operators costs no more than building any other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from supervisor_lib.operators.flow import skip_unless

if TYPE_CHECKING:
    from supervisor_lib.coding.chat import Chat
    from supervisor_lib.coding.experiments import ArmRun
    from supervisor_lib.coding.jobs import Target
    from supervisor_lib.coding.loop import Check
    from supervisor_lib.coding.models import TaskModels
    from supervisor_lib.coding.review import Reviewer
    from supervisor_lib.execution.runner import CallScope

__all__ = ["CodingTaskOperator", "ReportOperator"]

#: the prompt's context budget in estimated tokens (supervisor_lib.coding.jobs.DEFAULT_CONTEXT_TOKENS)
CONTEXT_TOKENS = 12000
WRITE_MAX_TOKENS = 4096
REPORT_MAX_TOKENS = 4096
REVIEW_MAX_TOKENS = 2048


class _SupervisedTaskOperator(BaseOperator):
    """What both operators share: the repo, the model, the spec's templated text and its ``when``.

    :param task_kind: the spec's task type (``bug_fix``, ``code_analysis``...); also recorded with every call.
    :param repo: a git URL or a local path; a relative path is resolved against the project root (the folder
        holding ``include/`` above ``spec_file``, or ``SUPERVISOR_PROJECT_ROOT``).
    :param instructions: what to do (templated).
    :param ref: the git ref to work on; default the repo's ``HEAD``.
    :param paths: globs of the files to show the model; default a repo map plus the most relevant files.
    :param provider: ``anthropic`` or ``openai``; ``auto`` with ``route`` for the router's choice.
    :param model: the model; default the connection's ``default_model``. Routed: tried first if catalogued.
    :param route: routing options for ``provider: auto`` (``capabilities``, ``tier``, ``budget``, ``team``, and
        ``provider`` to choose among one provider's models only): every
        model call (the reviewer's too) is routed like an llm task's — planned from the task type's capabilities,
        tier, health and budgets, its worst case reserved against every budget, failed over within the try — and
        stays with the model that answered last. The result gains ``routed``: ``{provider, model, reasons,
        failovers, models}``. ``None``: not routed.
    :param conn_id: the provider connection; default the provider's ``*_default``.
    :param max_tokens: the answer's token limit per call.
    :param system: extra system prompt text (templated), after Supervisor's own.
    :param budget_usd: the most this task may spend, all tries and calls together.
    :param cache: re-use answers already paid for in this DAG run (retries reach the same state for free).
    :param when: a templated condition; when it renders false the task is skipped.
    :param item: the item of a ``foreach`` (mapped) task, ``{{ item }}`` in templates.
    :param context_tokens: the budget of the repository context in the prompt (estimated tokens).
    :param spec_file: the spec file the task comes from (to find the project root).
    :param analytics_conn_id: the analytics store; default ``supervisor_analytics``.
    :param budget: the DAG's spend limits across runs (a spec's ``budget:`` block; see ``docs/routing.md``). With
        it, or a global budget that applies, every model call reserves its worst case against each limit first.
    :param team: the team this task's spend counts for (default: the budget's ``team``).
    :param experiment: the experiment this task runs (``docs/experiments.md``): its outcome is recorded per arm.
    :param arm: the experiment arm of this task instance, ``{"name", "index", "settings"}``: ``settings`` replace
        the task's ``provider``, ``model``, ``route``, ``max_tokens``, ``temperature``, ``system``, ``budget``,
        ``team`` (and a write task's ``max_iterations``). The builder maps the task over its arms.

    Without a ``pool``, the task queues in its provider's pool (a routed task: its first choice's), as llm tasks do:
    see :func:`~supervisor_lib.coding.models.task_pool`.
    """

    template_fields: Sequence[str] = ("instructions", "system", "when")
    template_fields_renderers = {"instructions": "md", "system": "md"}
    default_max_tokens = REPORT_MAX_TOKENS

    def __init__(
        self,
        *,
        task_kind: str,
        repo: str | None,
        instructions: str | None = None,
        ref: str = "HEAD",
        paths: Sequence[str] | None = None,
        provider: str = "anthropic",
        model: str | None = None,
        conn_id: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        system: str | None = None,
        budget_usd: float | None = None,
        cache: bool = True,
        when: Any = None,
        item: Any = None,
        context_tokens: int = CONTEXT_TOKENS,
        spec_file: str | None = None,
        analytics_conn_id: str | None = None,
        route: Mapping[str, Any] | None = None,
        budget: Mapping[str, Any] | None = None,
        team: str | None = None,
        experiment: str | None = None,
        arm: Mapping[str, Any] | None = None,
        pool: str | None = None,  # named, so that a DAG's default_args pool reaches it (Airflow fills only named ones)
        **kwargs: Any,
    ) -> None:
        # an experiment arm's settings replace the task's
        chosen: dict[str, Any] = {"provider": provider, "model": model, "route": route, "max_tokens": max_tokens,
                  "temperature": temperature, "system": system, "budget": budget, "team": team}  # fmt: skip
        chosen |= {k: v for k, v in ((arm or {}).get("settings") or {}).items() if k in chosen}
        provider, model, route, max_tokens, temperature, system, budget, team = chosen.values()
        if pool is None:  # queue with the provider's other calls instead of in default_pool
            from supervisor_lib.coding.models import task_pool

            pool = task_pool(task_kind, provider, route, model, max_tokens or self.default_max_tokens,
                             str(kwargs.get("task_id")))  # fmt: skip
        super().__init__(pool=pool, **kwargs)
        self.route = dict(route) if route is not None else None
        self.budget, self.team = (dict(budget) if budget else None), team
        self.task_kind, self.repo, self.instructions, self.ref = task_kind, repo, instructions, ref
        self.paths = list(paths) if paths is not None else None
        self.provider, self.model, self.conn_id = provider, model, conn_id
        self.max_tokens, self.temperature, self.system = max_tokens, temperature, system
        self.budget_usd, self.cache, self.when, self.item = budget_usd, cache, when, item
        self.context_tokens, self.spec_file, self.analytics_conn_id = context_tokens, spec_file, analytics_conn_id
        self.experiment, self.arm = experiment, (dict(arm) if arm else None)

    def as_arm(self, scope: CallScope, author: Chat) -> ArmRun | None:
        """What records this try as an experiment arm's run (``None`` when the task runs no experiment)."""
        if self.experiment is None or self.arm is None:
            return None
        from supervisor_lib.coding.experiments import ArmRun

        return ArmRun(self.experiment, self.arm, scope, lambda: author.label, self.analytics_conn_id, self.log)

    def run_job(self, scope: CallScope, author: Chat, job: Any, skips: tuple[type[BaseException], ...] = ()) -> Any:
        """``job()``, recorded as an experiment arm's run when the task runs an experiment."""
        arm = self.as_arm(scope, author)
        result = arm.run(job, skips) if arm is not None else job()
        if arm is not None:
            result = {**result, "experiment": {"name": self.experiment, "arm": arm.arm["name"]}}
        return result

    def call_scope(self, context: Any) -> CallScope:
        """Where this task's calls happen (each call adds its own step)."""
        from supervisor_lib.execution.runner import CallScope

        tags = tuple(sorted(self.dag.tags or ())) if self.has_dag() else ()
        return CallScope.from_ti(context["ti"], task_type=self.task_kind, tags=tags)

    def models(self, scope: CallScope) -> TaskModels:
        """This try's models: the task's own provider's, or the router's, under the budgets that apply."""
        from supervisor_lib.coding.models import TaskModels

        self._models = TaskModels(
            task_kind=self.task_kind, scope=scope, log=self.log, analytics_conn_id=self.analytics_conn_id,
            route=self.route, budget=self.budget, team=self.team, temperature=self.temperature,
            budget_usd=self.budget_usd, cache=self.cache,
        )  # fmt: skip
        return self._models

    def author(self, scope: CallScope) -> Chat:
        """The task's own model (see :class:`~supervisor_lib.coding.models.TaskModels`)."""
        max_tokens = self.max_tokens or self.default_max_tokens
        return self.models(scope).author(self.provider, self.model, self.conn_id, max_tokens)

    @property
    def routed(self) -> dict[str, Any] | None:
        """``{provider, model, reasons, failovers, models}`` of a routed task's calls (``None``: not routed)."""
        models = getattr(self, "_models", None)
        return models.routed() if models is not None else None

    def with_routed(self, result: dict[str, Any]) -> dict[str, Any]:
        """The result, with ``routed`` when the router chose the model."""
        return {**result, "routed": self.routed} if self.routed is not None else result

    def target(self) -> Target:
        """The repo (resolved against the project root) and what of it to show."""
        from airflow.sdk.exceptions import AirflowFailException

        from supervisor_lib.coding.jobs import Target
        from supervisor_lib.coding.settings import find_project_root, resolve_repo

        if not self.repo:
            raise AirflowFailException(
                f"{self.task_kind} task {self.task_id!r} has no repository: set `repo:` in the spec (a local path, "
                "relative to the project root, or a git URL)"
            )
        repo = resolve_repo(self.repo, find_project_root(self.spec_file))
        paths = tuple(self.paths) if self.paths is not None else None
        return Target(repo, self.ref, paths, self.context_tokens)

    def log_result(self, result: dict[str, Any]) -> None:
        """Log the outcome and, loudly, every warning (an unsandboxed validation above all)."""
        sandbox = result.get("sandbox") or {}
        if sandbox.get("isolation") == "none":
            self.log.error("!" * 100)
            self.log.error("NO SANDBOX: the validation command ran with network access and a writable filesystem")
            self.log.error("!" * 100)
        for warning in result.get("warnings", []):
            self.log.warning("%s", warning)
        self.log.info(
            "%s %s: %d iteration(s), %s tokens, cost %s USD; artifacts in %s",
            self.task_kind,
            result["status"],
            len(result.get("iterations") or []),
            sum(v for k, v in result["usage"].items() if k.endswith("_tokens")),
            result["cost_usd"],
            result.get("artifacts"),
        )


class ReportOperator(_SupervisedTaskOperator):
    """A read-only task (``pr_review``, ``issue_summary``, ``code_analysis``, ``security_audit``,
    ``documentation``): one structured model call; the schema-valid report is returned and saved.

    :param base_ref: ``pr_review``: the base of the change (``git diff base...head``).
    :param head_ref: ``pr_review``: the head of the change; also the ref whose files the model sees.
    :param patch_file: ``pr_review``: a patch to review (absolute, in the repo, or under the project root).
    :param issue: ``issue_summary``: the issue text (templated).
    :param issue_file: ``issue_summary``: a file holding the issue (absolute, in the repo, or under the project root).
    :param review_upstreams: ``pr_review`` without refs or patch: the upstream write tasks whose patches it reviews.
    """

    template_fields: Sequence[str] = (*_SupervisedTaskOperator.template_fields, "issue")
    ui_color = "#e0f0e8"

    def __init__(
        self,
        *,
        base_ref: str | None = None,
        head_ref: str | None = None,
        patch_file: str | None = None,
        issue: str | None = None,
        issue_file: str | None = None,
        review_upstreams: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_ref, self.head_ref, self.patch_file = base_ref, head_ref, patch_file
        self.issue, self.issue_file, self.review_upstreams = issue, issue_file, list(review_upstreams)

    def execute(self, context: Any) -> dict[str, Any]:
        skip_unless(self.when)
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from supervisor_lib.coding.report_task import NothingToReviewError, ReportJob, run_report_job
        from supervisor_lib.coding.settings import Roots, find_project_root

        patches, commit = self._upstream_changes(context)
        target = self.target()
        if commit and not self.head_ref:  # review the upstream change with its files as they are after it
            target = dataclasses.replace(target, ref=commit)
        job = ReportJob(
            task_type=self.task_kind, target=target, instructions=self.instructions, base_ref=self.base_ref,
            head_ref=self.head_ref, patch_file=self.patch_file, issue=self.issue, issue_file=self.issue_file,
            upstream_patches=patches, extra_system=self.system, project_root=find_project_root(self.spec_file),
        )  # fmt: skip
        scope = self.call_scope(context)
        author = self.author(scope)
        try:
            result = self.run_job(scope, author, lambda: run_report_job(job, scope, author, Roots.from_env(), self.log),
                                  (NothingToReviewError,))  # fmt: skip
        except NothingToReviewError as err:
            raise AirflowSkipException(f"skipped: {err}") from err
        except (ValueError, FileNotFoundError) as err:
            raise AirflowFailException(f"{self.task_kind} task {self.task_id!r}: {err}") from err
        result = self.with_routed(result)
        self.log_result(result)
        return result

    def _upstream_changes(self, context: Any) -> tuple[tuple[str, ...] | None, str | None]:
        """The patches of the upstream write tasks (``None`` when there are none) and the last one's commit."""
        if not self.review_upstreams:
            return None, None
        from supervisor_lib.coding.approval import upstream_results
        from supervisor_lib.coding.artifacts import read_artifact

        patches, commit = [], None
        for task_id, result in upstream_results(context["ti"], self.review_upstreams):
            if not result.get("patch"):
                continue
            try:
                patches.append(read_artifact(result["patch"]))
            except OSError as err:  # an artifact root on another machine's disk: fall back to the preview
                self.log.warning("cannot read the patch of %s (%s); reviewing its diff preview", task_id, err)
                patches.append(result.get("diff_preview") or "")
            commit = result.get("commit") or commit
        return tuple(patches), commit


class CodingTaskOperator(_SupervisedTaskOperator):
    """A write task (``bug_fix``, ``feature``, ``refactor``, ``testing``, ``documentation`` with ``write: true``):
    edit in an isolated worktree until the validation passes (and the reviewer approves), commit the change on a
    ``supervisor/<dag>/<run>/<task>`` branch of the repo cache, save the patch and artifacts.

    A ``failed`` or ``rejected`` result is still pushed to XCom (``return_value``) before the task fails with
    :class:`~supervisor_lib.exceptions.ChangeNotAcceptedError` (no retries: they would replay the same answers).

    :param validate_command: the shell command that must pass in the workspace (sandboxed: no network, limits).
    :param validate_timeout: its wall-clock limit in seconds.
    :param max_iterations: attempts to reach a passing change.
    :param reviewer_provider: the reviewer's provider; ``auto``: the other provider than the (routed) author's;
        ``None`` for no review.
    :param reviewer_model: the reviewer's model; default its connection's ``default_model``.
    :param keep_workspace: ``on_failure`` (default), ``always`` or ``never``.
    :param sandbox: sandbox limits (``cpu_s``, ``memory_mb``, ``max_procs``, ``max_file_mb``, ``output_limit``).
    :param build_on: upstream write tasks whose change this one continues: the worktree starts from the commit of
        the last of them that made one (a spec task that depends on write tasks builds on them), else from ``ref``.
    """

    ui_color = "#fdf0d5"
    default_max_tokens = WRITE_MAX_TOKENS

    def __init__(
        self,
        *,
        validate_command: str | None = None,
        validate_timeout: float = 300.0,
        max_iterations: int = 3,
        reviewer_provider: str | None = None,
        reviewer_model: str | None = None,
        reviewer_conn_id: str | None = None,
        keep_workspace: str = "on_failure",
        sandbox: dict[str, Any] | None = None,
        build_on: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.build_on = list(build_on)
        max_iterations = ((self.arm or {}).get("settings") or {}).get("max_iterations", max_iterations)
        self.validate_command, self.validate_timeout = validate_command, validate_timeout
        self.max_iterations, self.keep_workspace, self.sandbox = max_iterations, keep_workspace, sandbox
        self.reviewer_provider, self.reviewer_model, self.reviewer_conn_id = (
            reviewer_provider, reviewer_model, reviewer_conn_id,
        )  # fmt: skip

    def execute(self, context: Any) -> dict[str, Any]:
        skip_unless(self.when)
        from airflow.sdk.exceptions import AirflowFailException

        from supervisor_lib.coding.settings import Roots
        from supervisor_lib.coding.write_task import WriteJob, run_write_job, summary_line
        from supervisor_lib.exceptions import ChangeNotAcceptedError

        if not (self.instructions or "").strip():
            raise AirflowFailException(f"{self.task_kind} task {self.task_id!r} needs instructions")
        if self.validate_command:  # before any model call: a validation that may not run makes the task pointless
            from supervisor_lib.workspace.sandbox import SandboxUnavailableError, require_isolation

            try:
                require_isolation()
            except SandboxUnavailableError as err:
                raise AirflowFailException(f"{self.task_kind} task {self.task_id!r}: {err}") from err
        job = WriteJob(
            task_type=self.task_kind, instructions=str(self.instructions), target=self._start(context),
            check=self._check(),
            max_iterations=self.max_iterations, keep_workspace=self.keep_workspace,  # type: ignore[arg-type]
            extra_system=self.system,
        )  # fmt: skip
        scope = self.call_scope(context)
        author = self.author(scope)
        reviewer = self._reviewer()
        run = self.run_job(
            scope, author, lambda: run_write_job(job, scope, author, Roots.from_env(), self.log, reviewer)
        )
        result = self.with_routed(run)
        self.log_result(result)
        if result["status"] in ("failed", "rejected"):
            context["ti"].xcom_push(key="return_value", value=result)
            raise ChangeNotAcceptedError(
                f"{self.task_kind} task {self.task_id!r} {result['status']} after {len(result['iterations'])} "
                f"iteration(s): {summary_line(result)}; artifacts in {result.get('artifacts')}"
                + (f"; workspace kept at {result['workspace']}" if result.get("workspace") else "")
            )
        return result

    def _start(self, context: Any) -> Target:
        """The target, at the commit of the upstream write task this one builds on (the last that made one)."""
        target = self.target()
        if not self.build_on:
            return target
        from supervisor_lib.coding.approval import upstream_results

        commits = [(task_id, r["commit"]) for task_id, r in upstream_results(context["ti"], self.build_on)
                   if r.get("commit")]  # fmt: skip
        if not commits:
            return target
        if len({commit for _, commit in commits}) > 1:
            self.log.warning("several upstream changes (%s): building on the last, %s; the others are not "
                             "included", ", ".join(t for t, _ in commits), commits[-1][0])  # fmt: skip
        self.log.info("building on %s's change (commit %s)", commits[-1][0], commits[-1][1][:12])
        return dataclasses.replace(target, ref=commits[-1][1])

    def _check(self) -> Check | None:
        from supervisor_lib.coding.loop import Check, SandboxLimits

        if not self.validate_command:
            return None
        return Check(self.validate_command, float(self.validate_timeout), SandboxLimits(**(self.sandbox or {})))

    def _reviewer(self) -> Reviewer | None:
        """The second model (after :meth:`author`: a routed task's reviewer is routed too)."""
        if not self.reviewer_provider:
            return None
        from supervisor_lib.coding.review import Reviewer

        ask, label = self._models.reviewer(self.reviewer_provider, self.reviewer_model, self.reviewer_conn_id,
                                           REVIEW_MAX_TOKENS, self.provider)  # fmt: skip
        return Reviewer(ask, label, self.task_kind, str(self.instructions))
