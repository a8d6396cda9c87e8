"""Budget holds: a reservation that outlives one call — a provider batch holds its worst case from submit until
its results are collected, possibly by another try, on another worker, after a deferral.

The hold is a plain dict (``reservation_id``, ``amount_usd``, ``windows``: ``[[budget_key, window_id], ...]``), so
it can be kept with the batch in the analytics store (``batches.reservation_json``) and settled from there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from supervisor_lib.exceptions import BudgetExceededError, RetryableError

if TYPE_CHECKING:
    from supervisor_lib.execution.routed import RouteOptions
    from supervisor_lib.execution.runner import CallScope
    from supervisor_lib.store.db import Store

Hold = dict[str, Any]


def hold_budget(
    options: RouteOptions, scope: CallScope, worst_usd: float | None, what: str, *, analytics_conn_id: str | None,
    ttl_s: float, logger: Any = None,
) -> Hold | None:  # fmt: skip
    """Reserve ``worst_usd`` against every budget that applies to a pinned call; ``None`` when none applies.

    :param worst_usd: the worst case; ``None`` when no price is known (an error if a budget applies).
    :param ttl_s: how long the reservation counts if it is never settled (the batch's whole wait, and then some).
    :raises BudgetExceededError: it may not fit (then nothing may be sent), or it cannot be priced.
    :raises RetryableError: the budgets cannot be checked now.
    """
    from supervisor_lib.execution.routed import budget_router
    from supervisor_lib.routing.budgets import exceeded_message
    from supervisor_lib.store.routing_state import Blocked

    router = budget_router(options, scope, analytics_conn_id, logger)
    if router is None or router.state is None:
        return None
    if worst_usd is None:
        raise BudgetExceededError(
            f"{what}: budgets apply but no price is known for model {options.model!r}, so they cannot be enforced; "
            "add the model to supervisor_lib/data/models.yaml"
        )
    now, provider = router.clock(), str(options.provider)
    charges = tuple(c for c in router.budget_state(options.route_scope(scope), now).charges if c.applies_to(provider))
    try:
        held = router.state.reserve(charges, worst_usd, reservation_id=uuid.uuid4().hex, now=now, ttl_s=ttl_s,
                                    owner=(scope.dag_id, scope.run_id, scope.task_id))  # fmt: skip
    except Exception as exc:
        raise RetryableError(f"{what}: budgets cannot be checked: {exc}") from exc
    if isinstance(held, Blocked):
        raise BudgetExceededError(exceeded_message(held.charge, held.usage, held.amount_usd, what))
    router.log.info("%s: worst case %.6f USD reserved against %s", what, worst_usd,
                    ", ".join(c.describe() for c in charges))  # fmt: skip
    return {"reservation_id": held.reservation_id, "amount_usd": worst_usd,
            "windows": [[c.key, c.window] for c in held.charges]}  # fmt: skip


def settle_hold(store: Store, held: Hold, actual_usd: float) -> None:
    """Replace a hold by what was actually spent (0 releases it); idempotence is the caller's (see the batch
    operator: only the try that first collects the results settles)."""
    from supervisor_lib.store.routing_state import RoutingState

    windows = [(str(key), str(window)) for key, window in held["windows"]]
    RoutingState(store).settle_windows(held["reservation_id"], windows, actual_usd, datetime.now(UTC))
