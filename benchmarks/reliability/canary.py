"""A canary API key, echoed back by a provider (or a gateway in front of it) in every error it can send, must appear
nowhere Supervisor writes or shows.

Every call path (sync, deferred, coding, routed with failover, batch) runs against a fake provider whose errors
quote the key the request carried in their message; then the calls succeed. Searched for the key in every form it
may be echoed in: everything written to stdout and stderr (every logger, every level), every result (what goes to
XCom), every exception's message, representation and traceback (the SDK's error, kept as the cause, included), every
row of every table of the analytics store, and every file the calls left (the store's database and WAL, the
spool). ``tests/integration/test_shipped_specs.py`` checks the same key on a real Airflow after every shipped DAG
ran: every file under the Airflow home (task, trigger and component logs, coding artifacts), task instances with
their rendered templates, every XCom value through the REST API, and every answer of the plugin's API.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from benchmarks.reliability import Section, timed
from benchmarks.reliability._calls import PATHS, run_batch, send
from benchmarks.reliability._world import CANARY_KEY, World, dump_tables, provider_world
from supervisor_lib.testing import AUTH, OVERLOADED, RATE_LIMIT, SERVER_ERROR, Rule

ECHO = "gateway says: bad key {api_key} (also " + quote(CANARY_KEY, safe="") + ")"
FAULTS = (RATE_LIMIT, SERVER_ERROR, OVERLOADED, AUTH)
#: the forms a key may be echoed in: as is, URL-encoded, JSON-escaped, base64 (supervisor_lib.providers.scrub)
FORMS = (
    CANARY_KEY,
    quote(CANARY_KEY, safe=""),
    json.dumps(CANARY_KEY)[1:-1],
    base64.b64encode(CANARY_KEY.encode()).decode(),
)


def run(quick: bool) -> Section:
    """Every path × every echoing fault (quick: two faults), then every surface searched."""
    section = Section(key="canary", title="A canary key in everything Supervisor writes or shows")
    faults = FAULTS[:2] + FAULTS[3:] if quick else FAULTS
    with timed(section), provider_world() as world:
        send(
            "sync", world.store_conn, "warm-up"
        )  # Airflow resets logging when it first loads its providers: capture after
        with _captured_output() as output:
            exposed, requests = _exercise(world, faults)
            logged = output()
        surfaces = {
            "logs (stdout and stderr)": [logged],
            **exposed,
            "analytics store rows": [dump_tables(world.store())],
            "files (store, its WAL, spool)": [p.read_bytes().decode("latin-1") for p in _files(world.home)],
        }
    section.headers = ["surface", "text searched", "occurrences of the key"]
    for name, texts in surfaces.items():
        found = sum(text.count(form) for text in texts for form in FORMS)
        section.rows.append([name, f"{sum(len(t) for t in texts):,} chars", found])
        section.check(found == 0, f"the key appears {found} times in {name}")
    section.check("bad key ***" in logged, "the echoed errors were not logged (scrubbed): the search means nothing")
    calls = len(faults) * len(_PATHS)
    section.summary = (
        f"{calls} calls ({len(faults)} echoing faults × {len(_PATHS)} paths), {requests} provider requests; "
        f"the key as is, URL-encoded, JSON-escaped and base64-encoded ({len(set(FORMS))} distinct strings).\n\n"
        + __doc__.split("\n\n", 1)[1]
    )
    return section


def _exercise(world: World, faults: tuple[str, ...]) -> tuple[dict[str, list[str]], int]:
    """Every path under every fault; returns the results and exceptions as text, and the requests sent."""
    exposed: dict[str, list[str]] = {"results (XCom)": [], "exceptions": []}
    requests = 0
    for fault in faults:
        for path, call in _PATHS.items():
            _one(world, fault, path, call, exposed)
            requests += len(world.fake.calls)
    return exposed, requests


def _one(world: World, fault: str, path: str, call: Callable[[str, str], Any], exposed: dict[str, list[str]]) -> None:
    world.fake.reset()
    world.fake.add_rule(Rule(fault=fault, message=ECHO, times=2, provider="anthropic", retry_after=0.01))
    world.fake.add_rule(Rule(text="fine"))
    world.fake.batch_delay = 0.05
    try:
        exposed["results (XCom)"].append(json.dumps(call(world.store_conn, f"canary-{path}-{fault}"), default=str))
    except Exception as error:
        exposed["exceptions"].append(str(error) + repr(error) + "".join(traceback.format_exception(error)))


def _batch(store_conn: str, dag_id: str) -> Any:
    return run_batch(["a", "b"])


#: every call path, the batch's too
_PATHS: dict[str, Callable[[str, str], Any]] = {
    **{path: (lambda store_conn, dag_id, path=path: send(path, store_conn, dag_id)) for path in PATHS},
    "batch": _batch,
}


@contextmanager
def _captured_output() -> Iterator[Callable[[], str]]:
    """Everything written to this process's stdout and stderr (file descriptors 1 and 2: every logger, whatever
    handler or structlog processor writes it) and every log record at every level, while the block runs; yields a
    function returning the text."""
    records = io.StringIO()
    handler = logging.StreamHandler(records)  # where logging goes when a harness (pytest) owns the handlers
    handler.setLevel(logging.DEBUG)
    root, level = logging.getLogger(), logging.getLogger().level
    with tempfile.TemporaryFile() as sink:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            yield lambda: _read(sink) + records.getvalue()
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _read(sink: Any) -> str:
    sys.stdout.flush()
    sys.stderr.flush()
    sink.seek(0)
    return sink.read().decode("utf-8", "replace")


def _files(home: Any) -> list[Any]:
    return [path for path in home.rglob("*") if path.is_file()]
