"""The stores the plugin's routes read: a few :class:`~supervisor_lib.store.db.Store` instances (each one DB
connection) taken in turn, so concurrent page loads in the API server do not queue behind one connection."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from supervisor_lib.store.db import DEFAULT_CONN_ID, Store

#: connections the API server opens to the store (per API-server worker process)
POOL_SIZE = 4


class StorePool:
    """``POOL_SIZE`` stores on one connection id, handed out round-robin; created on first use.

    :param make: builds one store (tests pass a store on a URL); default ``Store(conn_id)``.
    """

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, *, size: int = POOL_SIZE,
                 make: Callable[[], Store] | None = None) -> None:  # fmt: skip
        self._make = make or (lambda: Store(conn_id))
        self._size = size
        self._stores: list[Store] = []
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The next store (each is thread-safe; a busy one only delays the requests that drew it)."""
        with self._lock:
            if not self._stores:
                self._stores = [self._make() for _ in range(self._size)]
            return self._stores[next(self._turn) % self._size]

    def close(self) -> None:
        with self._lock:
            for store in self._stores:
                store.close()
