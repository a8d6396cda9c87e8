"""A client-side deadline on every store operation: a frozen database never holds up a model call.

A database can stop answering after it accepted a connection (the server stopped, a proxy or firewall that drops
packets silently, a lock that is never released); the driver then waits forever, and server-side timeouts cannot
help. So each operation runs on the store's own worker thread and the caller waits at most
:data:`STORE_DEADLINE_S`. On an overrun the worker, its connection and whatever it waits on are abandoned (the
thread is a daemon: it can block, but never the process), and the store counts as down: callers spool, skip the
response cache, and a budget that cannot be checked is a retryable error — exactly as when it cannot connect.
At most :data:`MAX_ABANDONED` stuck workers are kept; beyond that the store stays down.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

#: how long a caller waits for one store operation (recording one row takes ~1 ms)
STORE_DEADLINE_S = float(os.environ.get("SUPERVISOR_STORE_DEADLINE_S", "10"))
#: stuck workers kept before the store refuses to start another
MAX_ABANDONED = 4


class Overrun(Exception):
    """The operation did not finish within the deadline (its worker was abandoned)."""


class DeadlineWorker:
    """One daemon thread that runs a store's operations, one at a time, each under a deadline."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._tasks: list[tuple[Callable[[], object], Future[object]]] = []
        self._ready = threading.Condition(self._lock)
        #: operations due later (:meth:`submit_later`): (due, sequence, work, future)
        self._timers: list[tuple[float, int, Callable[[], object], Future[object]]] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.abandoned = 0

    def run(self, work: Callable[[], T], timeout: float = STORE_DEADLINE_S) -> T:
        """``work()`` on the worker; :class:`Overrun` when it takes longer than ``timeout`` seconds."""
        future: Future[object] = Future()
        with self._lock:
            if self.abandoned >= MAX_ABANDONED:
                raise Overrun(f"{self.abandoned} earlier operations never finished")
            self._ensure_thread()
            self._tasks.append((work, future))
            self._ready.notify()
        try:
            return future.result(timeout=timeout)  # type: ignore[return-value]
        except TimeoutError:
            if future.cancel():  # it never started: an earlier operation is stuck, not this one
                raise Overrun("the store's previous operation is still running") from None
            self._abandon()
            raise Overrun(f"no answer within {timeout:.0f}s") from None

    def submit_later(self, work: Callable[[], object], delay_s: float) -> Future[object]:
        """``work()`` on the worker in ``delay_s`` seconds, without waiting for it (its result and errors are
        dropped); operations submitted meanwhile do not wait for it. Cancel the returned future to drop it before it
        starts. :class:`Overrun` when the worker has given up."""
        future: Future[object] = Future()
        with self._lock:
            if self.abandoned >= MAX_ABANDONED:
                raise Overrun(f"{self.abandoned} earlier operations never finished")
            self._ensure_thread()
            heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._sequence), work, future))
            self._ready.notify()
        return future

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._tasks.clear()  # a fork leaves the parent's queue behind, not its thread
            self._timers.clear()
            self._thread = threading.Thread(target=self._loop, name=f"store-{self.name}", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def _abandon(self) -> None:
        with self._lock:
            self.abandoned += 1
            stuck, self._thread = self._thread, None
            pending, self._tasks = self._tasks, []
            pending += [(work, future) for _, _, work, future in self._timers]
            self._timers = []
        for _, future in pending:  # queued behind the stuck one: they will not run
            future.cancel()
        del stuck  # the thread ends by itself if its operation ever returns

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                while self._thread is me:
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:  # due: queued like any other operation
                        _, _, due_work, due_future = heapq.heappop(self._timers)
                        self._tasks.append((due_work, due_future))
                    if self._tasks:
                        break
                    self._ready.wait(timeout=min(60.0, self._timers[0][0] - now) if self._timers else 60.0)
                if self._thread is not me:
                    return  # abandoned (or replaced after a fork)
                work, future = self._tasks.pop(0)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # delivered to the caller
                future.set_exception(exc)
            with self._lock:
                if self._thread is not me:  # it was abandoned while it ran, and came back after all
                    self.abandoned -= 1
                    return
