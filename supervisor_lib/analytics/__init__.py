"""The analytics store: every model-call attempt and the response cache, in PostgreSQL or SQLite.

``store`` opens the database an Airflow connection names (``targets``) and owns its schema (``schema``);
``recorder`` writes attempts without ever failing a task. Later features (budgets, circuit breakers, the analytics
UI) read the same store. Nothing here imports pandas, scikit-learn or a provider SDK.
"""

from __future__ import annotations

from supervisor_lib.analytics.recorder import CallRecord, CallStatus, Recorder, call_id, get_recorder
from supervisor_lib.analytics.store import DEFAULT_CONN_ID, AnalyticsStore, get_store
from supervisor_lib.analytics.targets import AnalyticsStoreError, StoreUnavailableError

__all__ = [
    "DEFAULT_CONN_ID",
    "AnalyticsStore",
    "AnalyticsStoreError",
    "CallRecord",
    "CallStatus",
    "Recorder",
    "StoreUnavailableError",
    "call_id",
    "get_recorder",
    "get_store",
]
