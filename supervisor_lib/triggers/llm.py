"""``LLMCallTrigger``: one supervised model call on the triggerer's event loop.

The call's settings arrive as one JSON object (:class:`~supervisor_lib.execution.settings.CallSettings`), the
templated ones beside it so the triggerer can render them, and
:class:`~supervisor_lib.execution.calls.CallExecutor` runs the call exactly as on a worker. Nothing blocks the
loop: the SDKs are imported in a thread on first use, one async client per connection config is shared by all
calls on the loop, concurrent lookups of a connection or Variable share one round trip, store work runs in
threads, and a wall-clock deadline bounds the whole call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from supervisor_lib.compat import push_trigger_result
from supervisor_lib.exceptions import FatalError, RetryableError, SupervisorError
from supervisor_lib.execution.runner import CallScope, result_summary
from supervisor_lib.execution.settings import CallSettings
from supervisor_lib.templating import when_truthy
from supervisor_lib.triggers.events import error_event

CLASSPATH = "supervisor_lib.triggers.llm.LLMCallTrigger"


def trigger_kwargs(settings: CallSettings, *, end_from_trigger: bool) -> dict[str, Any]:
    """The trigger's kwargs for ``settings``: the settings' JSON, with the templated fields beside it."""
    data = settings.to_dict()
    templated = {name: data.pop(name) for name in CallSettings.TEMPLATED}
    return {"settings": data, **templated, "end_from_trigger": end_from_trigger}


class LLMCallTrigger(BaseTrigger):
    """Make one model call and end the task from the triggerer (or resume it on a worker with the error).

    :param settings: the call's :class:`~supervisor_lib.execution.settings.CallSettings` as JSON, without the
        templated fields, which come as their own arguments (``prompt``, ``messages``, ``system``, ``model``,
        ``when``) so that Airflow renders them.
    :param scope: where the call happens, when it deferred from a worker; with ``start_from_trigger`` it comes
        from the triggerer's task instance.
    :param end_from_trigger: end the task here (its result pushed as XCom) instead of resuming it on a worker.
    """

    template_fields = CallSettings.TEMPLATED

    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        system: str | None = None,
        model: str | None = None,
        when: Any = None,
        scope: dict[str, Any] | None = None,
        end_from_trigger: bool = True,
        **unknown: Any,
    ) -> None:
        # Never raise here: a trigger that fails to build in the triggerer leaves its id behind in Airflow 3.3.2's
        # triggerer, which on SQLite then ignores the next trigger given that id (supervisor_lib/compat.py, 7).
        # Missing or unknown arguments (an older or newer Supervisor wrote them) become an error event in run().
        super().__init__()
        self.settings = dict(settings or {})
        self.prompt, self.messages, self.system, self.model, self.when = prompt, messages, system, model, when
        self.scope, self.end_from_trigger, self.unknown = scope, end_from_trigger, dict(unknown)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        templated = {name: getattr(self, name) for name in CallSettings.TEMPLATED}
        return CLASSPATH, {"settings": self.settings, **templated, "scope": self.scope,
                           "end_from_trigger": self.end_from_trigger}  # fmt: skip

    def call_settings(self) -> CallSettings:
        """The settings with the (rendered) templated fields; ``FatalError`` when they cannot make a call."""
        if not self.settings.get("provider"):
            raise FatalError("the trigger has no call settings: it was created by another Supervisor version or a "
                             "broken operator; clear the task to run it again")  # fmt: skip
        settings, unknown = CallSettings.from_dict(self.settings)
        if unknown or self.unknown:
            names = ", ".join([*unknown, *self.unknown])
            self.log.warning("ignoring call settings this Supervisor does not know: %s", names)
        return settings.with_values(**{name: getattr(self, name) for name in CallSettings.TEMPLATED})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            settings = self.call_settings()
        except FatalError as err:
            yield TriggerEvent(error_event(err))
            return
        scope = self._scope(settings)
        if settings.when is not None and not when_truthy(settings.when):
            self.log.info("skipped: its `when` condition rendered %r", settings.when)
            yield TaskSkippedEvent()
            return
        try:
            result = await asyncio.wait_for(self._call(settings, scope), timeout=settings.deadline_s)
        except TimeoutError:
            message = f"the call did not finish within {settings.deadline_s:.0f}s"
            yield TriggerEvent(error_event(RetryableError(message)))
            return
        except SupervisorError as err:
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

    async def _call(self, settings: CallSettings, scope: CallScope) -> dict[str, Any]:
        from supervisor_lib.execution.calls import CallExecutor

        return await CallExecutor(settings, scope, self.log).arun()

    def _scope(self, settings: CallSettings) -> CallScope:
        if self.scope:
            return CallScope(**{**self.scope, "tags": tuple(self.scope.get("tags") or ())})
        return CallScope.from_ti(self.task_instance, task_type=settings.task_type, tags=settings.tags, deferred=True)
