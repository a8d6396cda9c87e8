"""The settings of one model call: typed, built once by the operator, serialised once for the trigger.

:class:`CallSettings` is the single list of what a call can be told (the prompt, the model, the limits, the budgets,
the routing options); operators build it from their arguments, the trigger rebuilds it from its JSON, and
:class:`~supervisor_lib.execution.calls.CallExecutor` runs it. Adding a call option means adding a field here.
Plain values only; nothing heavy is imported (DAG files build these at parse time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from supervisor_lib.providers.policy import AttemptPolicy

if TYPE_CHECKING:
    from supervisor_lib.execution.router import RouteScope
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.providers.types import LLMRequest
    from supervisor_lib.routing.policy import RouteRequest

#: the model a routed request carries until the router replaces it with its candidate's
ROUTED_MODEL = "(routed)"


@dataclass(frozen=True)
class RouteOptions:
    """What a call asks the router for; plain values, so they travel to the trigger as JSON.

    :param budget: the DAG's ``budget:`` block (see :class:`~supervisor_lib.routing.budgets.BudgetDeclaration`).
    """

    capabilities: tuple[str, ...] = ()
    tier: str | None = None
    provider: str | None = None
    model: str | None = None
    budget: Mapping[str, Any] | None = None
    team: str | None = None
    #: not routed: ``provider`` and ``model`` (resolved, never ``None``) are the task's own, and only the budgets
    #: are checked (see :func:`~supervisor_lib.routing.policy.pinned_plan`)
    pinned: bool = False
    #: the connection of a pinned call (routed calls use the catalogue's)
    conn_id: str | None = None

    @classmethod
    def pinned_to(cls, provider: str, model: str | None, conn_id: str | None, budget: Mapping[str, Any] | None,
                  team: str | None = None) -> RouteOptions:  # fmt: skip
        """The options of a call to the task's own provider and model under the budgets (no routing)."""
        return cls(provider=provider, model=model, budget=budget, team=team, pinned=True, conn_id=conn_id)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "capabilities": list(self.capabilities)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        return cls(**{**values, "capabilities": tuple(data.get("capabilities") or ())})

    def route_request(self, task_type: str, request: LLMRequest) -> RouteRequest:
        """What the router needs to know about ``request`` (its prompt size, answer size and structure)."""
        from supervisor_lib.providers.policy import estimate_input_tokens
        from supervisor_lib.routing.policy import RouteRequest

        return RouteRequest(
            task_type=task_type,
            capabilities=frozenset(self.capabilities),
            provider=None if self.provider in (None, "auto") else self.provider,
            model=self.model,
            tier=self.tier,
            input_tokens=estimate_input_tokens(request),
            max_tokens=request.max_tokens,
            sends=2 if request.output_schema else 1,
            pinned=self.pinned,
        )

    def route_scope(self, scope: CallScope) -> RouteScope:
        """The budgets' view of a call scope."""
        from supervisor_lib.execution.router import RouteScope
        from supervisor_lib.routing.budgets import BudgetDeclaration

        where = f"DAG {scope.dag_id!r} budget"
        budget = BudgetDeclaration.from_mapping(self.budget, where) if self.budget else None
        team = self.team or (budget.team if budget else None)
        return RouteScope(scope.dag_id, scope.run_id, scope.task_id, scope.map_index, scope.try_number,
                          scope.task_type, team, scope.tags, budget, where)  # fmt: skip


@dataclass(frozen=True)
class CallSettings:
    """Everything one model call is told, apart from where it happens (:class:`~supervisor_lib.execution.runner.
    CallScope`).

    :param provider: ``anthropic`` or ``openai``; for a routed call the provider of its defaults only.
    :param conn_id: the provider connection (routed calls use the catalogue's).
    :param prompt: the user prompt; give it or ``messages``. Templated, as are ``messages``, ``system``, ``model``
        and ``when`` (:attr:`TEMPLATED`).
    :param budget_usd: the most the task may spend, all tries together.
    :param cache: re-use a response already paid for in this DAG run.
    :param budget: the DAG's spend limits across runs (a spec's ``budget:`` block); ``team`` its team.
    :param route: set when the router chooses the provider and model (``provider: auto``).
    :param deadline_s: wall-clock limit of the whole call when it waits in the triggerer.
    """

    provider: str
    conn_id: str | None = None
    model: str | None = None
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    output_schema: dict[str, Any] | None = None
    prompt_cache: bool = True
    budget_usd: float | None = None
    cache: bool = True
    task_type: str = "llm"
    tags: tuple[str, ...] = ()
    when: Any = None
    deadline_s: float = 900.0
    policy: AttemptPolicy = field(default_factory=AttemptPolicy)
    analytics_conn_id: str | None = None
    budget: Mapping[str, Any] | None = None
    team: str | None = None
    route: RouteOptions | None = None

    #: the fields Airflow renders (on a worker, or in the triggerer for a task that starts there)
    TEMPLATED: ClassVar[tuple[str, ...]] = ("prompt", "messages", "system", "model", "when")

    @property
    def routed(self) -> bool:
        """Whether the router picks the provider and model."""
        return self.route is not None

    def options(self, model: str | None) -> RouteOptions:
        """The routing options of this call: the router's (preferring ``model``), or the task's own model pinned
        under its budgets."""
        if self.route is not None:
            return dataclasses.replace(self.route, model=model) if model else self.route
        return RouteOptions.pinned_to(self.provider, model, self.conn_id, self.budget, self.team)

    def request(self, default_model: str | None, where: str) -> LLMRequest:
        """The provider-neutral request; a routed one carries :data:`ROUTED_MODEL` until the router fills in its
        candidate's.

        :raises FatalError: no model is known, or the prompt rendered empty: no retry can help, on a worker or in
            the triggerer alike.
        """
        from supervisor_lib.exceptions import FatalError
        from supervisor_lib.providers.types import LLMRequest

        try:
            return LLMRequest.build(
                model=ROUTED_MODEL if self.routed else self.model, default_model=default_model, prompt=self.prompt,
                messages=self.messages, system=self.system, max_tokens=self.max_tokens,
                temperature=self.temperature, output_schema=self.output_schema, prompt_cache=self.prompt_cache,
                where=where,
            )  # fmt: skip
        except ValueError as err:
            raise FatalError(str(err)) from err

    def pool(self, task_id: str = "") -> str | None:
        """The Airflow pool a task making this call queues in when it names none
        (:func:`~supervisor_lib.routing.pools.default_pool`)."""
        from supervisor_lib.routing.pools import default_pool

        if self.route is None:
            return default_pool(self.provider)
        route = self.route
        return default_pool(self.provider, routed=True, task_kind=self.task_type, capabilities=route.capabilities,
                            tier=route.tier, route_provider=route.provider, model=route.model,
                            max_tokens=self.max_tokens, structured=self.output_schema is not None,
                            task_id=task_id)  # fmt: skip

    def with_values(self, **values: Any) -> CallSettings:
        """A copy with some fields replaced (rendered templates, a chat step's messages)."""
        return dataclasses.replace(self, **values)

    # -- JSON, for the trigger -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the trigger's kwargs are stored in the metadata DB)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["tags"] = list(self.tags)
        data["policy"] = dataclasses.asdict(self.policy)
        data["budget"] = dict(self.budget) if self.budget else None
        data["route"] = self.route.to_dict() if self.route is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> tuple[CallSettings, list[str]]:
        """The settings, and the names of keys this version does not know (an older or newer writer)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["tags"] = tuple(values.get("tags") or ())
        values["policy"] = _policy(values.get("policy"))
        if values.get("route") is not None:
            values["route"] = RouteOptions.from_dict(values["route"])
        return cls(**values), sorted(set(data) - known)


def _policy(data: Any) -> AttemptPolicy:
    if isinstance(data, AttemptPolicy):
        return data
    known = {f.name for f in dataclasses.fields(AttemptPolicy)}
    return AttemptPolicy(**{key: value for key, value in dict(data or {}).items() if key in known})
