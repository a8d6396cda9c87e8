"""Model calls for coding tasks: the ``Ask`` callable the loop and the review use, and its real implementation.

The loop never sees an SDK: it calls an ``Ask`` with a step name (``"iteration-2"``, ``"review-1"``), the
messages and the system prompt, and gets an :class:`Answer`. :class:`ModelChat` implements it with a provider
hook and :class:`~supervisor_lib.providers.calls.CallRunner`, so each call goes through the response cache
(a retried task re-uses the answers already paid for), the task's budget, attempts with back-off, structured
output validation and analytics recording, under its own step so call ids stay unique.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from supervisor_lib.providers.base import BaseLLMHook
    from supervisor_lib.providers.calls import CallScope, CallStore
    from supervisor_lib.providers.policy import AttemptPolicy
    from supervisor_lib.providers.types import LLMRequest

__all__ = ["Answer", "Ask", "Message", "ModelChat", "RoutedChat", "Tally"]

Message = dict[str, str]
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass(frozen=True)
class Answer:
    """One model answer: its text, the parsed structured output (when a schema was asked for) and its cost.

    :param cost_usd: ``None`` when the model's price is unknown; 0 for an answer re-used from the cache.
    """

    text: str
    output: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0
    provider: str = ""
    model: str = ""
    cached: bool = False

    @property
    def tokens(self) -> int:
        """Input plus output tokens (cached input included)."""
        return sum(self.usage.get(key, 0) for key in USAGE_KEYS)

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> Answer:
        """From a :meth:`CallRunner.run` result."""
        return cls(
            text=result.get("text") or "",
            output=result.get("output"),
            usage={key: int(result.get("usage", {}).get(key, 0)) for key in USAGE_KEYS},
            cost_usd=result.get("cost_usd"),
            provider=str(result.get("provider", "")),
            model=str(result.get("model", "")),
            cached=bool(result.get("cached", False)),
        )


class Ask(Protocol):
    """Send ``messages`` (with ``system``) as the logical call ``step``; return the answer.

    With ``output_schema`` the answer's ``output`` holds the parsed, schema-valid JSON.
    """

    def __call__(
        self, step: str, messages: Sequence[Message], *, system: str, output_schema: dict[str, Any] | None = None
    ) -> Answer: ...


@dataclass
class Tally:
    """Running totals of tokens, calls and cost; unpriced calls are counted, never priced at zero silently."""

    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    calls: int = 0
    cached_calls: int = 0
    unpriced_calls: int = 0
    cost: float = 0.0

    def add(self, answer: Answer) -> None:
        """Count one answer."""
        for key in USAGE_KEYS:
            self.usage[key] += answer.usage.get(key, 0)
        self.calls += 1
        self.cached_calls += answer.cached
        if answer.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost += answer.cost_usd

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (an iteration's into the task's)."""
        for key in USAGE_KEYS:
            self.usage[key] += other.usage[key]
        self.calls += other.calls
        self.cached_calls += other.cached_calls
        self.unpriced_calls += other.unpriced_calls
        self.cost += other.cost

    @property
    def tokens(self) -> int:
        """Every token counted (input, output, cache reads and writes)."""
        return sum(self.usage.values())

    @property
    def cost_usd(self) -> float:
        """The priced calls' cost, rounded to a millionth of a dollar."""
        return round(self.cost, 6)

    def as_dict(self) -> dict[str, int]:
        """The ``usage`` of a result: token counts plus ``calls``, ``cached_calls`` and ``unpriced_calls``."""
        counts = {"calls": self.calls, "cached_calls": self.cached_calls, "unpriced_calls": self.unpriced_calls}
        return {**self.usage, **counts}


@dataclass
class ModelChat:
    """An :class:`Ask` backed by a provider hook and the call runner.

    :param provider: ``anthropic`` or ``openai``.
    :param scope: the task instance try; each call gets ``step`` set to the step it is asked for.
    :param store: the analytics ledger (response cache, spend, recording); ``None`` for none.
    :param model: the model; ``None`` for the connection's ``default_model``.
    :param budget_usd: the task's budget, all tries and steps together.
    """

    provider: str
    scope: CallScope
    store: CallStore | None
    model: str | None = None
    conn_id: str | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    budget_usd: float | None = None
    use_cache: bool = True
    policy: AttemptPolicy | None = None

    @cached_property
    def hook(self) -> BaseLLMHook:
        from supervisor_lib.providers.registry import hook_class_for

        return hook_class_for(self.provider)(conn_id=self.conn_id)

    @property
    def label(self) -> str:
        """``provider model`` (the model as configured, or the connection's default)."""
        return f"{self.provider} {self.model or self.hook.config.default_model or '(default model)'}"

    def __call__(
        self, step: str, messages: Sequence[Message], *, system: str, output_schema: dict[str, Any] | None = None
    ) -> Answer:
        from supervisor_lib.providers.calls import CallRunner
        from supervisor_lib.providers.policy import AttemptPolicy

        hook = self.hook
        model = self.model or hook.config.default_model
        request = _request(model, step, messages, system, output_schema, self)
        runner = CallRunner(
            hook_class=type(hook),
            config=hook.config,
            scope=dataclasses.replace(self.scope, step=step),
            store=self.store,
            policy=self.policy or AttemptPolicy(),
            budget_usd=self.budget_usd,
            use_cache=self.use_cache,
        )
        return Answer.from_result(runner.run(request, hook.client))


@dataclass
class RoutedChat:
    """An :class:`Ask` whose every call is routed (``provider: auto``): each call is planned from the shared health
    and budgets, reserves its worst case against every budget that applies, fails over within the try, and settles
    what it spent — :class:`~supervisor_lib.routing.calls.RoutedCall`, as for an llm task.

    The conversation stays with the model that answered last (it is the preferred model of the next plan), so a
    coding loop changes model only when that model fails over or a breaker or budget rules it out. With pinned
    options (a task that names its provider) nothing is routed: each call only reserves against the budgets.

    :param options: the routing options (:class:`~supervisor_lib.routing.calls.RouteOptions`).
    :param router: the router (:meth:`~supervisor_lib.routing.router.Router.for_runtime`).
    """

    options: Any
    router: Any
    scope: CallScope
    store: CallStore | None
    max_tokens: int = 4096
    temperature: float | None = None
    budget_usd: float | None = None
    use_cache: bool = True
    policy: AttemptPolicy | None = None
    #: the model of the last answer and the reasons of the plan that first chose it: ``{provider, model, reasons}``
    last: dict[str, Any] | None = None
    #: every candidate skipped or failed over, across all calls
    failovers: list[dict[str, str]] = field(default_factory=list)
    #: answering models in order of first answer
    models: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``provider model`` of the last answer (``routed`` before the first)."""
        return f"{self.last['provider']} {self.last['model']}" if self.last else "routed"

    def summary(self) -> dict[str, Any] | None:
        """The ``routed`` entry of a coding task's result: the last answer's model and reasons, and every
        failover of the task's calls; ``None`` before any call was answered."""
        if self.last is None:
            return None
        return {**self.last, "failovers": list(self.failovers), "models": list(self.models)}

    def __call__(
        self, step: str, messages: Sequence[Message], *, system: str, output_schema: dict[str, Any] | None = None
    ) -> Answer:
        from supervisor_lib.providers.policy import AttemptPolicy
        from supervisor_lib.routing.calls import ROUTED_MODEL, RoutedCall

        request = _request(ROUTED_MODEL, step, messages, system, output_schema, self)
        options = self.options
        if self.last is not None:  # stay with the model that answered last
            options = dataclasses.replace(options, model=self.last["model"])
        call = RoutedCall(
            options, request, dataclasses.replace(self.scope, step=step), self.store,
            self.policy or AttemptPolicy(), self.budget_usd, self.use_cache,
        )  # fmt: skip
        result = call.run(self.router)
        if "routed" not in result:  # a pinned call (the task's own model, under its budgets): nothing was routed
            return Answer.from_result(result)
        routed = result["routed"]
        self.failovers.extend(routed["failovers"])
        name = f"{routed['provider']}/{routed['model']}"
        if name not in self.models:
            self.models.append(name)
        if self.last is None or self.last["model"] != routed["model"]:  # why this model: the plan that chose it
            self.last = {key: routed[key] for key in ("provider", "model", "reasons")}
        return Answer.from_result(result)


def _request(
    model: str | None, step: str, messages: Sequence[Message], system: str, output_schema: dict[str, Any] | None,
    chat: ModelChat | RoutedChat,
) -> LLMRequest:  # fmt: skip
    """The request of one chat call (``ValueError`` when no model is known)."""
    from supervisor_lib.providers.types import LLMRequest

    return LLMRequest.build(
        model=model, default_model=None, messages=[dict(message) for message in messages], system=system,
        max_tokens=chat.max_tokens, temperature=chat.temperature, output_schema=output_schema,
        where=f"{chat.scope.describe()} ({step})",
    )  # fmt: skip
