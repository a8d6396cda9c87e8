"""The analytics store fails while calls run: every call still runs, every row waits in the spool and reaches the
store once it is back, and the count reconciles exactly.

Faults: a SQLite store that cannot be opened, and one whose disk is full (a 1 MiB tmpfs filled up, in a mount
namespace of a child process, then freed); a PostgreSQL store (through a TCP proxy) that refuses connections,
that hangs after connecting (the worst case: every store operation would wait), and that turns read-only; and a
spool file whose last line was cut (a process killed while writing it). The calls are plain (no budget: a budget
that cannot be checked fails the call on purpose, as docs/routing.md says). For each: the calls answered, the slowest
call, the rows spooled during the outage, and the rows in the store after it (against the requests the provider
received).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.reliability import Section, timed
from benchmarks.reliability._calls import executor
from benchmarks.reliability._proxy import Proxy
from benchmarks.reliability._world import World, provider_world
from supervisor_lib.testing import Rule

PG_DATABASE = "supervisor_reliability_store"


@dataclass
class Outcome:
    """What one store fault did."""

    case: str
    calls: int = 0
    answered: int = 0
    slowest_s: float = 0.0
    spooled: int = 0
    requests: int = 0
    rows: int = 0
    note: str = ""


def run(quick: bool) -> Section:
    """Each fault during 100 calls (quick: 20)."""
    section = Section(key="store_faults", title="The analytics store fails during calls")
    calls = 20 if quick else 100
    with timed(section), provider_world() as world, mock.patch("supervisor_lib.store.db.RETRY_AFTER_S", 1.0):
        world.fake.add_rule(Rule(text="an answer"))
        outcomes = [_sqlite_unreachable(world, calls), _cut_spool_line(world, calls)]
        full = _disk_full(world, calls)
        if isinstance(full, str):
            section.summary += f"The full-disk case did not run: {full}.\n\n"
        else:
            outcomes.append(full)
        if _postgres_up():
            outcomes += [_postgres(world, calls, fault) for fault in ("refuse", "freeze", "read-only")]
        else:
            section.summary = "PostgreSQL was not reachable on 127.0.0.1:5432: its three faults did not run.\n\n"
    for outcome in outcomes:
        _check(section, outcome)
    section.headers = [
        "fault",
        "calls answered",
        "slowest call",
        "rows spooled",
        "requests",
        "rows in the store",
        "note",
    ]
    section.rows = [
        [o.case, f"{o.answered} / {o.calls}", f"{o.slowest_s:.1f} s", o.spooled, o.requests, o.rows, o.note]
        for o in outcomes
    ]
    section.summary += __doc__.split("\n\n", 1)[1]
    return section


def _check(section: Section, outcome: Outcome) -> None:
    section.check(outcome.answered == outcome.calls, f"{outcome.case}: {outcome.calls - outcome.answered} calls failed")
    expected = outcome.requests - (1 if outcome.case.startswith("spool file") else 0)
    section.check(outcome.rows == expected, f"{outcome.case}: {outcome.rows} rows for {outcome.requests} requests")
    section.check(outcome.spooled >= outcome.calls, f"{outcome.case}: only {outcome.spooled} rows were spooled")


def run_calls(store_conn: str, dag_id: str, n: int) -> tuple[int, float]:
    """Send ``n`` plain calls recorded in ``store_conn``; return how many were answered and the slowest's seconds."""
    from supervisor_lib.providers.policy import AttemptPolicy

    answered, slowest = 0, 0.0
    for index in range(n):
        call = executor(store_conn, dag_id, task_id=f"t{index}", prompt=f"call {index}", max_tokens=32,
                        policy=AttemptPolicy(max_attempts=1))  # fmt: skip
        start = time.perf_counter()
        try:
            call.run()
            answered += 1
        except Exception:  # counted: a call that failed because of the store is what this part looks for
            pass
        slowest = max(slowest, time.perf_counter() - start)
    return answered, slowest


def spooled(folder: Path) -> int:
    """Rows waiting in the spool files of ``folder``."""
    return sum(len(path.read_bytes().splitlines()) for path in folder.glob("*.jsonl"))


def _flush(world: World, deadline_s: float = 30.0) -> None:
    """Flush the spool until it is empty (the store may need a moment to be taken back)."""
    from supervisor_lib.store.recorder import get_recorder

    until = time.monotonic() + deadline_s
    while True:
        try:
            get_recorder(world.store_conn).flush_spool()
        except Exception:
            if time.monotonic() > until:
                raise
        if spooled(world.home / "spool") == 0 or time.monotonic() > until:
            return
        time.sleep(0.5)


def _outage(world: World, case: str, dag_id: str, calls: int, fault: Callable[[], Any]) -> Outcome:
    """Run ``calls`` calls inside ``fault`` (a context manager), then flush and count."""
    world.fake.reset()
    world.fake.add_rule(Rule(text="an answer"))
    outcome = Outcome(case=case, calls=calls)
    with fault():
        outcome.answered, outcome.slowest_s = run_calls(world.store_conn, dag_id, calls)
        outcome.spooled = spooled(world.home / "spool")
    _flush(world)
    outcome.requests = world.requests()
    outcome.rows = len(world.store().attempts(dag_id=dag_id))
    return outcome


def _sqlite_unreachable(world: World, calls: int) -> Outcome:
    world.new_store()

    @contextmanager
    def unreachable() -> Iterator[None]:
        world.store_path.mkdir()  # a directory where the database file should be: it cannot be opened
        yield
        world.store_path.rmdir()

    return _outage(world, "SQLite cannot be opened", "sqlite_down", calls, unreachable)


def _cut_spool_line(world: World, calls: int) -> Outcome:
    """Rows spooled while the store is down, then the spool's last line is cut in half before the flush."""
    world.new_store()

    @contextmanager
    def cut() -> Iterator[None]:
        world.store_path.mkdir()
        yield
        from supervisor_lib.store.recorder import get_recorder

        get_recorder(world.store_conn)._spool.close()  # the writer is gone (killed mid-line)
        path = max((world.home / "spool").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2 - 1])
        world.store_path.rmdir()

    outcome = _outage(world, "spool file with a half-written line", "spool_cut", calls, cut)
    outcome.note = "the cut line is dropped and logged; every whole line is flushed"
    return outcome


def _disk_full(world: World, calls: int) -> Outcome | str:
    """The store's file system full (a tmpfs of 1 MiB, filled, in a mount namespace of a child process), then
    freed; or why it could not run."""
    import shutil
    import subprocess
    import sys
    import tempfile

    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    world.fake.reset()
    world.fake.add_rule(Rule(text="an answer"))
    with tempfile.TemporaryDirectory(prefix="supervisor-full-") as folder:
        mount = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$1" -m benchmarks.reliability._disk_full "$0" "$2"'
        command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, folder, sys.executable,
                   str(calls)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2])
    if done.returncode != 0:
        return f"its child failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:] or ''}"
    got = json.loads(done.stdout.strip().splitlines()[-1])
    outcome = Outcome(case="SQLite's disk full, then freed", calls=calls, answered=int(got["answered"]),
                      slowest_s=float(got["slowest_s"]), spooled=int(got["spooled"]),
                      rows=int(got["rows"]))  # fmt: skip
    outcome.requests, outcome.note = world.requests(), "a 1 MiB tmpfs, filled; the spool is on another disk"
    return outcome


# -- PostgreSQL through a proxy ------------------------------------------------------------------------------------
def _postgres_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


def _postgres(world: World, calls: int, fault: str) -> Outcome:
    from benchmarks._support import drop_postgres_database, fresh_postgres_database

    fresh_postgres_database(PG_DATABASE)
    try:
        with Proxy(("127.0.0.1", 5432)) as proxy:
            world.new_store(f"postgresql://postgres@127.0.0.1:{proxy.port}/{PG_DATABASE}")
            run_calls(world.store_conn, f"pg_{fault}_warm", 1)  # the store is up, migrated and holds a connection
            context = _read_only if fault == "read-only" else _proxy_mode(proxy, fault)
            case = {"refuse": "PostgreSQL refuses connections", "freeze": "PostgreSQL hangs after connecting",
                    "read-only": "PostgreSQL turns read-only"}[fault]  # fmt: skip
            outcome = _outage(world, case, f"pg_{fault}", calls, context)
            if fault == "freeze":
                outcome.note = "each store operation gives up at its deadline; the store then counts as down"
            return outcome
    finally:
        drop_postgres_database(PG_DATABASE)


def _proxy_mode(proxy: Proxy, mode: str) -> Callable[[], Any]:
    @contextmanager
    def broken() -> Iterator[None]:
        proxy.set_mode(mode)
        yield
        proxy.set_mode("refuse")  # cut what the fault left hanging, then let new connections through
        proxy.set_mode("pass")

    return broken


@contextmanager
def _read_only() -> Iterator[None]:
    _admin(f'ALTER DATABASE "{PG_DATABASE}" SET default_transaction_read_only = on')
    yield
    _admin(f'ALTER DATABASE "{PG_DATABASE}" SET default_transaction_read_only = off')


def _admin(statement: str) -> None:
    """Run ``statement`` as the superuser, then end the store's sessions so the next ones see the change."""
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(statement)
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (PG_DATABASE,),
        )
    admin.close()
