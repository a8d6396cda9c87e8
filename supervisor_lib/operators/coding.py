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
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from supervisor_lib.operators.flow import skip_unless

if TYPE_CHECKING:
    from supervisor_lib.coding.chat import Ask, ModelChat, RoutedChat
    from supervisor_lib.coding.jobs import Target
    from supervisor_lib.coding.loop import Check
    from supervisor_lib.coding.review import Reviewer
    from supervisor_lib.providers.calls import CallScope
    from supervisor_lib.routing.calls import RouteOptions
    from supervisor_lib.routing.policy import Candidate
    from supervisor_lib.routing.router import Router

__all__ = ["CodingTaskOperator", "ReportOperator", "default_pool"]

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

    Without a ``pool``, the task queues in its provider's pool (a routed task: its first choice's), as llm tasks do:
    see :func:`default_pool`.
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
        **kwargs: Any,
    ) -> None:
        if kwargs.get("pool") is None:  # queue with the provider's other calls instead of in default_pool
            kwargs["pool"] = default_pool(task_kind, provider, route, model, max_tokens or self.default_max_tokens,
                                          str(kwargs.get("task_id")))  # fmt: skip
        super().__init__(**kwargs)
        self.route = dict(route) if route is not None else None
        self.budget, self.team = (dict(budget) if budget else None), team
        self.task_kind, self.repo, self.instructions, self.ref = task_kind, repo, instructions, ref
        self.paths = list(paths) if paths is not None else None
        self.provider, self.model, self.conn_id = provider, model, conn_id
        self.max_tokens, self.temperature, self.system = max_tokens, temperature, system
        self.budget_usd, self.cache, self.when, self.item = budget_usd, cache, when, item
        self.context_tokens, self.spec_file, self.analytics_conn_id = context_tokens, spec_file, analytics_conn_id

    def call_scope(self, context: Any) -> CallScope:
        """Where this task's calls happen (each call adds its own step)."""
        from supervisor_lib.providers.calls import CallScope

        tags = tuple(sorted(self.dag.tags or ())) if self.has_dag() else ()
        return CallScope.from_ti(context["ti"], task_type=self.task_kind, tags=tags)

    def chat(
        self, scope: CallScope, provider: str, model: str | None, conn_id: str | None, max_tokens: int
    ) -> ModelChat | RoutedChat:
        """A model for this task's calls, through the call runner and the analytics ledger; when a budget applies
        (``budget``, or a global one), each call first reserves its worst case against it."""
        from supervisor_lib.analytics.ledger import ledger_for
        from supervisor_lib.coding.chat import ModelChat, RoutedChat
        from supervisor_lib.routing.calls import RouteOptions, budget_router

        options = RouteOptions.pinned_to(provider, model, conn_id, self.budget, self.team)
        router = budget_router(options, scope, self.analytics_conn_id, self.log)
        if router is not None:
            return RoutedChat(
                options=options, router=router, scope=scope, store=ledger_for(self.analytics_conn_id),
                max_tokens=max_tokens, temperature=self.temperature, budget_usd=self.budget_usd, use_cache=self.cache,
            )  # fmt: skip
        return ModelChat(
            provider=provider,
            scope=scope,
            store=ledger_for(self.analytics_conn_id),
            model=model,
            conn_id=conn_id,
            max_tokens=max_tokens,
            temperature=self.temperature,
            budget_usd=self.budget_usd,
            use_cache=self.cache,
        )

    def author(self, scope: CallScope) -> Ask:
        """The task's own model: its provider's, or, when the task is routed, a :class:`RoutedChat` (every call
        planned, budgeted and failed over by the router)."""
        max_tokens = self.max_tokens or self.default_max_tokens
        if self.route is None:
            return self.chat(scope, self.provider, self.model, self.conn_id, max_tokens)
        options = self.route_options(model=self.model)
        self._planned = self.plan_route(scope, options, max_tokens)
        self._routed_chat = self.routed_chat(scope, options, max_tokens)
        return self._routed_chat

    def route_options(self, provider: str | None = None, model: str | None = None) -> RouteOptions:
        """The routing options of this task (``route``), restricted to ``provider`` (default ``route``'s own
        ``provider``, if any), preferring ``model``."""
        from supervisor_lib.routing.calls import RouteOptions

        route = self.route or {}
        return RouteOptions.from_dict({
            "capabilities": route.get("capabilities"), "tier": route.get("tier"),
            "budget": route.get("budget") or self.budget, "team": route.get("team") or self.team,
            "provider": provider or route.get("provider"), "model": model,
        })  # fmt: skip

    @cached_property
    def router(self) -> Router:
        """The run-time router (catalogue and budgets with their overrides, shared health), one per task try."""
        from supervisor_lib.routing.router import Router

        return Router.for_runtime(self.analytics_conn_id, logger=self.log)

    def routed_chat(self, scope: CallScope, options: RouteOptions, max_tokens: int) -> RoutedChat:
        """A routed model for this task's calls (a catalogued ``model`` is preferred, as for llm tasks)."""
        from supervisor_lib.analytics.ledger import ledger_for
        from supervisor_lib.coding.chat import RoutedChat

        if options.model not in self.router.catalog.models:  # a template or an uncatalogued model: no preference
            options = dataclasses.replace(options, model=None)
        return RoutedChat(
            options=options, router=self.router, scope=scope, store=ledger_for(self.analytics_conn_id),
            max_tokens=max_tokens, temperature=self.temperature, budget_usd=self.budget_usd, use_cache=self.cache,
        )  # fmt: skip

    def plan_route(self, scope: CallScope, options: RouteOptions, max_tokens: int) -> Candidate:
        """Check before any work that the router can place this task now; log the plan; its first candidate.

        Each call is planned again (health and budgets change); this first plan fails the task early, before a
        workspace is made, and tells an ``auto`` reviewer which provider the author most likely uses.

        :raises NoRouteError: no catalogued model can serve the task (``BudgetExceededError`` when only budgets
            stand in the way, ``RetryableError`` when only open breakers do — the router's own errors).
        """
        from supervisor_lib.routing.failover import failover_steps, run_routed
        from supervisor_lib.routing.policy import RouteRequest

        model = options.model if options.model in self.router.catalog.models else None
        request = RouteRequest(
            task_type=self.task_kind, capabilities=frozenset(options.capabilities), model=model, tier=options.tier,
            input_tokens=0, max_tokens=max_tokens, provider=options.provider,
        )  # fmt: skip  # the prompt is not built yet: a lower bound, so this plan never refuses what a call would take
        route_scope = options.route_scope(scope)
        plan = self.router.plan(request, route_scope)
        if plan.chosen is None:  # the failover loop of an empty plan logs it, records the decision and raises its error
            run_routed(failover_steps(self.router, plan, route_scope), _never_called)
            raise AssertionError("unreachable: a plan without candidates always fails")  # pragma: no cover
        self.log.info("%s: %s", route_scope.describe(), plan.explain())
        return plan.chosen

    @property
    def routed(self) -> dict[str, Any] | None:
        """``{provider, model, reasons, failovers, models}`` of a routed task's calls (``None``: not routed)."""
        chat = getattr(self, "_routed_chat", None)
        return chat.summary() if chat is not None else None

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
        try:
            result = run_report_job(job, scope, self.author(scope), Roots.from_env(), self.log)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        job = WriteJob(
            task_type=self.task_kind, instructions=str(self.instructions), target=self.target(), check=self._check(),
            max_iterations=self.max_iterations, keep_workspace=self.keep_workspace,  # type: ignore[arg-type]
            extra_system=self.system,
        )  # fmt: skip
        scope = self.call_scope(context)
        author = self.author(scope)
        result = self.with_routed(run_write_job(job, scope, author, Roots.from_env(), self.log, self._reviewer(scope)))
        self.log_result(result)
        if result["status"] in ("failed", "rejected"):
            context["ti"].xcom_push(key="return_value", value=result)
            raise ChangeNotAcceptedError(
                f"{self.task_kind} task {self.task_id!r} {result['status']} after {len(result['iterations'])} "
                f"iteration(s): {summary_line(result)}; artifacts in {result.get('artifacts')}"
                + (f"; workspace kept at {result['workspace']}" if result.get("workspace") else "")
            )
        return result

    def _check(self) -> Check | None:
        from supervisor_lib.coding.loop import Check, SandboxLimits

        if not self.validate_command:
            return None
        return Check(self.validate_command, float(self.validate_timeout), SandboxLimits(**(self.sandbox or {})))

    def _reviewer(self, scope: CallScope) -> Reviewer | None:
        """The second model. A routed task's reviewer is routed too (budgets and breakers hold for its calls), among
        the other provider's models when the catalogue has any."""
        if not self.reviewer_provider:
            return None
        from supervisor_lib.coding.review import Reviewer

        provider = self.reviewer_provider
        planned = getattr(self, "_planned", None)
        if provider == "auto":  # the other provider than the author's (as the router planned it)
            author = planned.provider if planned is not None else self.provider
            provider = "openai" if author == "anthropic" else "anthropic"
        if planned is None:
            chat = self.chat(scope, provider, self.reviewer_model, self.reviewer_conn_id, REVIEW_MAX_TOKENS)
            return Reviewer(chat, chat.label, self.task_kind, str(self.instructions))
        if not any(model.provider == provider for model in self.router.catalog.models.values()):
            self.log.warning("the catalogue has no %s model: the review is routed to any provider", provider)
            provider = "auto"
        options = self.route_options(provider, self.reviewer_model)
        routed = self.routed_chat(scope, options, REVIEW_MAX_TOKENS)
        return Reviewer(routed, f"routed reviewer ({provider})", self.task_kind, str(self.instructions))


def default_pool(
    task_kind: str, provider: str, route: Mapping[str, Any] | None, model: str | None, max_tokens: int, task_id: str
) -> str | None:
    """The pool a coding task queues in when it names none: its provider's (catalogue ``providers.<name>.pool``);
    a routed task's, that of the model it would choose first (file catalogue, at parse time).

    :raises ValueError: a routed task no catalogued model can serve (an import error at parse time).
    """
    from supervisor_lib.routing.catalog import provider_pool

    if route is None:
        return provider_pool(provider)
    from supervisor_lib.operators.routed import first_choice_pool
    from supervisor_lib.routing.calls import RouteOptions

    options = RouteOptions(tuple(route.get("capabilities") or ()), route.get("tier"), route.get("provider"), model)
    call = {"task_kind": task_kind, "max_tokens": max_tokens, "output_schema": True, "task_id": task_id}
    return first_choice_pool(options, call)


def _never_called(attempt: Any) -> dict[str, Any]:
    raise AssertionError(f"a plan without candidates called {attempt}")  # pragma: no cover
