"""The operational store, on every model call's critical path: the call-attempt ledger, the response cache,
batches and the routing state (breakers, budget reservations), in PostgreSQL or SQLite.

``db`` opens the database an Airflow connection names (``targets``) and owns its schema and migrations
(``schema``); ``recorder`` writes attempts without ever failing a task (spooling them when the store is down);
``ledger`` is what a call sees; ``routing_state`` keeps the router's shared state. The analytics (aggregates,
anomalies, the plugin's queries) read this store from :mod:`supervisor_lib.analytics`. Nothing here imports
pandas, scikit-learn or a provider SDK. Its Airflow connection is still called ``supervisor_analytics``.
"""

from __future__ import annotations

from supervisor_lib.store.db import DEFAULT_CONN_ID, Store, get_store
from supervisor_lib.store.recorder import CallRecord, CallStatus, Recorder, call_id, get_recorder
from supervisor_lib.store.targets import StoreError, StoreUnavailableError

__all__ = [
    "DEFAULT_CONN_ID",
    "CallRecord",
    "CallStatus",
    "Recorder",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "call_id",
    "get_recorder",
    "get_store",
]
