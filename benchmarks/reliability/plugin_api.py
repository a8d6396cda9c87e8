"""The plugin's API: every route of the plugin's FastAPI app asked without a valid token, by users who may not, and
with bad values in every parameter. Each must be refused (401/403, or 404 for a thing the user may not see) with no
data in the answer, or answered 2xx/4xx (a 4xx naming the parameter), never 5xx, each in under a second, and the
store must come out unchanged (row counts; exactly unchanged after the refused requests).

The matrix runs in a child process (``python -m benchmarks.reliability.plugin_api --child OUT``) with its own Airflow
home, metadata DB and analytics store: Airflow reads its configuration once, when first imported, so a process that
already imported it (the suite runs other parts first; pytest's ``tests/conftest.py`` configures its own home) could
not be pointed at a fresh auth manager, JWT secret and store. The child mounts the plugin inside Airflow's own app
(``create_app("core")``, as ``tests/unit/plugin/test_app.py`` does) with SimpleAuthManager's restricted variant
(``tests/support/restricted_auth.py``: ``alice`` may read ``dag_a`` only), seeds the store with test_app's seeding, and
takes the routes and their parameters from the app object itself, so a new route or parameter is covered without an
edit here (or reported, when it needs a sample value this module lacks).

The store is PostgreSQL (the production store) when the server on 127.0.0.1:5432 answers, else SQLite; the full run
does both when it can (``SUPERVISOR_TEST_DB=sqlite`` forces SQLite).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from benchmarks.reliability import Section, timed

ROOT = Path(__file__).resolve().parents[2]
TITLE = "The plugin's API: access and bad input"
HEADERS = ["requests", "routes", "sent", "2xx", "4xx", "5xx", "slowest ms", "broken guarantees"]
#: the longest an answer may take (on the small seeded store); a slower one is sent again once, and only a repeat
#: that is slow too counts (a query that is slow is slow every time; a pause of the busy machine is not)
SLOW_S = 1.0
PREFIX = "/supervisor"
ENTRY_POINT = "supervisor_lib.plugin.airflow_plugin:SupervisorPlugin"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CHILD_TIMEOUT_S = {True: 300, False: 900}

#: the kinds of refused request, in the table's order
DENIALS = (
    "no token",
    "malformed token",
    "forged token (other secret, HS256, unsigned, other audience)",
    "expired or not-yet-valid token",
    "bad session cookie",
    "valid token, no role",
    "restricted user, another DAG's route or thing",
    "read-only user, a change",
    "wrong method",
)
CONTROLS = ("allowed user (control)", "restricted user, own and cross-DAG routes")
STATIC = ("static bundle, no token needed", "static bundle, traversal and misses")
RANGE = "fuzz: huge or inverted range"
RESTRICTED_FUZZ = "fuzz as the restricted user (aimed at another DAG)"
BODY_SHAPE = "fuzz: body not an object"
UNKNOWN = "fuzz: unknown parameters (as the restricted user)"
#: parameters no route takes, some named like the app's internals (the DAGs a user may read, the user)
STRAYS: list[list[tuple[str, Value]]] = [
    [("x", "' OR 1=1 --")],
    [("readable", "dag_b"), ("dag_ids", "dag_b")],
    [("user", "admin"), ("role", "admin")],
    [("dag_id[]", "dag_b"), ("dag_id.", "dag_b")],
    [("__proto__", "{}"), ("_token", "x")],
]


@dataclass(frozen=True)
class Encoded:
    """A value that goes into the URL as it is (already percent-encoded: invalid UTF-8, encoded slashes)."""

    text: str


@dataclass(frozen=True)
class Many:
    """A query parameter sent several times."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class RawJson:
    """A body value written as this JSON text (``NaN``, a lone surrogate)."""

    text: str


Value = str | int | float | bool | None | list[Any] | dict[str, Any] | Encoded | Many | RawJson

#: bad values by kind, for every parameter (query, path or body)
FUZZ: dict[str, list[Value]] = {
    "fuzz: wrong type": ["abc", "1.5", "true", "[1, 2]", "{}", "0x1F", Many(("a", "b"))],
    "fuzz: empty": ["", " ", "\t"],
    "fuzz: huge number": ["99999999999999999999", "1e309", "9" * 400, "2147483648", "9223372036854775808",
                          "-9223372036854775809", "1" + "0" * 5000],
    "fuzz: negative": ["-1", "-2", "-0", "-99999999999", "-1e309", "-inf"],
    "fuzz: unknown enum value": ["vibes", "JSON", "csv ", "Cost", "acknowledged\n", "*", "null"],
    "fuzz: long string (10 KB)": ["a" * 10_240, "é" * 5_120, "%" * 10_240, "' OR 1=1 -- " * 854],
    "fuzz: SQL injection": [
        "' OR 1=1 --", '"; DROP TABLE call_rollups; --', "1; DELETE FROM anomalies",
        "x' UNION SELECT content_json FROM call_transcripts --", "') OR ('1'='1", "%", "_", "\\",
        "1' AND 1=(SELECT 1 FROM pg_sleep(3)) --", "dag_a' --", 'dag_a" OR "1"="1',
    ],
    "fuzz: unicode and NUL": ["x\x00y", "\x00", "😀∑", "\u202e\u2066", "\ufeff", "\r\nX-Injected: 1",
                              Encoded("%FF%FE"), Encoded("%ED%A0%80"), Encoded("%C0%AE%C0%AE")],
    "fuzz: path traversal": ["..", "../dag_b", "../../../../etc/passwd", "..\\..\\windows\\win.ini", ".", "~",
                             "dag_a/../dag_b", "/etc/passwd", Encoded("%2e%2e%2f%2e%2e%2f"),
                             Encoded("..%2F..%2Fapp.py")],
}  # fmt: skip
#: what a JSON body can carry besides the texts above, by kind
BODY_FUZZ: dict[str, list[Value]] = {
    "fuzz: wrong type": [123, 1.5, True, None, [], {}, ["a"]],
    "fuzz: huge number": [1e308, 10**30, RawJson("NaN"), RawJson("Infinity")],
    "fuzz: negative": [-1, -1e-300, RawJson("-Infinity")],
    "fuzz: unicode and NUL": [RawJson('"\\ud800"'), RawJson('"\\u0000"')],
}
#: whole bodies that are not the object a route takes
BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"), (b"not json", "application/json"), (b"[]", "application/json"),
    (b"null", "application/json"), (b'{"a": ' * 20_000 + b"1" + b"}" * 20_000, "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"), (b'{"kind": "*", "scope": "*"}', "text/plain"),
    (b'{"' + b"a" * 10_240, "application/json"), (b"\xff\xfe{}", "application/json"),
]  # fmt: skip
#: query combinations that make the rollup queries work hardest, each sent with the widest range allowed
HEAVY: list[dict[str, str]] = (
    [
        {"metric": metric, "group_by": group}
        for metric in ("cost", "p95", "error_rate")
        for group in ("dag", "task", "tag", "model", "outcome")
    ]
    + [{"by": by} for by in ("dag", "task", "run", "model")]
    + [{"format": "csv"}, {"limit": "500"}, {"limit": "1000"}]
)
#: text in the seeded store that no refused answer may carry
DATA = ("secret plan", "claude-sonnet", "RateLimitError", "11.8x", "overloaded", "res-dag", "artifact of",
        "hunter2", "14 of 20", "spend_usd", '"calls"', "created_by", "+return 1")  # fmt: skip
#: text of ``dag_b`` (and of the provider finding only a user of every DAG sees) that ``alice`` must never get
THEIRS = ("secret plan of dag_b", "dag_b-", "(dag_b)", "res-dag_b", "dag:dag_b", "g-dag_b", "task:dag_b",
          "artifact of dag_b", "14 of 20")  # fmt: skip
#: what a file outside the static folder would show
SOURCE = ("from __future__", "def ", "import ", "root:x:", "[extensions]")


# -- the parent: set up, run the child, build the section --------------------------------------------------------------


@dataclass
class ApiSection(Section):
    """The section, and what the matrix covered (the test checks it against the app's own routes).

    Args:
        stores: the store dialects the matrix ran on.
        routes: every route of the plugin's app (``GET /api/overview``, ``GET /static/{path}``).
        coverage: per kind of request, the routes it reached.
        fuzzed: per route, the parameters the fuzz sent bad values in.
        counts: per kind of request: sent, 2xx, 4xx, 5xx, other (1xx/3xx), broken, slowest_ms.
    """

    stores: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    coverage: dict[str, list[str]] = field(default_factory=dict)
    fuzzed: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def run(quick: bool) -> Section:
    """Run the matrix (on PostgreSQL and SQLite stores for the full size, on one for ``quick``) and tabulate it."""
    section = ApiSection(key="plugin_api", title=TITLE, headers=HEADERS)
    with timed(section):
        results = []
        dialects, why = _dialects(quick)
        for dialect in dialects:
            result = _run_child(dialect, quick)
            results.append(result)
            section.failures += [f"[{dialect}] {line}" for line in result.get("failures", [])]
        _tabulate(section, results)
        section.summary = _summary(section, results, why)
    return section


def _dialects(quick: bool) -> tuple[list[str], str]:
    """The stores to run on, and why."""
    if os.environ.get("SUPERVISOR_TEST_DB", "auto") == "sqlite":
        return ["sqlite"], "SQLite forced by SUPERVISOR_TEST_DB"
    from tests.support.databases import PG_HOST, PG_PORT

    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            pass
    except OSError as error:
        return ["sqlite"], f"no PostgreSQL at {PG_HOST}:{PG_PORT} ({error})"
    if quick:
        return ["postgresql"], "PostgreSQL, the production store"
    return ["postgresql", "sqlite"], "PostgreSQL (the production store) and SQLite"


def _run_child(dialect: str, quick: bool) -> dict[str, Any]:
    """The matrix in a fresh process on fresh databases; its findings (a crash or timeout is one failure)."""
    home = Path(tempfile.mkdtemp(prefix="supervisor-plugin-api-"))
    out = home / "result.json"
    created: list[str] = []
    try:
        airflow_url, analytics = _databases(dialect, home, created)
        command = [sys.executable, "-m", "benchmarks.reliability.plugin_api", "--child", str(out)]
        command += ["--quick"] if quick else []
        env = _child_env(home, airflow_url, analytics)
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT_S[quick])  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"failures": [f"the matrix did not finish in {CHILD_TIMEOUT_S[quick]} s"]}
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout)[-1500:].replace("\n", " | ")
            return {"failures": [f"the matrix process failed (exit {done.returncode}): {tail}"]}
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result
    finally:
        _drop(created)
        shutil.rmtree(home, ignore_errors=True)


def _databases(dialect: str, home: Path, created: list[str]) -> tuple[str, str]:
    """The metadata DB's URL and the ``supervisor_analytics`` connection (JSON) for one child."""
    if dialect == "sqlite":
        sqlite = {"conn_type": "sqlite", "host": str(home / "analytics.db")}
        return f"sqlite:///{home / 'airflow.db'}", json.dumps(sqlite)
    from tests.support.databases import PG_HOST, PG_PORT, PG_USER, admin_sql

    stem = f"supervisor_plugin_api_{os.getpid()}_{secrets.token_hex(3)}"
    for name in (f"{stem}_airflow", f"{stem}_analytics"):
        admin_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
    analytics: dict[str, Any] = {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER,
                                 "schema": f"{stem}_analytics"}  # fmt: skip
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{stem}_airflow", json.dumps(analytics)


def _drop(names: list[str]) -> None:
    if not names:
        return
    from tests.support.databases import admin_sql

    for name in names:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _child_env(home: Path, airflow_url: str, analytics: str) -> dict[str, str]:
    """The child's environment: none of this process's Airflow or Supervisor settings, a fresh home and DBs."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "_AIRFLOW", "SUPERVISOR_")) and not key.endswith("_API_KEY")}  # fmt: skip
    plugins = home / "plugins"  # the installed package registers the plugin by its entry point
    plugins.mkdir()
    if not any(point.value == ENTRY_POINT for point in entry_points(group="airflow.plugins")):
        plugins = ROOT / "plugins"
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.support.restricted_auth.RestrictedAuthManager",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),  # 64 characters, as HS512 wants
        "AIRFLOW_CONN_SUPERVISOR_ANALYTICS": analytics, "SUPERVISOR_HOME": str(home),
        "SUPERVISOR_ARTIFACTS_ROOT": str(home / "artifacts"), "SUPERVISOR_SANDBOX_MIN": "none",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    })  # fmt: skip
    return env


def _tabulate(section: ApiSection, results: list[dict[str, Any]]) -> None:
    """Add the children's tallies up, one row per kind of request, and record the coverage."""
    section.stores = [r["dialect"] for r in results if "dialect" in r]
    section.routes = sorted({route for r in results for route in r.get("routes", [])})
    coverage: dict[str, set[str]] = defaultdict(set)
    fuzzed: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        for kind, tally in result.get("kinds", {}).items():
            total = counts.setdefault(kind, defaultdict(int))
            for key, value in tally.items():
                if key == "routes":
                    coverage[kind].update(value)
                elif key == "slowest_ms":
                    total[key] = max(total[key], value)
                else:
                    total[key] += value
        for route, params in result.get("fuzzed", {}).items():
            fuzzed[route].update(params)
    section.coverage = {kind: sorted(routes) for kind, routes in coverage.items()}
    section.fuzzed = {route: sorted(params) for route, params in fuzzed.items()}
    section.counts = {kind: dict(tally) for kind, tally in counts.items()}
    for kind, tally in section.counts.items():
        section.rows.append([kind, len(coverage[kind]), tally["sent"], tally["2xx"], tally["4xx"], tally["5xx"],
                             tally["slowest_ms"], tally["broken"]])  # fmt: skip


def _summary(section: ApiSection, results: list[dict[str, Any]], why: str) -> str:
    """The paragraph: the guarantee, what was sent, what came back, and the defects this matrix found."""
    counts = section.counts.values()
    sent, fives = sum(c["sent"] for c in counts), sum(c["5xx"] for c in counts)
    refused = sum(section.counts.get(kind, {}).get("sent", 0) for kind in DENIALS)
    fuzz = sum(c["sent"] for kind, c in section.counts.items() if kind.startswith("fuzz"))
    slowest = max((c["slowest_ms"] for c in counts), default=0)
    resent = sum(r.get("resent", 0) for r in results)
    slow_again = any("twice" in line for line in section.failures)
    again = "some were slow again" if slow_again else "each was fast the second time"
    api = [route for route in section.routes if "/api/" in route]
    tables = "; ".join(f"{r['dialect']}: {r.get('tables', '?')} tables, {r.get('rows', '?')} rows" for r in results)
    store_ok = not any("changed the store" in line or "a mute changed" in line for line in section.failures)
    return (
        f"Every route of the plugin's FastAPI app ({len(api)} API routes, found on the app object, and the static"
        f" bundle) must refuse a request without a valid token (401 or 403) and a user who may not (403, or 404 for"
        f" a thing they may not see), with no data in the answer; and must answer bad input (wrong types, empty,"
        f" huge and negative numbers, huge or inverted ranges, unknown values, 10 KB strings, SQL injection,"
        f" unicode and NUL, path traversal, bodies that are not objects) with a 2xx or a 4xx that names the"
        f" parameter, never a 5xx, each in under {SLOW_S:.0f} s, leaving the store as it was. Stores: {why}."
        f" {sent:,} requests: {refused:,} that must be refused, {fuzz:,} bad inputs (as admin, and as a user"
        f" limited to one DAG aiming at another's data), and controls that the routes do answer the users who may."
        f" {fives} answered 5xx; the slowest took {slowest} ms"
        + (f" ({resent} over {SLOW_S:.0f} s were sent again: {again})" if resent else "")
        + f". The store ({tables}) "
        + ("kept every row count, and the refused requests changed no row at all." if store_ok
           else "did not come out unchanged (see the broken guarantees).")
        + " Found by this matrix and fixed in `supervisor_lib/plugin/app.py` (tests in"
        " `tests/unit/plugin/test_app_inputs.py`): acknowledging a finding was a 500 on PostgreSQL (its times came"
        " back as `datetime`s); a body value JSON cannot carry back (`NaN`, a lone surrogate) made FastAPI's 422 a"
        " 500; a NUL in a path DAG id broke Airflow's access check on PostgreSQL (500); a map index beyond 32 bits,"
        " and a NUL in the anomalies' text filters or in a mute's scope, reached the store (503); and a user limited"
        " to some DAGs saw other DAGs' mutes and learnt the DAG of another DAG's finding from a 403."
    )  # fmt: skip


# -- the child: the app, the users, the store --------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a route, as the app declares it."""

    name: str
    where: str  # path, query or body
    type: str  # int, float, choice or text
    required: bool


@dataclass(frozen=True)
class Route:
    """One route of the plugin's app (a method and a path)."""

    method: str
    path: str
    params: tuple[Param, ...] = ()
    embed: bool = True  # the body is an object of the body parameters

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def of(self, where: str) -> list[Param]:
        return [param for param in self.params if param.where == where]


def route_keys(app: Any) -> list[str]:
    """``METHOD /path`` of every route of the plugin's ``app`` (a mounted folder: ``GET /static/{path}``)."""
    from starlette.routing import Mount

    keys = [route.key for route in routes_of(app)]
    keys += [f"GET {route.path}/{{path}}" for route in app.routes if isinstance(route, Mount)]
    return sorted(keys)


def routes_of(app: Any) -> list[Route]:
    """The app's API routes with their parameters (path, query and body, from the routes' dependency trees)."""
    from fastapi.dependencies.utils import get_flat_dependant
    from fastapi.routing import APIRoute

    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        flat = get_flat_dependant(route.dependant, skip_repeats=True)
        params: dict[tuple[str, str], Param] = {}
        for where, fields in (("path", flat.path_params), ("query", flat.query_params), ("body", flat.body_params)):
            for model in fields:
                info = model.field_info
                params.setdefault((where, model.alias), Param(model.alias, where, _type(info.annotation),
                                                              info.is_required()))  # fmt: skip
        body = [p for p in params.values() if p.where == "body"]
        embed = len(body) > 1 or bool(body and getattr(flat.body_params[0].field_info, "embed", False))
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}, key=METHODS.index):
            found.append(Route(method, route.path, tuple(params.values()), embed))
    return found


def _type(annotation: Any) -> str:
    """``int``, ``float``, ``choice`` (a ``Literal``) or ``text``."""
    if typing.get_origin(annotation) is typing.Literal:
        return "choice"
    args = typing.get_args(annotation) or (annotation,)
    for arg in args:
        if arg is int:
            return "int"
        if arg is float:
            return "float"
        if typing.get_origin(arg) is typing.Literal:
            return "choice"
    return "text"


@dataclass
class Users:
    """Authorization headers (and cookies) the matrix sends."""

    admin: str
    alice: str  # reads dag_a only
    bob: str  # a viewer of every DAG
    denials: dict[str, list[dict[str, str]]]  # per kind of refused request (carol, with no role, among them)


@dataclass
class Probe:
    """One request and what must come of it."""

    kind: str
    route: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    expect: str = "fuzz"  # denied, allowed, fuzz, filtered, method, static, static-miss
    named: tuple[str, ...] = ()  # a 4xx must name one of these
    statuses: tuple[int, ...] = (401, 403)  # for "denied"
    param: str = ""
    readable: tuple[str, ...] = ()  # the DAGs the sender may read (a refusal may name those)
    restricted: bool = False  # sent by alice: nothing of dag_b may come back

    def text(self) -> str:
        """The request as text (to tell data the answer echoes from data it leaks)."""
        body = self.body.decode("utf-8", errors="replace") if self.body else ""
        return unquote(self.url) + body + json.dumps(self.headers)


@dataclass
class Tally:
    """What came of one kind of request."""

    sent: int = 0
    ok: int = 0
    client: int = 0
    server: int = 0
    other: int = 0
    broken: int = 0
    slowest_ms: int = 0
    routes: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {"sent": self.sent, "2xx": self.ok, "4xx": self.client, "5xx": self.server, "other": self.other,
                "broken": self.broken, "slowest_ms": self.slowest_ms, "routes": sorted(self.routes)}  # fmt: skip


class Matrix:
    """Sends probes through the app and keeps the tallies and the broken guarantees."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.tallies: dict[str, Tally] = {}
        self.problems: dict[tuple[str, str, str], list[Any]] = {}  # (kind, route, problem) -> [count, example]
        self.resent = 0
        self.fuzzed: dict[str, set[str]] = defaultdict(set)
        self.mutes_made: set[str] = set()
        self.mutes_ended: set[str] = set()

    def send(self, probe: Probe) -> Any:
        """Send ``probe``, judge the answer, tally it; return the answer."""
        answer, seconds = self._timed(probe)
        if seconds >= SLOW_S:
            self.resent += 1
            seconds = min(seconds, self._timed(probe)[1])
        problems = judge(probe, answer)
        if seconds >= SLOW_S:
            problems.append(f"took {seconds * 1000:.0f} ms, twice")
        self._tally(probe, answer.status_code, seconds, problems)
        self._note_mutes(probe, answer)
        return answer

    def _timed(self, probe: Probe) -> tuple[Any, float]:
        self.client.cookies.clear()  # the only cookies are the probe's own (the refresh middleware sets some)
        headers = dict(probe.headers)
        if probe.body is not None:
            headers.setdefault("Content-Type", "application/json")
        start = time.perf_counter()
        answer = self.client.request(probe.method, probe.url, headers=headers, content=probe.body)
        return answer, time.perf_counter() - start

    def _tally(self, probe: Probe, status: int, seconds: float, problems: list[str]) -> None:
        tally = self.tallies.setdefault(probe.kind, Tally())
        tally.sent += 1
        tally.routes.add(probe.route)
        bucket = (
            "ok" if 200 <= status < 300 else "client" if 400 <= status < 500 else "server" if status >= 500 else "other"
        )
        setattr(tally, bucket, getattr(tally, bucket) + 1)
        tally.slowest_ms = max(tally.slowest_ms, round(seconds * 1000))
        tally.broken += bool(problems)
        if probe.param:
            self.fuzzed[probe.route].add(probe.param)
        for problem in problems:
            seen = self.problems.setdefault((probe.kind, probe.route, _shape(problem)), [0, ""])
            seen[0] += 1
            seen[1] = seen[1] or f"{probe.method} {_short(probe.url)} ({probe.param or 'as sent'}): {problem}"

    def _note_mutes(self, probe: Probe, answer: Any) -> None:
        """Mutes a 2xx made or ended (the fuzz may make some: their keys are data, not SQL)."""
        if not 200 <= answer.status_code < 300:
            return
        if probe.method == "POST" and "mute_key" in answer.text:
            self.mutes_made.add(answer.json()["mute_key"])
        if probe.method == "DELETE":
            self.mutes_ended.add(unquote(probe.url.split("/mutes/", 1)[-1]))

    def failures(self) -> list[str]:
        """One line per broken guarantee (per kind, route and kind of problem, with one example)."""
        return [f"{kind}: {example}" + (f" (and {count - 1} more like it)" if count > 1 else "")
                for (kind, _route, _shape_), (count, example) in sorted(self.problems.items())]  # fmt: skip


def _shape(problem: str) -> str:
    """A problem without its numbers and quoted values (to count alike ones together)."""
    return re.sub(r"\d+|'[^']*'", "#", problem)[:80]


def _short(url: str) -> str:
    return url if len(url) <= 140 else f"{url[:120]}... ({len(url)} characters)"


# -- judging an answer -------------------------------------------------------------------------------------------------


def judge(probe: Probe, answer: Any) -> list[str]:
    """What ``answer`` broke of what ``probe`` expects (empty: nothing)."""
    status, problems = answer.status_code, []
    if status >= 500:
        problems.append(f"answered {status}: {answer.text[:160]}")
    elif not 200 <= status < 300 and not 400 <= status < 500:
        problems.append(f"answered {status} (neither 2xx nor 4xx)")
    elif probe.expect == "denied":
        problems += _denied(probe, answer)
    elif probe.expect == "allowed" and not 200 <= status < 300:
        problems.append(f"a user who may was refused: {status} {answer.text[:120]}")
    elif probe.expect == "method" and status != 405:
        problems.append(f"answered {status}, not 405")
    elif probe.expect == "static" and (status != 200 or not answer.content):
        problems.append(f"the bundle's file answered {status}")
    elif probe.expect == "static-miss":
        problems += _static_miss(answer)
    elif probe.expect in ("fuzz", "filtered") and 400 <= status < 500:
        problems += _names(probe, answer)
    if probe.restricted:
        problems += _theirs(probe, answer)
    return problems


def _denied(probe: Probe, answer: Any) -> list[str]:
    """A refusal: an expected status, and an answer that is only a short ``detail`` with no data in it."""
    problems = []
    if answer.status_code not in probe.statuses:
        problems.append(f"answered {answer.status_code}, not {' or '.join(map(str, probe.statuses))}")
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and set(body) == {"detail"} and isinstance(body["detail"], str)):
        problems.append(f"the refusal is not a bare detail: {answer.text[:120]}")
    asked = probe.text()
    names = [dag for dag in ("dag_a", "dag_b") if dag not in probe.readable]
    leaked = [m for m in (*DATA, *names) if m in answer.text and m not in asked]
    if leaked:
        problems.append(f"the refusal carries data ({', '.join(leaked)}): {answer.text[:120]}")
    return problems


def _names(probe: Probe, answer: Any) -> list[str]:
    """A 4xx to bad input names the parameter (a 403/404/405 from access or routing need not)."""
    if answer.status_code in (403, 405) or (answer.status_code == 404 and answer.text == '{"detail":"Not Found"}'):
        return []
    if any(name in answer.text for name in probe.named):
        return []
    return [f"the {answer.status_code} does not name {' or '.join(probe.named)}: {answer.text[:120]}"]


def _theirs(probe: Probe, answer: Any) -> list[str]:
    """Nothing of ``dag_b`` (or the provider finding) in an answer to ``alice``."""
    asked = probe.text()
    leaked = [m for m in (*THEIRS, "dag_b") if m in answer.text and m not in asked]
    return [f"the restricted user got another DAG's data ({', '.join(leaked)})"] if leaked else []


def _static_miss(answer: Any) -> list[str]:
    problems = [] if answer.status_code in (400, 404, 405) else [f"answered {answer.status_code}, not 404"]
    shown = [marker for marker in SOURCE if marker in answer.text]
    return problems + ([f"a file outside the bundle was served ({', '.join(shown)})"] if shown else [])


# -- building requests -------------------------------------------------------------------------------------------------


@dataclass
class World:
    """The app under test and what the probes are built from."""

    routes: list[Route]
    prefix: str
    static: dict[str, list[str]]  # a mounted folder's path (``/static``) -> its files
    users: Users
    mine: dict[str, Any]  # a sample value per path/body parameter, about dag_a
    theirs: dict[str, Any]  # the same, about dag_b
    aimed: list[str]  # values alice sends to reach dag_b's data
    quick: bool


def url_of(world: World, route: Route, values: dict[str, Value], query: Iterable[tuple[str, Value]] = ()) -> str:
    """The route's URL with ``values`` in its path and ``query`` after it."""

    def fill(match: re.Match[str]) -> str:
        return _encoded(values[match.group(1)])

    path = world.prefix + re.sub(r"\{(\w+)(?::\w+)?\}", fill, route.path)
    parts = []
    for name, value in query:
        for one in value.values if isinstance(value, Many) else (value,):
            parts.append(f"{quote(name)}={_encoded(one)}")
    return path + ("?" + "&".join(parts) if parts else "")


def _encoded(value: Value) -> str:
    return value.text if isinstance(value, Encoded) else quote(str(value), safe="")


def body_of(route: Route, values: dict[str, Value]) -> bytes | None:
    """The JSON body of ``values`` for the route's body parameters (``None``: the route takes no body)."""
    params = route.of("body")
    if not params:
        return None
    if not route.embed:
        return _json(values[params[0].name]).encode()
    fields = [f"{json.dumps(p.name)}: {_json(values[p.name])}" for p in params if p.name in values]
    return ("{" + ", ".join(fields) + "}").encode("utf-8", errors="surrogatepass")


def _json(value: Value) -> str:
    return value.text if isinstance(value, RawJson) else json.dumps(value)


def probe(world: World, route: Route, kind: str, values: dict[str, Value], **extra: Any) -> Probe:
    """A probe of ``route`` with path and body ``values`` (the rest: ``extra``, e.g. ``query``, ``headers``)."""
    query = extra.pop("query", ())
    return Probe(kind, route.key, extra.pop("method", route.method), url_of(world, route, values, query),
                 body=body_of(route, values), **extra)  # fmt: skip


def missing_samples(world: World) -> list[str]:
    """Parameters the matrix cannot fill (a new route's): each is a broken guarantee until a sample is added."""
    return [f"{route.key}: no sample value for the {p.where} parameter {p.name!r} (add one to plugin_api.samples)"
            for route in world.routes for p in route.params
            if (p.where != "query" or p.required) and p.name not in world.mine]  # fmt: skip


def denial_probes(world: World) -> Iterator[Probe]:
    """Every route × every kind of refused request."""
    users = world.users
    for turn, route in enumerate(world.routes):
        for kind, variants in users.denials.items():
            for headers in _some(variants, world.quick, turn, 2):
                yield probe(world, route, kind, world.mine, headers=headers, expect="denied")
        if any(world.mine[p.name] != world.theirs[p.name] for p in route.params if p.where != "query"):
            yield probe(world, route, DENIALS[6], world.theirs, headers=_bearer(users.alice), expect="denied",
                        statuses=(403, 404), **ALICE)  # fmt: skip
        if route.method != "GET":
            for user, who in ((users.bob, BOB), (users.alice, ALICE)):
                yield probe(world, route, DENIALS[7], world.mine, headers=_bearer(user), expect="denied",
                            statuses=(403,), **who)  # fmt: skip
    served: dict[str, set[str]] = defaultdict(set)
    for route in world.routes:
        served[route.path].add(route.method)
    for route in world.routes:
        for method in (m for m in METHODS if m not in served[route.path]):
            yield probe(world, route, DENIALS[8], world.mine, method=method, headers=_bearer(users.admin),
                        expect="method")  # fmt: skip


def control_probes(world: World) -> Iterator[Probe]:
    """The routes do answer those who may: admin (a token, and the UI's cookie), and alice on her DAG and across."""
    users = world.users
    for route in world.routes:  # GETs first, then the changes (a DELETE ends the mute a POST made)
        yield probe(world, route, CONTROLS[0], world.mine, headers=_bearer(users.admin), expect="allowed")
        if route.method == "GET":
            yield probe(world, route, CONTROLS[0], world.mine, headers={"Cookie": f"_token={users.admin}"},
                        expect="allowed")  # fmt: skip
            yield probe(world, route, CONTROLS[1], world.mine, headers=_bearer(users.alice), expect="allowed", **ALICE)
            if "dag_id" in {p.name for p in route.of("query")}:
                yield probe(world, route, CONTROLS[1], world.mine, headers=_bearer(users.alice), expect="filtered",
                            query=[("dag_id", "dag_b")], named=("dag_id",), **ALICE)  # fmt: skip


def static_probes(world: World) -> Iterator[Probe]:
    """The bundle needs no token (it is code, no data); nothing outside its folder is served."""
    for folder, files in world.static.items():
        yield from _static_probes(f"GET {folder}/{{path}}", f"{world.prefix}{folder}/", files)


def _static_probes(key: str, base: str, files: list[str]) -> Iterator[Probe]:
    for name in files:
        for headers in ({}, {"Authorization": "Bearer not.a.token"}):
            yield Probe(STATIC[0], key, "GET", base + quote(name), headers=headers, expect="static")
    misses = ["../app.py", "%2e%2e/app.py", "..%2fapp.py", "%2e%2e%2f%2e%2e%2fplugin%2fapp.py", "....//app.py",
              "..%5capp.py", "", "nope.js", "supervisor.js%00.py", "%00", "a" * 10_240, "icon.svg/..%2f..%2fapp.py",
              "%2fetc%2fpasswd", "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "%c0%ae%c0%ae/app.py"]  # fmt: skip
    for miss in misses:
        yield Probe(STATIC[1], key, "GET", base + miss, expect="static-miss")
    yield Probe(STATIC[1], key, "POST", base + "supervisor.js", body=b"{}", expect="static-miss")


def fuzz_probes(world: World) -> Iterator[Probe]:
    """Every route × every parameter × bad values of every kind (quick: one value of each kind, in turn), as admin."""
    turn = 0
    for route in world.routes:
        for param in route.params:
            turn += 1
            for kind, values in FUZZ.items():
                extra = BODY_FUZZ.get(kind, []) if param.where == "body" else []
                for value in _some([*values, *extra], world.quick, turn):
                    made = _bad(world, route, param, value, kind, world.users.admin)
                    if made is not None:
                        yield made
        yield from _body_probes(world, route)
        yield from _range_probes(world, route)


def stray_probes(world: World) -> Iterator[Probe]:
    """Every route × parameters it does not take, as ``alice``: ignored or refused, never a way to more data."""
    for route in world.routes:
        for query in _some(STRAYS, world.quick, len(route.path), 2):
            named = tuple(name for name, _ in query)
            yield probe(world, route, UNKNOWN, world.mine, query=query, headers=_bearer(world.users.alice),
                        expect="filtered", named=named, param="(unknown)", **ALICE)  # fmt: skip


def restricted_probes(world: World) -> Iterator[Probe]:
    """Every route × every parameter × values aimed at ``dag_b``, as ``alice`` (quick: two of them, in turn)."""
    turn = 0
    for route in world.routes:
        for param in route.params:
            turn += 3
            for value in _some(world.aimed, world.quick, turn, 2):
                made = _bad(world, route, param, value, RESTRICTED_FUZZ, world.users.alice)
                if made is not None:
                    made.expect, made.readable, made.restricted = "filtered", ("dag_a",), True
                    yield made


T = TypeVar("T")


def _some(values: list[T], quick: bool, turn: int, take: int = 1) -> list[T]:
    """All ``values``, or (``quick``) ``take`` of them, starting at ``turn`` (so the quick runs still use each)."""
    if not quick:
        return values
    return [values[(turn + n) % len(values)] for n in range(min(take, len(values)))]


def _bad(world: World, route: Route, param: Param, value: Value, kind: str, token: str) -> Probe | None:
    """``route`` with ``value`` in ``param`` and good values elsewhere (``None``: the value cannot go there)."""
    if isinstance(value, Many) and param.where != "query":
        return None
    if isinstance(value, RawJson) and param.where != "body":
        return None
    if isinstance(value, Encoded) and param.where == "body":
        return None
    values = {**world.mine}
    query: list[tuple[str, Value]] = []
    if param.where == "query":
        query.append((param.name, value))
    else:
        values[param.name] = value
    return probe(world, route, kind, values, query=query, headers=_bearer(token), named=(param.name,),
                 param=param.name)  # fmt: skip


def _body_probes(world: World, route: Route) -> Iterator[Probe]:
    if not route.of("body"):
        return
    for body, content_type in _some(BODIES, world.quick, len(route.path), 3):
        headers = {**_bearer(world.users.admin), "Content-Type": content_type}
        made = probe(world, route, BODY_SHAPE, world.mine, headers=headers, named=("body",), param="body")
        made.body = body
        yield made


def _range_probes(world: World, route: Route) -> Iterator[Probe]:
    """Huge, inverted, empty and out-of-bounds ranges; the widest allowed one with the heaviest groupings."""
    names = {p.name for p in route.of("query")}
    if not {"start", "end"} <= names:
        return
    now = datetime.now(UTC).replace(microsecond=0)
    widest = (now - timedelta(days=400)).isoformat()
    heavy = [{"start": widest, **combo} for combo in HEAVY if set(combo) <= names]
    queries = [*_some(_ranges(now), world.quick, len(route.path), 10), *_some(heavy, world.quick, len(route.path), 3)]
    for query in queries:
        yield probe(world, route, RANGE, world.mine, query=list(query.items()), headers=_bearer(world.users.admin),
                    named=tuple(query), param="start")  # fmt: skip


def _ranges(now: datetime) -> list[dict[str, str]]:
    century = now - timedelta(days=36_525)
    return [
        {"start": century.isoformat()}, {"start": century.isoformat(), "end": (century + timedelta(1)).isoformat()},
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": (now - timedelta(days=401)).isoformat()}, {"start": (now - timedelta(days=400)).isoformat()},
        {"start": "1970-01-02T00:00:00Z", "end": "1971-02-06T00:00:00Z"},
        {"start": "2999-12-01T00:00:00Z", "end": "2999-12-30T23:59:59-23:59"},
        {"start": "0001-01-01T00:00:00", "end": "9999-12-31T23:59:59Z"}, {"end": "1926-01-01T00:00:00Z"},
        {"start": "2026-02-30"}, {"start": "2026-13-45T25:61:00"}, {"end": "now"}, {"start": "1700000000"},
        {"start": "P1D"}, {"start": "2026-01-01T00:00:00+24:00"}, {"end": "2026-01-01T00:00:00.9999999999Z"},
        {"start": "-2026-01-01"}, {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00.000001Z"},
    ]  # fmt: skip


#: who sends a probe, for the leak checks: alice reads dag_a only (nothing of dag_b may reach her); bob reads both
ALICE: dict[str, Any] = {"readable": ("dag_a",), "restricted": True}
BOB: dict[str, Any] = {"readable": ("dag_a", "dag_b")}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the child's set-up ------------------------------------------------------------------------------------------------


def seed(store: Any) -> dict[str, Any]:
    """test_app's store (two DAGs' calls, findings, decisions, budgets), a mute and artifacts per DAG; the ids."""
    from supervisor_lib.analytics import findings
    from tests.unit.plugin.test_app import _seed

    _seed(store)
    now = datetime.now(UTC)
    root = Path(os.environ["SUPERVISOR_ARTIFACTS_ROOT"])
    for dag, run in (("dag_a", "r1"), ("dag_b", "r2")):
        findings.mute(store, f"context_blowup|task:{dag}.fix", "admin", now, 30)
        folder = root / dag / run / "fix"
        folder.mkdir(parents=True)
        (folder / "patch.diff").write_text(f"artifact of {dag}\n")
    ids = {row["dag_id"]: row["finding_id"] for row in findings.listed(store, now - timedelta(days=1), now)}
    return {"finding_a": ids["dag_a"], "finding_b": ids["dag_b"], "finding_provider": ids[None]}


def samples(ids: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A good value per path and body parameter: about ``dag_a`` (``alice``'s), and about ``dag_b``."""
    mine = {"dag_id": "dag_a", "run_id": "r1", "task_id": "fix", "map_index": -1, "finding_id": ids["finding_a"],
            "mute_key": "context_blowup|task:dag_a.fix", "status": "acknowledged", "kind": "context_blowup",
            "scope": "task:dag_a.fix", "days": 1}  # fmt: skip
    theirs = {**mine, "dag_id": "dag_b", "run_id": "r2", "finding_id": ids["finding_b"],
              "mute_key": "context_blowup|task:dag_b.fix", "scope": "task:dag_b.fix"}  # fmt: skip
    return mine, theirs


def aimed(ids: dict[str, Any]) -> list[str]:
    """What ``alice`` puts in any parameter to try to reach ``dag_b``'s data (or the provider finding)."""
    return ["dag_b", "DAG_B", " dag_b", "dag_b\x00", "dag_b' OR '1'='1", "dag_a' OR dag_id = 'dag_b",
            "dag_a') OR ('1'='1", "%", "dag_%", "dag\\_b", "*", "~", "r2", "../dag_b", "dag_a/../dag_b",
            "task:dag_b.fix", "dag:dag_b", "context_blowup|task:dag_b.fix", "provider:anthropic",
            ids["finding_b"], ids["finding_provider"]]  # fmt: skip


def make_users(app: Any) -> Users:
    """Tokens for admin, alice and bob, and the bad tokens, cookies and the role-less carol of each kind of denial."""
    import jwt
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = app.state.auth_manager

    def token(name: str, role: str | None, **kw: Any) -> str:
        return str(manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role), **kw))

    admin = token("admin", "admin")
    claims, header = jwt.decode(admin, options={"verify_signature": False}), jwt.get_unverified_header(admin)
    secret, alg, kid = os.environ["AIRFLOW__API_AUTH__JWT_SECRET"], header["alg"], {"kid": header["kid"]}
    later = int(time.time()) + 3600
    forged = jwt.encode(claims, secrets.token_hex(32), algorithm=alg, headers=kid)
    expired = token("admin", "admin", expiration_time_in_seconds=-3600)
    unsigned = _unsigned(claims, kid)
    denials: dict[str, list[dict[str, str]]] = {
        DENIALS[0]: [{}],
        DENIALS[1]: [_bearer("not.a.token"), _bearer("x" * 8_000), {"Authorization": "Bearer"},
                     {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": f"Token {admin}"},
                     {**_bearer("not.a.token"), "Cookie": f"_token={admin}"}],  # a bad token wins over the cookie
        DENIALS[2]: [_bearer(forged), _bearer(jwt.encode(claims, secret, algorithm="HS256", headers=kid)),
                     _bearer(unsigned), _bearer(jwt.encode({**claims, "aud": "elsewhere"}, secret, alg, kid))],
        DENIALS[3]: [_bearer(expired),
                     _bearer(jwt.encode({**claims, "nbf": later, "iat": later}, secret, algorithm=alg, headers=kid))],
        DENIALS[4]: [{"Cookie": "_token=garbage"}, {"Cookie": f"_token={forged}"}, {"Cookie": f"_token={expired}"},
                     {"Cookie": f"_token={unsigned}"}],
        DENIALS[5]: [_bearer(token("carol", None))],
    }  # fmt: skip
    return Users(admin, token("alice", "viewer"), token("bob", "viewer"), denials)


def _unsigned(claims: dict[str, Any], extra: dict[str, str]) -> str:
    """The claims with ``alg: none`` and no signature."""
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', **extra})}.{part(claims)}."


def tables(store: Any) -> list[str]:
    """The store's tables."""
    sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
           if store.dialect == "sqlite" else
           "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")  # fmt: skip
    return sorted(row[0] for row in store.run(lambda cur: cur.execute(sql).fetchall()))


def snapshot(store: Any) -> dict[str, tuple[int, str]]:
    """Per table: its row count and a digest of its rows."""
    found = {}
    for table in tables(store):
        rows = store.run(lambda cur, t=table: cur.execute(f'SELECT * FROM "{t}"').fetchall())
        text = "\n".join(sorted(repr(tuple(row)) for row in rows))
        found[table] = (len(rows), hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest())
    return found


def mute_keys(store: Any) -> set[str]:
    return {row[0] for row in store.run(lambda cur: cur.execute("SELECT mute_key FROM anomaly_mutes").fetchall())}


def compare(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]], exact: bool) -> list[str]:
    """Tables lost or added, and tables whose rows changed (``exact``) or whose count changed."""
    problems = [f"table {t!r} is gone" for t in sorted(set(before) - set(after))]
    problems += [f"a table {t!r} appeared" for t in sorted(set(after) - set(before))]
    for table in sorted(set(before) & set(after)):
        (count, digest), (now, then) = before[table], after[table]
        if count != now or (exact and digest != then):
            problems.append(f"table {table!r} changed: {count} rows before, {now} after")
    return problems


def mounted(app: Any) -> Any:
    """The plugin's app, as Airflow's app mounts it."""
    from starlette.routing import Mount

    return next(route.app for route in app.routes if isinstance(route, Mount) and route.path == PREFIX)


def build_world(app: Any, ids: dict[str, Any], quick: bool) -> World:
    """The plugin's app as Airflow mounts it, its routes and files, the users and the sample values."""
    from starlette.routing import Mount

    plugin = mounted(app)
    folders: dict[str, Any] = {r.path: r.app for r in plugin.routes if isinstance(r, Mount)}  # StaticFiles apps
    static = {path: sorted(p.name for p in Path(str(files.directory)).iterdir() if p.is_file())
              for path, files in folders.items()}  # fmt: skip
    mine, theirs = samples(ids)
    return World(routes_of(plugin), PREFIX, static, make_users(app), mine, theirs, aimed(ids), quick)


def child(out: Path, quick: bool) -> None:
    """Set Airflow up (this process's environment is the parent's making), run the matrix, write its findings."""
    from airflow.api_fastapi.app import create_app
    from airflow.utils import db
    from fastapi.testclient import TestClient

    from supervisor_lib.store import Store

    db.initdb()
    store = Store()
    ids = seed(store)
    app = create_app("core")
    world = build_world(app, ids, quick)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        matrix = Matrix(client)
        failures = play(matrix, world, store)
    result = {
        "dialect": store.dialect, "routes": route_keys(mounted(app)),
        "kinds": {kind: tally.as_json() for kind, tally in matrix.tallies.items()},
        "fuzzed": {route: sorted(params) for route, params in matrix.fuzzed.items()},
        "failures": failures + matrix.failures(), "resent": matrix.resent,
        "tables": len(tables(store)), "rows": sum(count for count, _ in snapshot(store).values()),
    }  # fmt: skip
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")


def play(matrix: Matrix, world: World, store: Any) -> list[str]:
    """Warm up, then the refusals (which must change nothing), the controls, the fuzz; the store checks' findings."""
    failures = missing_samples(world)
    lacking = {line.split(": ", 1)[0] for line in failures}
    world.routes = [route for route in world.routes if route.key not in lacking]  # the rest still run
    warm = next(r for r in world.routes if r.method == "GET" and not r.of("path"))
    for _ in range(8):  # the first answers open the pool's connections
        matrix.client.get(url_of(world, warm, {}), headers=_bearer(world.users.admin))
    before = snapshot(store)
    _all(matrix, denial_probes(world))
    _all(matrix, static_probes(world))
    failures += [f"a refused request changed the store: {p}" for p in compare(before, snapshot(store), exact=True)]
    _all(matrix, control_probes(world))
    before, mutes = snapshot(store), mute_keys(store)
    _all(matrix, fuzz_probes(world))
    _all(matrix, restricted_probes(world))
    _all(matrix, stray_probes(world))
    after, now = snapshot(store), mute_keys(store)
    for tables_ in (before, after):  # mutes the fuzz made are checked key by key below
        tables_.pop("anomaly_mutes", None)
    failures += [f"the fuzz changed the store: {p}" for p in compare(before, after, exact=False)]
    strays = (now - mutes - matrix.mutes_made) | (mutes - now - matrix.mutes_ended)
    failures += [f"a mute changed that no answer made or ended: {key!r}" for key in sorted(strays)[:5]]
    return failures


def _all(matrix: Matrix, probes: Iterable[Probe]) -> None:
    for one in probes:
        matrix.send(one)


def main(argv: list[str] | None = None) -> int:
    """``--child OUT [--quick]``: run the matrix here (the environment set up by :func:`run`); else run the part."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability.plugin_api")
    parser.add_argument("--child", type=Path, help="run the matrix in this process and write its findings here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.quick)
        return 0
    section = run(args.quick)
    print(section.markdown())
    return 1 if section.failures else 0


if __name__ == "__main__":
    sys.exit(main())
