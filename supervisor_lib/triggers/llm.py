"""``LLMCallTrigger``: one supervised model call on the triggerer's event loop.

Nothing blocks the triggerer's loop: the SDKs are imported in a thread on first use (at module level the import
would stall every trigger for about two seconds when the triggerer loads this class), one async client per
connection config is shared by all calls on the loop, concurrent lookups of a connection or Variable share one
round trip, store access goes through ``asyncio.to_thread``, and a wall-clock deadline bounds the whole call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from supervisor_lib.analytics.ledger import ledger_for
from supervisor_lib.compat import push_trigger_result
from supervisor_lib.exceptions import FatalError, RetryableError, SupervisorError
from supervisor_lib.providers.calls import CallRunner, CallScope, result_summary
from supervisor_lib.providers.policy import AttemptPolicy
from supervisor_lib.providers.registry import hook_class_for
from supervisor_lib.providers.types import LLMRequest
from supervisor_lib.routing.calls import RoutedCall, RouteOptions, budget_router, routed_request
from supervisor_lib.routing.router import Router
from supervisor_lib.templating import when_truthy
from supervisor_lib.triggers.events import error_event

CLASSPATH = "supervisor_lib.triggers.llm.LLMCallTrigger"


class LLMCallTrigger(BaseTrigger):
    """Make one model call and end the task from the triggerer (or resume it on a worker with the error).

    All arguments are plain JSON values, so the trigger serializes into the metadata DB as is. With
    ``start_from_trigger`` the triggerer renders the templated ones before :meth:`run`.
    """

    template_fields = ("prompt", "messages", "system", "model", "when")

    def __init__(
        self,
        *,
        provider: str | None = None,
        conn_id: str | None = None,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output_schema: dict[str, Any] | None = None,
        prompt_cache: bool = True,
        budget_usd: float | None = None,
        cache: bool = True,
        task_type: str = "llm",
        tags: list[str] | None = None,
        when: Any = None,
        deadline_s: float = 900.0,
        policy: dict[str, Any] | None = None,
        analytics_conn_id: str | None = None,
        end_from_trigger: bool = True,
        scope: dict[str, Any] | None = None,
        route: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        # Never raise here: a trigger that fails to build in the triggerer leaves its id behind in Airflow 3.3.2's
        # triggerer, which on SQLite then ignores the next trigger given that id (supervisor_lib/compat.py, 7).
        # Missing or unknown arguments (an older or newer Supervisor wrote them) become an error event in run().
        super().__init__()
        self.unknown = sorted(unknown)
        self.provider, self.conn_id = provider, conn_id
        self.prompt, self.messages, self.system, self.model = prompt, messages, system, model
        self.max_tokens, self.temperature, self.output_schema = max_tokens, temperature, output_schema
        self.prompt_cache, self.budget_usd, self.cache = prompt_cache, budget_usd, cache
        self.task_type, self.tags, self.when = task_type, list(tags or []), when
        self.deadline_s, self.policy = deadline_s, dict(policy or {})
        self.analytics_conn_id, self.end_from_trigger = analytics_conn_id, end_from_trigger
        # Known when deferring from a worker; with start_from_trigger it comes from the triggerer's task instance.
        self.scope = scope
        #: routing options (``RoutedOperator``): the router picks provider and model, ``provider`` is unused; with
        #: ``pinned`` the call keeps its own provider and model and only the budgets are checked
        self.route = route

    def serialize(self) -> tuple[str, dict[str, Any]]:
        keys = (
            "provider",
            "conn_id",
            "prompt",
            "messages",
            "system",
            "model",
            "max_tokens",
            "temperature",
            "output_schema",
            "prompt_cache",
            "budget_usd",
            "cache",
            "task_type",
            "tags",
            "when",
            "deadline_s",
            "policy",
            "analytics_conn_id",
            "end_from_trigger",
            "scope",
            "route",
        )
        return CLASSPATH, {key: getattr(self, key) for key in keys}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if problem := self._problem():
            yield TriggerEvent(error_event(FatalError(problem)))
            return
        scope = (
            CallScope(**{**self.scope, "tags": tuple(self.scope.get("tags") or ())})
            if self.scope
            else CallScope.from_ti(self.task_instance, task_type=self.task_type, tags=tuple(self.tags), deferred=True)
        )
        if self.when is not None and not when_truthy(self.when):
            self.log.info("skipped: its `when` condition rendered %r", self.when)
            yield TaskSkippedEvent()
            return
        try:
            result = await asyncio.wait_for(self._call(scope), timeout=self.deadline_s)
        except TimeoutError:
            yield TriggerEvent(error_event(RetryableError(f"the call did not finish within {self.deadline_s:.0f}s")))
            return
        except (SupervisorError, ValueError) as err:
            yield TriggerEvent(error_event(err))
            return
        self.log.info("%s", result_summary(result))
        if self.end_from_trigger:
            await push_trigger_result(
                result, dag_id=scope.dag_id, task_id=scope.task_id, run_id=scope.run_id, map_index=scope.map_index
            )
            yield TaskSuccessEvent()
        else:
            yield TriggerEvent({"status": "success", "result": result})

    def _problem(self) -> str | None:
        """Why this trigger cannot run (it was written by another Supervisor version), or ``None``."""
        if self.unknown:
            self.log.warning("ignoring trigger arguments this Supervisor does not know: %s", ", ".join(self.unknown))
        if self.route is None and not (self.provider and self.conn_id):
            return ("the trigger has no provider or connection: it was created by another Supervisor version or a "
                    "broken operator; clear the task to run it again")  # fmt: skip
        return None

    async def _call(self, scope: CallScope) -> dict[str, Any]:
        options = RouteOptions.from_dict(self.route) if self.route is not None else None
        if options is not None and not options.pinned:
            return await self._routed_call(scope)
        hook_class = hook_class_for(str(self.provider))
        sdk = asyncio.ensure_future(hook_class.aimport_sdk())  # overlaps the connection lookup
        config = await hook_class(conn_id=str(self.conn_id)).aconfig()
        await sdk
        request = LLMRequest.from_fields(self, default_model=config.default_model, where=scope.describe())
        store = await asyncio.to_thread(ledger_for, self.analytics_conn_id)
        if options is not None:  # the task's own model, under the budgets when any applies
            router = await asyncio.to_thread(budget_router, options, scope, self.analytics_conn_id, self.log)
            if router is not None:
                call = RoutedCall(dataclasses.replace(options, model=request.model), request, scope, store,
                                  AttemptPolicy(**self.policy), self.budget_usd, self.cache)  # fmt: skip
                return await call.arun(router)
        runner = CallRunner(
            hook_class=hook_class,
            config=config,
            store=store,
            policy=AttemptPolicy(**self.policy),
            scope=scope,
            budget_usd=self.budget_usd,
            use_cache=self.cache,
        )
        return await runner.arun(request, await hook_class.ashared_client(config))

    async def _routed_call(self, scope: CallScope) -> dict[str, Any]:
        """The router picks the provider and model and fails over within the try (``docs/routing.md``)."""
        request = routed_request(self, scope.describe())
        store = await asyncio.to_thread(ledger_for, self.analytics_conn_id)
        router = await asyncio.to_thread(Router.for_runtime, self.analytics_conn_id, logger=self.log)
        call = RoutedCall(RouteOptions.from_dict(self.route or {}), request, scope, store,
                          AttemptPolicy(**self.policy), self.budget_usd, self.cache)  # fmt: skip
        return await call.arun(router)
