"""Process faults on a running Airflow: DAGs whose one call the fake provider holds, and the means to kill the
process holding it (``test_celery_faults.py``, ``test_scheduler_restart.py``)."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
import time
from collections.abc import Callable

import psutil

from supervisor_lib.store import Store
from supervisor_lib.testing import FakeProviderServer, Rule
from supervisor_lib.testing.stack import AirflowStack

_HELD_CALLS = """
    from datetime import timedelta
    from airflow.sdk import DAG
    from supervisor_lib import AnthropicOperator

    args = {{"owner": "tests", "retries": 1, "retry_delay": timedelta(seconds=1), "pool": "default_pool"}}
    for name, deferrable in (("sync", False), ("deferred", True)):
        with DAG(f"{prefix}_{{name}}", schedule=None, tags=["faults"], default_args=args):
            AnthropicOperator(task_id="call", model="claude-haiku-4-5", prompt=f"{marker}-{{name.upper()}}",
                              deferrable=deferrable, budget={{"per_day_usd": 5}})
"""


def held_call_dags(prefix: str, marker: str) -> dict[str, str]:
    """The DAG file of ``<prefix>_sync`` and ``<prefix>_deferred``: one budgeted ``call`` task each, sync or
    deferrable, whose prompt is ``<marker>-SYNC`` or ``<marker>-DEFERRED``; one retry."""
    return {f"{prefix}_calls.py": textwrap.dedent(_HELD_CALLS.format(prefix=prefix, marker=marker))}


def start_held_call(
    stack: AirflowStack, fake: FakeProviderServer, store_url: str, dag_id: str, marker: str, hold_s: float
) -> tuple[str, Callable[[], int]]:
    """Trigger ``dag_id`` with its first request held ``hold_s`` seconds (the next ones answered at once); return
    once the request is at the provider and its intent is stored: the run id and a count of the DAG's requests."""
    fake.add_rule(Rule(match=marker, text="the answer", latency=hold_s, times=1))
    fake.add_rule(Rule(match=marker, text="the answer"))
    run_id = stack.trigger(dag_id)
    requests = lambda: sum(marker in str(c.body) for c in fake.calls)  # noqa: E731
    deadline = time.monotonic() + 120
    while requests() == 0:
        assert time.monotonic() < deadline, "the call never reached the provider"
        time.sleep(0.2)
    _wait_for_intent(store_url, dag_id)
    return run_id, requests


def _wait_for_intent(url: str, dag_id: str, timeout_s: float = 60) -> None:
    store = Store.from_url(url)
    deadline = time.monotonic() + timeout_s
    while not store.run(lambda cur: cur.execute("SELECT COUNT(*) FROM call_intents WHERE dag_id = ?",
                                                (dag_id,)).fetchone()[0]):  # fmt: skip
        assert time.monotonic() < deadline, f"{dag_id}: the call's intent was never written"
        time.sleep(0.2)


def holder(port: int) -> psutil.Process:
    """The process with an open connection to the fake provider (the one waiting for the held answer)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED and conn.pid:
            return psutil.Process(conn.pid)
    raise AssertionError(f"no process is connected to the provider on port {port}")


def component(stack: AirflowStack, process: psutil.Process) -> tuple[str, int]:
    """The launcher component (``celery-worker-2``, ``triggerer-1``...) whose process tree holds ``process``."""
    pids = {int(path.read_text()): path.stem for path in (stack.home / "pids").glob("*.pid")}
    for candidate in [process, *process.parents()]:
        if candidate.pid in pids:
            return pids[candidate.pid], candidate.pid
    raise AssertionError(f"process {process.pid} belongs to no component of the stack")


def kill_tree(pid: int) -> None:
    """SIGKILL a component and everything it started (as if its machine went away)."""
    root = psutil.Process(pid)
    for process in [*root.children(recursive=True), root]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


def charged(url: str, dag_id: str) -> float:
    """What ``dag_id``'s budgets were charged."""
    sql = "SELECT COALESCE(SUM(spent_usd), 0) FROM budget_spend WHERE budget_key LIKE ?"
    return float(Store.from_url(url).run(lambda cur: cur.execute(sql, (f"dag:{dag_id}:%",)).fetchone()[0]))
