"""Model calls for coding tasks: the ``Ask`` callable the loop and the review use, and its real implementation.

The loop never sees an SDK: it calls an ``Ask`` with a step name (``"iteration-2"``, ``"review-1"``), the
messages and the system prompt, and gets an :class:`Answer`. :class:`Chat` implements it on the same executor
as every other model call (:mod:`supervisor_lib.execution.calls`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from supervisor_lib.execution.calls import CallExecutor
    from supervisor_lib.execution.runner import CallScope, CallStore
    from supervisor_lib.execution.settings import CallSettings
    from supervisor_lib.providers.policy import AttemptPolicy

__all__ = ["Answer", "Ask", "Chat", "Message", "Tally", "model_chat"]

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
class Chat:
    """An :class:`Ask` whose calls go through :class:`~supervisor_lib.execution.calls.CallExecutor`, so each is a
    plain, budgeted or routed call as the task's settings say, with the response cache (a retried task re-uses the
    answers already paid for), the task's budget, attempts with back-off, structured-output validation and
    recording, under its own step so call ids stay unique.

    A routed chat (``provider: auto``) stays with the model that answered last (it is the preferred model of the
    next plan), so a coding loop changes model only when that model fails over or a breaker or budget rules it out.

    :param executor: the task try's executor (shared by the author and the reviewer: one router, one budget read).
    :param settings: this model's settings (provider, model, limits, budgets, routing); each call adds its
        messages, system prompt and output schema.
    """

    executor: CallExecutor
    settings: CallSettings
    #: the model of the last answer and the reasons of the plan that first chose it: ``{provider, model, reasons}``
    last: dict[str, Any] | None = None
    #: every candidate skipped or failed over, across all calls
    failovers: list[dict[str, str]] = field(default_factory=list)
    #: answering models in order of first answer
    models: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``provider model``: the model as configured (or the connection's default), or the last routed answer."""
        if self.settings.routed:
            return f"{self.last['provider']} {self.last['model']}" if self.last else "routed"
        from supervisor_lib.providers.registry import hook_class_for

        hook = hook_class_for(self.settings.provider)(conn_id=self.settings.conn_id)
        model = self.settings.model or hook.config.default_model
        return f"{self.settings.provider} {model or '(default model)'}"

    def summary(self) -> dict[str, Any] | None:
        """The ``routed`` entry of a coding task's result: the last answer's model and reasons, and every
        failover of the task's calls; ``None`` before any routed call was answered."""
        if self.last is None:
            return None
        return {**self.last, "failovers": list(self.failovers), "models": list(self.models)}

    def __call__(
        self, step: str, messages: Sequence[Message], *, system: str, output_schema: dict[str, Any] | None = None
    ) -> Answer:
        settings = self.settings.with_values(
            messages=[dict(message) for message in messages], prompt=None, system=system, output_schema=output_schema,
            model=self.last["model"] if self.last is not None else self.settings.model,
        )  # fmt: skip
        result = self.executor.run(settings, step=step)
        if "routed" in result:
            self._note(result["routed"])
        return Answer.from_result(result)

    def _note(self, routed: dict[str, Any]) -> None:
        self.failovers.extend(routed["failovers"])
        name = f"{routed['provider']}/{routed['model']}"
        if name not in self.models:
            self.models.append(name)
        if self.last is None or self.last["model"] != routed["model"]:  # why this model: the plan that chose it
            self.last = {key: routed[key] for key in ("provider", "model", "reasons")}


def model_chat(
    provider: str,
    scope: CallScope,
    store: CallStore | None,
    *,
    model: str | None = None,
    conn_id: str | None = None,
    max_tokens: int = 4096,
    temperature: float | None = None,
    budget_usd: float | None = None,
    use_cache: bool = True,
    policy: AttemptPolicy | None = None,
    log: Any = None,
) -> Chat:
    """A :class:`Chat` with one provider's model, recording in ``store`` (``None``: nowhere), outside any task
    (the benchmark harness and tests; operators build theirs through :class:`~supervisor_lib.coding.models.
    TaskModels`)."""
    from supervisor_lib.execution.calls import CallExecutor
    from supervisor_lib.execution.settings import CallSettings
    from supervisor_lib.providers.policy import AttemptPolicy

    settings = CallSettings(provider=provider, conn_id=conn_id, model=model, max_tokens=max_tokens,
                            temperature=temperature, budget_usd=budget_usd, cache=use_cache,
                            policy=policy or AttemptPolicy(), task_type=scope.task_type)  # fmt: skip
    return Chat(CallExecutor(settings, scope, log, store_override=store), settings)
