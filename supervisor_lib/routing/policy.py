"""The routing decision: which models may answer a call, in which order, and why the others may not (pure).

The policy, applied to every model of the catalogue (in name order, so the outcome never depends on file order):

1. **Provider** — with an explicit provider only its models remain.
2. **Capabilities** — the model must have every capability the task type needs plus the task's own.
3. **Context** — the prompt's estimated tokens plus ``max_tokens`` must fit the model's context window.
4. **Tier** — the model's tier must be at least the requested one (``tier``, else the pinned model's, else the
   catalogue's ``default_tier``). Budget pressure lowers that floor (see :mod:`~supervisor_lib.routing.forecast`).
5. **Price** — a model without a price cannot be budgeted, so it is never routed to.
6. **Health** — the worse of the provider's and the model's circuit breaker must be closed, degraded, or
   half-open with its probe still free.
7. **Budget** — the call's worst-case cost must fit every budget that applies (spent + reserved + estimate).

A **pinned** request (a task that names its provider and model) is not routed: its plan (:func:`pinned_plan`) has
that one model, checked against the budgets only — breakers and the catalogue do not apply to a model the task
chose itself, and it never fails over.

The survivors are ordered by: the pinned ``model`` first (unless the budget is under pressure), then health
(healthy and probing before degraded), then tier distance above the requested tier (none under pressure), then
worst-case cost, then provider and model name (the final tie-break). The first is called; the rest are the
failover order. Each rejected model carries the first rule it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from supervisor_lib.routing.budgets import Charge, Usage, blocking, usd
from supervisor_lib.routing.catalog import Catalog, ModelEntry
from supervisor_lib.routing.forecast import BudgetForecast, Pressure
from supervisor_lib.routing.health import BreakerState, BreakerView, WindowStats, combined, probe_keys

#: (provider, model) → (provider breaker, model breaker)
HealthLookup = Callable[[str, str], tuple[BreakerView, BreakerView]]


@dataclass(frozen=True)
class RouteRequest:
    """What a call needs.

    :param capabilities: needed on top of the task type's (catalogue ``task_types``).
    :param provider: restrict to one provider; ``None`` or ``"auto"`` for any.
    :param model: try this model first (it must be in the catalogue).
    :param tier: the lowest acceptable quality tier; default the pinned model's, else the catalogue's.
    :param input_tokens: the prompt's estimated size; with ``max_tokens`` it must fit the context window.
    :param sends: sends the call may make (2 when a schema-invalid answer gets a corrective retry).
    """

    task_type: str = "llm"
    capabilities: frozenset[str] = frozenset()
    provider: str | None = None
    model: str | None = None
    tier: str | None = None
    input_tokens: int = 0
    max_tokens: int = 1024
    sends: int = 1
    #: the task names its provider and model (not ``provider: auto``): no choice, only the budgets are checked
    pinned: bool = False


@dataclass(frozen=True)
class Candidate:
    """A model that may answer, in failover order.

    :param probe_keys: breakers that are half-open: a probe must be claimed on each before the call.
    """

    provider: str
    model: str
    tier: str
    estimate_usd: float
    health: BreakerState
    reason: str
    probe_keys: tuple[str, ...] = ()
    pool: str | None = None
    conn_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class Rejection:
    """A model that may not answer, and the first rule it failed (``retry_at``: when a breaker half-opens)."""

    provider: str
    model: str
    rule: str
    reason: str
    retry_at: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


_PRESSURE = {
    Pressure.NORMAL: "",
    Pressure.PREFER_CHEAPER: " (budget pressure: one tier lower allowed, cheapest first)",
    Pressure.CHEAPEST: " (budget pressure: any tier, cheapest first)",
}


@dataclass(frozen=True)
class RoutePlan:
    """The decision for one call: the candidates in order, the rejected models, and the context it was made in."""

    request: RouteRequest
    required: frozenset[str]
    tier: str
    pressure: Pressure
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]
    forecasts: tuple[BudgetForecast, ...] = ()
    notes: tuple[str, ...] = field(default=())
    #: the budgets in force, in their current windows: the failover loop reserves against them
    charges: tuple[Charge, ...] = ()

    @property
    def chosen(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def explain(self) -> str:
        """The decision as log lines: what was needed, every candidate in order, every rejection."""
        needs = ", ".join(sorted(self.required)) or "no special capabilities"
        if self.request.pinned:
            lines = [f"budget check for {self.request.provider}/{self.request.model} (named by the task, not routed)"]
        else:
            lines = [f"route for {self.request.task_type!r}: needs {needs}; tier >= {self.tier}"
                     f"{_PRESSURE[self.pressure]}"]  # fmt: skip
        lines += [f"  note: {note}" for note in self.notes]
        for i, c in enumerate(self.candidates, 1):
            lines.append(f"  {i}. {c.name}: {c.reason}" + ("  <- chosen" if i == 1 else ""))
        lines += [f"  rejected {r.name}: [{r.rule}] {r.reason}" for r in self.rejected]
        lines += [f"  budget {f.budget}: spent {usd(f.spent_usd)}, projected {usd(f.projected_usd)}"
                  for f in self.forecasts]  # fmt: skip
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the decision log and XCom."""
        return {
            "required": sorted(self.required),
            "tier": self.tier,
            "pressure": str(self.pressure),
            "candidates": [{**asdict(c), "health": str(c.health)} for c in self.candidates],
            "rejected": [
                {**asdict(r), "retry_at": r.retry_at.isoformat() if r.retry_at else None} for r in self.rejected
            ],
            "forecasts": [f.as_dict() for f in self.forecasts],
            "notes": list(self.notes),
        }


def decide(
    catalog: Catalog,
    request: RouteRequest,
    health: HealthLookup,
    charges: tuple[Charge, ...] = (),
    usage: Mapping[tuple[str, str], Usage] | None = None,
    pressure: Pressure = Pressure.NORMAL,
) -> RoutePlan:
    """Apply the policy of the module docstring; never raises for a request the catalogue cannot serve."""
    required = catalog.required(request.task_type, request.capabilities)
    tier, notes = _requested_tier(catalog, request)
    floor = _floor(catalog, tier, pressure)
    rules = _Rules(catalog, request, required, floor, health, charges, usage or {})
    accepted: list[tuple[tuple[Any, ...], Candidate]] = []
    rejected: list[Rejection] = []
    for name in sorted(catalog.models):
        outcome = rules.check(catalog.models[name])
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        else:
            accepted.append((_rank(catalog, outcome, request, tier, pressure), outcome))
    if request.model and request.model not in catalog.models:
        notes.append(f"model {request.model!r} is not in the catalogue ({catalog.source}); it cannot be routed to")
    candidates = tuple(candidate for _, candidate in sorted(accepted, key=lambda pair: pair[0]))
    return RoutePlan(request, required, tier, pressure, candidates, tuple(rejected), notes=tuple(notes),
                     charges=charges)  # fmt: skip


def _requested_tier(catalog: Catalog, request: RouteRequest) -> tuple[str, list[str]]:
    if request.tier:
        catalog.tier_rank(request.tier)  # an unknown tier is an error, not a silent default
        return request.tier, []
    pinned = catalog.models.get(request.model or "")
    if pinned is not None:
        return pinned.tier, [f"tier {pinned.tier} taken from the requested model {pinned.name}"]
    return catalog.settings.default_tier, []


def _floor(catalog: Catalog, tier: str, pressure: Pressure) -> int:
    rank = catalog.tier_rank(tier)
    if pressure is Pressure.CHEAPEST:
        return 0
    return max(0, rank - 1) if pressure is Pressure.PREFER_CHEAPER else rank


@dataclass
class _Rules:
    catalog: Catalog
    request: RouteRequest
    required: frozenset[str]
    floor: int
    health: HealthLookup
    charges: tuple[Charge, ...]
    usage: Mapping[tuple[str, str], Usage]

    def check(self, model: ModelEntry) -> Candidate | Rejection:
        """The model as a candidate, or the first rule it fails."""
        req = self.request

        def reject(rule: str, reason: str, retry_at: datetime | None = None) -> Rejection:
            return Rejection(model.provider, model.name, rule, reason, retry_at)

        if req.provider not in (None, "auto", model.provider):
            return reject("provider", f"the task asks for provider {req.provider!r}")
        if missing := sorted(self.required - model.capabilities):
            return reject("capabilities", f"lacks {', '.join(missing)}")
        if (needed := req.input_tokens + req.max_tokens) > model.context_window:
            return reject("context", f"needs ~{needed} tokens; its context window is {model.context_window}")
        if self.catalog.tier_rank(model.tier) < self.floor:
            return reject("tier", f"tier {model.tier} is below {self.catalog.tiers[self.floor]}")
        estimate = model.worst_case_usd(req.input_tokens, req.max_tokens, req.sends)
        if estimate is None:
            return reject("price", "no price in models.yaml, so no budget could be enforced")
        provider_view, model_view = self.health(model.provider, model.name)
        view = combined(provider_view, model_view)
        if not view.eligible:
            return reject("health", f"breaker {view.key}: {view.reason}", view.open_until)
        if (charge := blocking(self.charges, self.usage, estimate, model.provider)) is not None:
            used = self.usage.get((charge.key, charge.window), Usage())
            return reject("budget", f"worst case {usd(estimate)} does not fit the {charge.describe()}: "
                                    f"{_committed(used)} (limit from {charge.limit.source})")  # fmt: skip
        probes = probe_keys(provider_view, model_view)
        entry = self.catalog.providers[model.provider]
        return Candidate(model.provider, model.name, model.tier, estimate, view.state,
                         _reason(model, view, estimate, req.model), probes, entry.pool, entry.conn_id)  # fmt: skip


def _committed(used: Usage) -> str:
    return f"spent {usd(used.spent_usd)} so far, {usd(used.reserved_usd)} reserved by calls in flight"


def _reason(model: ModelEntry, view: BreakerView, estimate: float, pinned: str | None) -> str:
    parts = ["the requested model"] if model.name == pinned else []
    parts += [f"{model.tier} tier", view.reason, f"worst case {usd(estimate)}"]
    return ", ".join(parts)


_HEALTH_RANK = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 0, BreakerState.DEGRADED: 1}


def _rank(catalog: Catalog, c: Candidate, request: RouteRequest, tier: str, pressure: Pressure) -> tuple[Any, ...]:
    normal = pressure is Pressure.NORMAL
    pinned = 0 if normal and c.model == request.model else 1
    distance = catalog.tier_rank(c.tier) - catalog.tier_rank(tier) if normal else 0
    return (pinned, _HEALTH_RANK.get(c.health, 2), distance, round(c.estimate_usd, 9), c.provider, c.model)


def unchecked_health(provider: str, model: str) -> tuple[BreakerView, BreakerView]:
    """Every breaker closed: the health lookup of a plan made without the store."""
    return (
        BreakerView(provider, BreakerState.CLOSED, "health not checked", WindowStats()),
        BreakerView(f"{provider}/{model}", BreakerState.CLOSED, "health not checked", WindowStats()),
    )


def static_plan(catalog: Catalog, request: RouteRequest) -> RoutePlan:
    """The plan with every breaker closed and no budgets: what parse time can know (capabilities, context, tier).

    Remembered per catalogue and request: a DAG file's tasks mostly ask the same thing, and parsing is hot.
    """
    plan = catalog.static_plans.get(request)
    if plan is None:
        plan = catalog.static_plans[request] = decide(catalog, request, unchecked_health)
    return plan


def pinned_plan(
    catalog: Catalog, request: RouteRequest, charges: tuple[Charge, ...], usage: Mapping[tuple[str, str], Usage]
) -> RoutePlan:
    """The plan of a task that names its provider and model: that model alone, if its worst case fits the budgets.

    The price comes from the price table (the model need not be catalogued); a model without a price is rejected
    (rule ``price``), since no budget could be enforced for it.
    """
    from supervisor_lib.model_facts import load_prices

    provider, model = str(request.provider), str(request.model)
    entry = catalog.models.get(model)
    price = entry.price if entry is not None else load_prices().models.get(model)
    priced = ModelEntry(model, provider, entry.tier if entry else "-", 0, frozenset(), price)
    estimate = priced.worst_case_usd(request.input_tokens, request.max_tokens, request.sends)
    notes = ("the task names its provider and model: only budgets are checked",)
    plan = RoutePlan(request, frozenset(), priced.tier, Pressure.NORMAL, (), (), notes=notes, charges=charges)
    if estimate is None:
        reason = "no price in models.yaml, so the budgets that apply cannot be enforced; add the model's price"
        return replace(plan, rejected=(Rejection(provider, model, "price", reason),))
    if (charge := blocking(charges, usage, estimate, provider)) is not None:
        used = usage.get((charge.key, charge.window), Usage())
        reason = (f"worst case {usd(estimate)} does not fit the {charge.describe()}: {_committed(used)} "
                  f"(limit from {charge.limit.source})")  # fmt: skip
        return replace(plan, rejected=(Rejection(provider, model, "budget", reason),))
    candidate = Candidate(provider, model, priced.tier, estimate, BreakerState.CLOSED,
                          f"named by the task, worst case {usd(estimate)}")  # fmt: skip
    return replace(plan, candidates=(candidate,))
