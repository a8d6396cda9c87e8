"""The router's shared state in the analytics store: health samples, breakers, budget spend and reservations.

Every worker and the triggerer read and write the same rows, so a breaker opened by one task is open for all, and
budgets hold across processes. Atomicity, on both dialects:

* **Reservations** run in one transaction that first *locks* each budget row it checks — an upsert that takes the
  row lock on PostgreSQL (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), and ``BEGIN IMMEDIATE`` (the
  database's write lock) on SQLite — then sums the reservations in flight and inserts its own. Two workers checking
  the same budget therefore take turns, and never both fit into the last dollar.
* **Probe claims** are one conditional ``UPDATE`` (only when no unexpired claim exists and no failed probe holds
  the breaker open); the row count says who won.

Store errors surface as :class:`~supervisor_lib.store.targets.StoreUnavailableError`; the router decides what
they mean (see :mod:`supervisor_lib.execution.router`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from supervisor_lib.providers.scrub import scrub
from supervisor_lib.routing.budgets import Charge, Usage, blocking
from supervisor_lib.routing.forecast import StoredForecast
from supervisor_lib.routing.health import BreakerRecord, Sample
from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.db import Store

_SAMPLES = (
    "SELECT provider, model, status, error_type, started_at, duration_s FROM call_attempts"
    " WHERE started_at >= ? AND status <> 'cached' ORDER BY started_at DESC LIMIT ?"
)
_BREAKERS = "SELECT breaker_key, reset_at, open_until, probe_owner, probe_expires_at FROM router_breakers"
_ENSURE_BREAKER = (
    "INSERT INTO router_breakers (breaker_key, updated_at) VALUES (?, ?) ON CONFLICT (breaker_key) DO NOTHING"
)
_CLAIM = (
    "UPDATE router_breakers SET probe_owner = ?, probe_expires_at = ?, updated_at = ? WHERE breaker_key = ?"
    " AND (probe_owner IS NULL OR probe_expires_at <= ?) AND (open_until IS NULL OR open_until <= ?)"
)
_UNCLAIM = (
    "UPDATE router_breakers SET probe_owner = NULL, probe_expires_at = NULL, updated_at = ?"
    " WHERE breaker_key = ? AND probe_owner = ?"
)
_SET_BREAKER = (
    "INSERT INTO router_breakers (breaker_key, reset_at, open_until, reason, updated_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (breaker_key) DO UPDATE SET reset_at = COALESCE(excluded.reset_at, router_breakers.reset_at),"
    " open_until = excluded.open_until, reason = excluded.reason, probe_owner = NULL, probe_expires_at = NULL,"
    " updated_at = excluded.updated_at"
)
_LOCK_SPEND = (  # also keeps the limit as last declared, for the budgets view
    "INSERT INTO budget_spend (budget_key, window_id, spent_usd, updated_at, limit_usd, label, window_start,"
    " window_end) VALUES (?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (budget_key, window_id) DO UPDATE SET"
    " updated_at = excluded.updated_at, limit_usd = excluded.limit_usd, label = excluded.label,"
    " window_start = excluded.window_start, window_end = excluded.window_end"
)
_ADD_SPEND = (
    "INSERT INTO budget_spend (budget_key, window_id, spent_usd, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (budget_key, window_id) DO UPDATE"
    " SET spent_usd = budget_spend.spent_usd + excluded.spent_usd, updated_at = excluded.updated_at"
)
_RESERVE = (
    "INSERT INTO budget_reservations (reservation_id, budget_key, window_id, amount_usd, dag_id, run_id, task_id,"
    " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DECISION_COLUMNS = ("decision_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "task_type",
                     "decided_at", "outcome", "provider", "model", "failovers", "detail_json")  # fmt: skip


@dataclass(frozen=True)
class Reservation:
    """A call's worst-case cost, held against ``charges`` until it is settled or released."""

    reservation_id: str
    amount_usd: float
    charges: tuple[Charge, ...]


@dataclass(frozen=True)
class Blocked:
    """A reservation refused: the first charge it would push over, and that charge's usage at the time."""

    charge: Charge
    usage: Usage
    amount_usd: float


class RoutingState:
    """The router's reads and writes on an :class:`Store` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- health ---------------------------------------------------------------------------------------------------
    def samples(self, since: datetime, limit: int) -> list[Sample]:
        """The newest attempts (at most ``limit``) started at or after ``since``, newest first."""

        def work(cur: StoreCursor) -> list[Sample]:
            rows = cur.execute(_SAMPLES, (since, limit)).fetchall()
            return [Sample.from_row(p, m, s, e, as_datetime(t) or since, d) for p, m, s, e, t, d in rows]

        return self.store.run(work)

    def breakers(self) -> dict[str, BreakerRecord]:
        """Every stored breaker, by key."""

        def work(cur: StoreCursor) -> dict[str, BreakerRecord]:
            rows = cur.execute(_BREAKERS).fetchall()
            return {
                key: BreakerRecord(key, as_datetime(reset), as_datetime(until), owner, as_datetime(expires))
                for key, reset, until, owner, expires in rows
            }

        return self.store.run(work)

    def claim_probe(self, keys: Sequence[str], owner: str, now: datetime, ttl_s: float) -> bool:
        """Claim the probe of every breaker in ``keys`` for ``owner``: all or none."""
        expires = now + timedelta(seconds=ttl_s)

        def work(cur: StoreCursor) -> bool:
            won: list[str] = []
            for key in sorted(keys):  # one order for every caller: no lock cycles
                cur.execute(_ENSURE_BREAKER, (key, now))
                if cur.execute(_CLAIM, (owner, expires, now, key, now, now)).rowcount != 1:
                    for mine in won:
                        cur.execute(_UNCLAIM, (now, mine, owner))
                    return False
                won.append(key)
            return True

        return self.store.run(work, transaction=True)

    def release_probe(self, keys: Iterable[str], owner: str, now: datetime) -> None:
        """Give back a probe claim without a verdict (the call failed for a reason unrelated to health)."""
        self.store.run(lambda cur: cur.executemany(_UNCLAIM, [(now, key, owner) for key in keys]), transaction=True)

    def close_breakers(self, keys: Iterable[str], now: datetime, reason: str = "probe succeeded") -> None:
        """Close breakers: attempts before ``now`` no longer count against them."""
        rows = [(key, now, None, reason, now) for key in keys]
        self.store.run(lambda cur: cur.executemany(_SET_BREAKER, rows), transaction=True)

    def open_breakers(self, keys: Iterable[str], now: datetime, until: datetime, reason: str) -> None:
        """Hold breakers open until ``until`` (after a failed probe), then half-open."""
        rows = [(key, None, until, reason, now) for key in keys]
        self.store.run(lambda cur: cur.executemany(_SET_BREAKER, rows), transaction=True)

    # -- budgets --------------------------------------------------------------------------------------------------
    def usage(self, charges: Sequence[Charge], now: datetime) -> dict[tuple[str, str], Usage]:
        """Settled spend and live reservations per (key, window) of ``charges`` (a plain read, no locks)."""
        if not charges:
            return {}
        return self.store.run(lambda cur: _usage(cur, charges, now, lock=False))

    def reserve(self, charges: Sequence[Charge], amount_usd: float, *, reservation_id: str, owner: tuple[str, str, str],
                now: datetime, ttl_s: float) -> Reservation | Blocked:  # fmt: skip
        """Atomically check every charge and, if the call fits them all, hold ``amount_usd`` against each.

        :param owner: ``(dag_id, run_id, task_id)``, kept with the reservation for people reading the table.
        """
        expires = now + timedelta(seconds=ttl_s)

        def work(cur: StoreCursor) -> Reservation | Blocked:
            usage = _usage(cur, charges, now, lock=True)
            if (charge := blocking(charges, usage, amount_usd)) is not None:
                return Blocked(charge, usage.get((charge.key, charge.window), Usage()), amount_usd)
            rows = [(reservation_id, c.key, c.window, amount_usd, *owner, now, expires) for c in charges]
            cur.executemany(_RESERVE, rows)
            return Reservation(reservation_id, amount_usd, tuple(charges))

        if not charges:
            return Reservation(reservation_id, amount_usd, ())
        return self.store.run(work, transaction=True)

    def settle(self, reservation: Reservation, actual_usd: float, now: datetime) -> None:
        """Replace a reservation by the call's actual cost (also when the reservation already expired)."""
        windows = [(c.key, c.window) for c in reservation.charges]
        self.settle_windows(reservation.reservation_id, windows, actual_usd, now)

    def settle_windows(
        self, reservation_id: str, windows: Sequence[tuple[str, str]], actual_usd: float, now: datetime
    ) -> None:
        """:meth:`settle` by the reservation's id and its ``(budget_key, window_id)`` pairs — for a reservation
        kept in a table (a batch's) rather than in memory."""
        if not windows:
            return
        rows = [(key, window, actual_usd, now) for key, window in windows]

        def work(cur: StoreCursor) -> None:
            cur.execute("DELETE FROM budget_reservations WHERE reservation_id = ?", (reservation_id,))
            if actual_usd > 0:
                cur.executemany(_ADD_SPEND, rows)

        self.store.run(work, transaction=True)

    def spent(self, key: str, window: str) -> float:
        """Settled spend of one budget window (for tools and tests)."""
        sql = "SELECT spent_usd FROM budget_spend WHERE budget_key = ? AND window_id = ?"
        row = self.store.run(lambda cur: cur.execute(sql, (key, window)).fetchone())
        return float(row[0]) if row else 0.0

    # -- decisions ------------------------------------------------------------------------------------------------
    def log_decision(self, row: dict[str, Any]) -> None:
        """Insert one ``routing_decisions`` row (``detail`` is stored as JSON)."""
        detail = json.dumps(row.get("detail", {}), sort_keys=True, default=str)
        values = {**row, "detail_json": scrub(detail)}  # reasons quote providers' errors, which may echo a key
        sql = (
            f"INSERT INTO routing_decisions ({', '.join(_DECISION_COLUMNS)}) VALUES"
            f" ({', '.join('?' for _ in _DECISION_COLUMNS)}) ON CONFLICT (decision_id) DO NOTHING"
        )
        self.store.run(lambda cur: cur.execute(sql, tuple(values[c] for c in _DECISION_COLUMNS)))

    def decisions(self, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """Logged decisions of a DAG (and run), oldest first, ``detail`` parsed back."""
        sql = f"SELECT {', '.join(_DECISION_COLUMNS)} FROM routing_decisions WHERE dag_id = ?"
        params: tuple[Any, ...] = (dag_id,)
        if run_id is not None:
            sql, params = sql + " AND run_id = ?", (dag_id, run_id)

        def work(cur: StoreCursor) -> list[dict[str, Any]]:
            rows = cur.execute(sql + " ORDER BY decided_at, decision_id", params).fetchall()
            return [dict(zip(_DECISION_COLUMNS, row, strict=True)) for row in rows]

        found = self.store.run(work)
        for row in found:
            row["detail"] = json.loads(row.pop("detail_json"))
            row["decided_at"] = as_datetime(row["decided_at"])
        return found


def _usage(cur: StoreCursor, charges: Sequence[Charge], now: datetime, *, lock: bool) -> dict[tuple[str, str], Usage]:
    """Spend and live reservations per (key, window); with ``lock``, each budget row is locked first, in key order."""
    wanted = sorted({(c.key, c.window) for c in charges})
    by_window = {(c.key, c.window): c for c in charges}
    keys = sorted({key for key, _ in wanted})
    marks = ", ".join("?" for _ in keys)
    reserved_sql = (
        "SELECT budget_key, window_id, 0, SUM(amount_usd), NULL, NULL, NULL FROM budget_reservations"
        f" WHERE expires_at > ? AND budget_key IN ({marks}) GROUP BY budget_key, window_id"
    )
    if lock:
        for key, window in wanted:
            charge = by_window[(key, window)]
            limit = charge.limit
            cur.execute(_LOCK_SPEND, (key, window, now, limit.usd, limit.describe(), charge.start, charge.end))
        # the rows are ours now: drop the lapsed reservations of these budgets (a killed worker's)
        cur.execute(f"DELETE FROM budget_reservations WHERE budget_key IN ({marks}) AND expires_at <= ?", (*keys, now))
    # one round trip for both: a decision reads usage on every call
    pairs = " OR ".join("(budget_key = ? AND window_id = ?)" for _ in wanted)
    rows = cur.execute(
        "SELECT budget_key, window_id, spent_usd, 0, forecast_usd, forecast_basis_usd, forecast_at FROM budget_spend"
        f" WHERE {pairs} UNION ALL {reserved_sql}",
        (*(v for pair in wanted for v in pair), now, *keys),
    ).fetchall()
    usage = dict.fromkeys(wanted, Usage())
    for key, window, spent, reserved, forecast, basis, made_at in rows:
        if (key, window) in usage:
            old = usage[(key, window)]
            stored, made = old.stored, as_datetime(made_at)
            if forecast is not None and made is not None:
                stored = StoredForecast(float(forecast), float(basis or 0), made)
            usage[(key, window)] = Usage(
                old.spent_usd + float(spent or 0), old.reserved_usd + float(reserved or 0), stored
            )
    return usage
