"""``AnthropicOperator`` and ``OpenAIOperator``: one supervised model call as an Airflow task.

Thin by design: the operator turns its arguments into :class:`~supervisor_lib.execution.settings.CallSettings`
once, and :class:`~supervisor_lib.execution.calls.CallExecutor` runs them (response cache, budgets, routing,
attempts, validation, recording). In deferrable mode the task starts in the triggerer (``start_from_trigger``) and
the trigger ends it (``end_from_trigger``): no worker slot is used while the model thinks, and no worker process
starts at all unless the call fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.triggers.base import StartTriggerArgs

from supervisor_lib.compat import StartFromTrigger, in_dag_test
from supervisor_lib.execution.settings import CallSettings, RouteOptions
from supervisor_lib.operators.flow import skip_unless
from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.base import BaseLLMHook
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.providers.policy import AttemptPolicy

if TYPE_CHECKING:
    from supervisor_lib.execution.runner import CallScope

TRIGGER_CLASSPATH = "supervisor_lib.triggers.llm.LLMCallTrigger"
ANALYTICS_CONN_ID = "supervisor_analytics"


class BaseLLMOperator(BaseOperator):
    """Send one prompt (or message list) to a model; return the result dict via XCom.

    The result: ``text``, ``output`` (parsed structured output or ``None``), ``provider``, ``model``, ``usage``
    (``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ``cache_write_tokens``), ``cost_usd`` (``None``
    when the model's price is unknown), ``latency_s``, ``request_id``, ``attempts``. Never the API key.

    :param prompt: the user prompt (templated). Give either ``prompt`` or ``messages``.
    :param messages: chat messages ``[{"role": "user", "content": "..."}]`` (templated).
    :param system: the system prompt (templated); cached by the provider where it supports prompt caching.
    :param model: the model (templated); defaults to the connection's ``default_model`` extra.
    :param conn_id: the provider connection.
    :param max_tokens: the answer's token limit.
    :param temperature: sampling temperature; ``None`` leaves the provider's default.
    :param output_schema: a JSON schema: the provider's native structured output is requested, the answer is
        validated, and an invalid answer is retried once with the validation error before the task fails.
    :param budget_usd: the most this task may spend, all tries together; a call that could exceed it is not sent.
    :param budget: the DAG's spend limits across runs (a spec's ``budget:`` block: ``per_run_usd``,
        ``per_day_usd``, ``per_month_usd``, ``per_provider_day_usd``, ``team``, ``per_team_month_usd``). With it,
        or with a global budget (``supervisor_budgets``) that applies, the call's worst case is reserved against
        every such limit before it is sent, atomically across workers, and settled after (``docs/routing.md``).
    :param team: the team this task's spend counts for (default: the budget's ``team``).
    :param deferrable: wait for the model in the triggerer; default ``[operators] default_deferrable``.
    :param cache: re-use a response already paid for in this DAG run (retries, cleared tasks); default on.
    :param prompt_cache: mark the system prompt as cacheable at the provider; default on.
    :param when: a templated condition; when it renders false the task is skipped, with the reason logged.
    :param task_kind: recorded as task_type with every call (the spec's task type); default ``llm``.
    :param attempt_policy: attempts within one try before Airflow's own retries take over.
    :param call_timeout_s: wall-clock deadline for the whole call in deferrable mode.
    :param analytics_conn_id: the analytics store connection.
    :param start_in_triggerer: with ``deferrable``, start the task in the triggerer (no worker at all) when it
        runs in Airflow's ``default_pool``. A task in any other pool — its provider's, by default — starts on a
        worker instead, because Airflow 3.3 admits a start-from-trigger task without checking its pool: only a
        worker start lets the pool bound concurrent calls (the call then waits in the triggerer, holding its slot).
        Tasks whose templates read XComs, and mapped tasks (whose templates need the item), start on a worker too,
        render there and defer; the trigger still ends them all.
    :param item: the current item of a ``foreach`` (mapped) task, ``{{ item }}`` in spec templates.

    Without a ``pool``, the task queues in its provider's pool from the catalogue (``include/catalog.yaml``), which
    the settings step creates, so Airflow bounds the provider's concurrent calls (``pool="default_pool"`` opts
    out, and lets a deferrable task start in the triggerer). A mapped task (``.partial()``) must be given its pool,
    since the scheduler reads it from the partial arguments: :meth:`CallSettings.pool
    <supervisor_lib.execution.settings.CallSettings.pool>` names it.

    Every setting but the templated ones lives in :attr:`call` (a :class:`~supervisor_lib.execution.settings.
    CallSettings`); :class:`~supervisor_lib.execution.calls.CallExecutor` decides how the call runs (plain, under
    budgets, or routed) on a worker and in the triggerer alike.
    """

    hook_class: ClassVar[type[BaseLLMHook]]
    template_fields: Sequence[str] = CallSettings.TEMPLATED
    template_fields_renderers = {"prompt": "md", "system": "md", "messages": "json"}
    ui_color = "#e8e0f7"
    start_trigger_args = StartTriggerArgs(
        trigger_cls=TRIGGER_CLASSPATH,
        trigger_kwargs={},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    #: where the task starts (the triggerer or a worker): see :class:`~supervisor_lib.compat.StartFromTrigger`
    start_from_trigger = StartFromTrigger()

    def __init__(
        self,
        *,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: str | None = None,
        model: str | None = None,
        conn_id: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output_schema: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        deferrable: bool | None = None,
        cache: bool = True,
        prompt_cache: bool = True,
        when: Any = None,
        task_kind: str = "llm",
        attempt_policy: AttemptPolicy | None = None,
        call_timeout_s: float = 900.0,
        analytics_conn_id: str = ANALYTICS_CONN_ID,
        start_in_triggerer: bool = True,
        item: Any = None,
        budget: Mapping[str, Any] | None = None,
        team: str | None = None,
        route: RouteOptions | None = None,
        pool: str | None = None,  # named, so that a DAG's default_args pool reaches it (Airflow fills only named ones)
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id")
        if (prompt is None) == (messages is None):
            raise ValueError(f"{type(self).__name__}({task_id!r}): give exactly one of prompt or messages")
        if budget_usd is not None and budget_usd < 0:
            raise ValueError(f"{type(self).__name__}({task_id!r}): budget_usd must be >= 0, got {budget_usd}")
        #: every setting of the call but the templated ones (which Airflow renders on the operator's attributes)
        self.call = CallSettings(
            provider=self.hook_class.provider, conn_id=conn_id or self.hook_class.default_conn_name,
            max_tokens=max_tokens, temperature=temperature, output_schema=output_schema, prompt_cache=prompt_cache,
            budget_usd=budget_usd, cache=cache, task_type=task_kind, deadline_s=call_timeout_s,
            policy=attempt_policy or AttemptPolicy(), analytics_conn_id=analytics_conn_id,
            budget=dict(budget) if budget else None, team=team, route=route,
        )  # fmt: skip
        # without a pool, queue with the provider's other calls instead of in default_pool
        super().__init__(pool=pool or self.call.pool(str(task_id)), **kwargs)
        self.prompt, self.messages, self.system, self.model, self.when = prompt, messages, system, model, when
        self.item = item
        self._hooks: dict[Any, Any] = {}  # the provider hooks of this task's calls (connections read once)
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        if deferrable and start_in_triggerer:
            self.start_from_trigger = True
            self.start_trigger_args = dataclasses.replace(
                self.start_trigger_args, trigger_kwargs=self.trigger_kwargs(end_from_trigger=True)
            )

    def start_templates(self) -> tuple[Any, ...]:
        """The templated values: a task whose templates read XComs cannot start in the triggerer."""
        return tuple(getattr(self, name) for name in CallSettings.TEMPLATED)

    def settings(self) -> CallSettings:
        """The call's settings with the templated fields as they are now (rendered, once the task runs)."""
        tags = tuple(sorted(self.dag.tags or ())) if self.has_dag() else ()
        rendered = {name: getattr(self, name) for name in CallSettings.TEMPLATED}
        return self.call.with_values(tags=tags, **rendered)

    def trigger_kwargs(self, *, end_from_trigger: bool) -> dict[str, Any]:
        """The :class:`~supervisor_lib.triggers.llm.LLMCallTrigger` arguments (plain JSON values); the templated
        fields travel apart so the triggerer can render them."""
        from supervisor_lib.triggers.llm import trigger_kwargs

        return trigger_kwargs(self.settings(), end_from_trigger=end_from_trigger)

    def execute(self, context: Any) -> dict[str, Any]:
        skip_unless(self.when)
        if self.deferrable:  # started on a worker after all (e.g. dag.test()): defer from here
            from supervisor_lib.triggers.llm import LLMCallTrigger

            # The trigger ends the task itself (no second worker start); dag.test() replays only an event's
            # payload into the worker, so there the result comes back through execute_complete instead.
            kwargs = self.trigger_kwargs(end_from_trigger=not in_dag_test())
            scope = dataclasses.asdict(self.call_scope(context, deferred=True))
            self.defer(trigger=LLMCallTrigger(**kwargs, scope=scope), method_name="execute_complete")
        from supervisor_lib.execution.calls import CallExecutor
        from supervisor_lib.execution.runner import result_summary

        executor = CallExecutor(self.settings(), self.call_scope(context), self.log, hooks=self._hooks)
        result = executor.run()
        self.log.info("%s", result_summary(result))
        return result

    def call_scope(self, context: Any, *, deferred: bool = False) -> CallScope:
        """Where this call happens, for recording, the response cache and budgets."""
        from supervisor_lib.execution.runner import CallScope

        tags = tuple(sorted(self.dag.tags or ())) if self.has_dag() else ()
        return CallScope.from_ti(context["ti"], task_type=self.call.task_type, tags=tags, deferred=deferred)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return its result, or re-raise its error with the same retry semantics."""
        from supervisor_lib.triggers.events import raise_from_event

        if event and event.get("status") == "success":
            return dict(event["result"])
        raise_from_event(event or {"error_class": "RetryableError", "message": "the trigger sent no event"})
        raise AssertionError("unreachable")


class AnthropicOperator(BaseLLMOperator):
    """One call to an Anthropic model (connection type ``anthropic``, default ``anthropic_default``)."""

    hook_class = AnthropicHook


class OpenAIOperator(BaseLLMOperator):
    """One call to an OpenAI (or OpenAI-compatible) model (connection type ``openai``, default ``openai_default``)."""

    hook_class = OpenAIHook


def operator_for(provider: str) -> type[BaseLLMOperator]:
    """The operator of a provider: built in, or the one its plugin names (imported now)."""
    from supervisor_lib import extensions

    builtin = {"anthropic": AnthropicOperator, "openai": OpenAIOperator}
    if provider in builtin:
        return builtin[provider]
    plugin = extensions.provider(provider)
    if plugin is None:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(builtin)}")
    found = extensions.import_object(plugin.operator, plugin, "operator")
    if not (isinstance(found, type) and issubclass(found, BaseLLMOperator)) or found.hook_class.provider != provider:
        raise extensions.PluginError(
            f"the operator {plugin.operator!r} of plugin provider {provider!r} must be a BaseLLMOperator subclass "
            f"whose hook_class serves {provider!r}, got {found!r}"
        )
    return found
