"""Budgets that hold across runs: declarations, UTC windows and the check before a call (pure: no I/O, no Airflow).

Limits, each in US dollars:

=================  =============================  ==========================================================
limit              window (UTC)                   declared in
=================  =============================  ==========================================================
per DAG run        the run                        spec ``budget.per_run_usd``; global ``dags.<id>.per_run_usd``
per DAG per day    00:00 to 24:00                 spec ``budget.per_day_usd``; global ``dags.<id>.per_day_usd``
per DAG per month  the 1st 00:00 to the next 1st  spec ``budget.per_month_usd``; global ``dags.<id>...``
per provider/day   00:00 to 24:00                 spec ``budget.per_provider_day_usd``; global ``providers``
per team per month the calendar month             spec ``budget.per_team_month_usd``; global ``teams``
per tag per month  the calendar month             global ``tags`` (a DAG's tags)
=================  =============================  ==========================================================

Global declarations (a file named by ``$SUPERVISOR_BUDGETS`` or the Airflow Variable ``supervisor_budgets``) use
``dags: {"*": {...}}`` for every DAG. When a limit is declared twice, the lower one holds.

Before each call the router *reserves* the call's worst-case cost against every limit that applies, atomically in
the store (see :mod:`supervisor_lib.store.routing_state`); the call is sent only if, for each, spent + reserved by calls
in flight + this estimate stays within the limit. After the call the reservation is *settled* with the actual
cost (or released). A reservation whose worker died stops counting after ``reservation_ttl_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from supervisor_lib.routing.catalog import check_keys
from supervisor_lib.routing.forecast import BudgetForecast, StoredForecast, project

#: a tolerance for float sums of many small costs
EPSILON_USD = 1e-9


class Period(StrEnum):
    RUN = "run"
    DAY = "day"
    MONTH = "month"


def usd(value: float) -> str:
    """Dollars for messages: cents at least, down to millionths (one call can cost $0.000013)."""
    whole, _, fraction = f"{value:.6f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


_SUBJECTS = {"run": "DAG", "dag": "DAG", "provider": "provider", "team": "team", "tag": "tag"}


@dataclass(frozen=True)
class Limit:
    """One spend limit: whose spend (``subject`` + ``name``), over which ``period``, how much and who said so."""

    subject: str
    name: str
    period: Period
    usd: float
    source: str = ""

    @property
    def key(self) -> str:
        """The store key its spend is counted under."""
        return f"{self.subject}:{self.name}:{self.period}"

    def describe(self) -> str:
        per = "per-run" if self.period is Period.RUN else f"per-{self.period}"
        return f"{per} budget of {_SUBJECTS[self.subject]} {self.name!r} ({usd(self.usd)})"


@dataclass(frozen=True)
class BudgetDeclaration:
    """One DAG's ``budget:`` block (a spec's, or a global ``dags.<id>`` entry)."""

    per_run_usd: float | None = None
    per_day_usd: float | None = None
    per_month_usd: float | None = None
    per_provider_day_usd: Mapping[str, float] = field(default_factory=dict)
    team: str | None = None
    per_team_month_usd: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> BudgetDeclaration:
        """Parse a mapping; ``ValueError`` names ``where`` and the bad key."""
        known = {"per_run_usd", "per_day_usd", "per_month_usd", "per_provider_day_usd", "team", "per_team_month_usd"}
        check_keys(data, known, where)
        values: dict[str, Any] = {k: _usd(data[k], f"{where}.{k}") for k in known - {"team", "per_provider_day_usd"}
                                  if data.get(k) is not None}  # fmt: skip
        providers = data.get("per_provider_day_usd") or {}
        values["per_provider_day_usd"] = {p: _usd(v, f"{where}.per_provider_day_usd.{p}") for p, v in providers.items()}
        values["team"] = str(data["team"]) if data.get("team") else None
        if values.get("per_team_month_usd") is not None and not values["team"]:
            raise ValueError(f"{where}: per_team_month_usd needs a team")
        return cls(**values)


@dataclass(frozen=True)
class GlobalBudgets:
    """Limits declared outside specs: per DAG (``"*"`` for all), per provider per day, per team and tag per month."""

    dags: Mapping[str, BudgetDeclaration] = field(default_factory=dict)
    providers_day: Mapping[str, float] = field(default_factory=dict)
    teams_month: Mapping[str, float] = field(default_factory=dict)
    tags_month: Mapping[str, float] = field(default_factory=dict)
    source: str = "global budgets"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str) -> GlobalBudgets:
        """Parse ``{dags: {id: {...}}, providers: {p: {per_day_usd}}, teams: {t: {per_month_usd}}, tags: ...}``."""
        data = data or {}
        check_keys(data, {"dags", "providers", "teams", "tags"}, source)
        dags = {d: BudgetDeclaration.from_mapping(v or {}, f"{source}: dags.{d}") for d, v in _map(data, "dags")}
        return cls(
            dags=dags,
            providers_day=_per(data, "providers", "per_day_usd", source),
            teams_month=_per(data, "teams", "per_month_usd", source),
            tags_month=_per(data, "tags", "per_month_usd", source),
            source=source,
        )


@dataclass(frozen=True)
class BudgetScope:
    """Whose spend a call is: its DAG run, the DAG's team and tags."""

    dag_id: str
    run_id: str
    team: str | None = None
    tags: tuple[str, ...] = ()


def limits_for(
    scope: BudgetScope, declared: BudgetDeclaration | None, global_: GlobalBudgets, *, spec_source: str = "spec"
) -> tuple[Limit, ...]:
    """Every limit that applies to ``scope``; the lowest when one is declared twice."""
    found: list[Limit] = []
    declarations = [(declared, spec_source), *((global_.dags.get(k), global_.source) for k in ("*", scope.dag_id))]
    for decl, source in declarations:
        if decl is not None:
            found.extend(_declared_limits(scope, decl, source))
    team = team_of(scope, declared, global_)
    found += [Limit("provider", p, Period.DAY, usd, global_.source) for p, usd in global_.providers_day.items()]
    if team and team in global_.teams_month:
        found.append(Limit("team", team, Period.MONTH, global_.teams_month[team], global_.source))
    found += [Limit("tag", t, Period.MONTH, global_.tags_month[t], global_.source) for t in scope.tags
              if t in global_.tags_month]  # fmt: skip
    lowest: dict[str, Limit] = {}
    for limit in found:
        if limit.key not in lowest or limit.usd < lowest[limit.key].usd:
            lowest[limit.key] = limit
    return tuple(sorted(lowest.values(), key=lambda limit: limit.key))


def team_of(scope: BudgetScope, declared: BudgetDeclaration | None, global_: GlobalBudgets) -> str | None:
    """The team a DAG's spend counts for: the scope's, else its budget block's, else the global entry's."""
    return scope.team or _team_of(scope.dag_id, declared, global_)


def _team_of(dag_id: str, declared: BudgetDeclaration | None, global_: GlobalBudgets) -> str | None:
    for decl in (declared, global_.dags.get(dag_id), global_.dags.get("*")):
        if decl is not None and decl.team:
            return decl.team
    return None


def _declared_limits(scope: BudgetScope, decl: BudgetDeclaration, source: str) -> list[Limit]:
    dag = scope.dag_id
    limits = [
        Limit(subject, dag, period, usd, source)
        for subject, period, usd in (
            ("run", Period.RUN, decl.per_run_usd),
            ("dag", Period.DAY, decl.per_day_usd),
            ("dag", Period.MONTH, decl.per_month_usd),
        )
        if usd is not None
    ]
    limits += [Limit("provider", p, Period.DAY, usd, source) for p, usd in decl.per_provider_day_usd.items()]
    team = scope.team or decl.team
    if team and decl.per_team_month_usd is not None:
        limits.append(Limit("team", team, Period.MONTH, decl.per_team_month_usd, source))
    return limits


@dataclass(frozen=True)
class Charge:
    """A limit in its current window: what a reservation is counted against."""

    limit: Limit
    window: str
    start: datetime | None = None
    end: datetime | None = None

    @property
    def key(self) -> str:
        return self.limit.key

    def applies_to(self, provider: str) -> bool:
        """A per-provider limit only concerns calls to that provider."""
        return self.limit.subject != "provider" or self.limit.name == provider

    def describe(self) -> str:
        window = f"run {self.window!r}" if self.limit.period is Period.RUN else f"window {self.window} UTC"
        return f"{self.limit.describe()}, {window}"


def window_of(period: Period, now: datetime, run_id: str) -> tuple[str, datetime | None, datetime | None]:
    """The window ``now`` falls in: its id and UTC bounds (none for a run)."""
    now = now.astimezone(UTC)
    if period is Period.RUN:
        return run_id, None, None
    if period is Period.DAY:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        return f"{start:%Y-%m-%d}", start, end
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return f"{start:%Y-%m}", start, end


def charges_for(limits: Iterable[Limit], scope: BudgetScope, now: datetime) -> tuple[Charge, ...]:
    """Each limit in the window ``now`` falls in."""
    return tuple(Charge(limit, *window_of(limit.period, now, scope.run_id)) for limit in limits)


@dataclass(frozen=True)
class Usage:
    """Settled spend and in-flight reservations in one charge's window."""

    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    #: the window's end spend as the anomaly scan forecast it (``analytics.forecast``), if it did
    stored: StoredForecast | None = None


def blocking(charges: Iterable[Charge], usage: Mapping[tuple[str, str], Usage], estimate_usd: float,
             provider: str | None = None) -> Charge | None:  # fmt: skip
    """The first charge the call would push over its limit, or ``None`` when it fits them all.

    :param provider: the call's provider: other providers' limits are skipped; ``None`` checks every charge.
    """
    for charge in charges:
        if provider is not None and not charge.applies_to(provider):
            continue
        used = usage.get((charge.key, charge.window), Usage())
        if used.spent_usd + used.reserved_usd + estimate_usd > charge.limit.usd + EPSILON_USD:
            return charge
    return None


def exceeded_message(charge: Charge, used: Usage, estimate_usd: float, what: str) -> str:
    """Why a call was not sent, naming the limit, its window and the spend so far."""
    return (
        f"{what}: the {charge.describe()} would be exceeded: spent {usd(used.spent_usd)} so far, "
        f"{usd(used.reserved_usd)} reserved by calls in flight, and this call may cost up to {usd(estimate_usd)} "
        f"(limit from {charge.limit.source}); the call was not sent. Raise the limit, lower max_tokens, or wait "
        "for the next window"
    )


def forecasts(
    charges: Iterable[Charge], usage: Mapping[tuple[str, str], Usage], now: datetime, min_elapsed_fraction: float
) -> list[BudgetForecast]:
    """Spend so far and the projection to the window's end, per charge."""
    result = []
    for charge in charges:
        used = usage.get((charge.key, charge.window), Usage())
        committed = used.spent_usd + used.reserved_usd
        projected = project(committed, charge.start, charge.end, now, min_elapsed_fraction, used.stored)
        result.append(
            BudgetForecast(
                charge.describe(), charge.window, charge.limit.usd, used.spent_usd, used.reserved_usd, projected
            )
        )
    return result


# -- parsing helpers ----------------------------------------------------------------------------------------------
def _usd(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{where}: expected a number of US dollars >= 0, got {value!r}")
    return float(value)


def _map(data: Mapping[str, Any], key: str) -> list[tuple[str, Any]]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected a mapping")
    return [(str(k), v) for k, v in value.items()]


def _per(data: Mapping[str, Any], key: str, field_name: str, source: str) -> dict[str, float]:
    result = {}
    for name, entry in _map(data, key):
        where = f"{source}: {key}.{name}"
        check_keys(entry or {}, {field_name}, where)
        if (entry or {}).get(field_name) is not None:
            result[name] = _usd(entry[field_name], f"{where}.{field_name}")
    return result
