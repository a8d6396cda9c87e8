"""Dashboard queries at scale: every endpoint the Supervisor views call, answered from the rollups, with 10M recorded
calls on PostgreSQL and 1M on SQLite; the same answers computed by scanning ``call_attempts``; and the sidebar page's
load time in headless Chromium on a real Airflow. All side by side in one run.

**Data.** ``--pg-rows`` / ``--sqlite-rows`` calls over the 90 days before now, from 200 DAGs (10 domains x 20
workflows, uneven volumes): a quarter run hourly (each run ~10 min, a few calls per task, deferred), the rest daily
(each run ~30 min, every task mapped over the run's items). Each DAG has 3-8 tasks, a team (some none) and tags
(some none); each task a task type and one of 6 models (2 providers); a third of the DAGs are routed, and 10% of
their calls fail over to the other provider. Outcomes: 90% answered, 5% failed (4 error types, no cost), 2%
rejected, 3% cached (attempt 0, what it saved); 4% are a model retry, 1.5% a task retry; latencies 0.1-60 s
(median ~1 s), tokens with prompt caching, costs from the price table (1.5% unpriced = NULL, 2% estimated).
Routing decisions for 1 in 16 first attempts of routed DAGs, transcripts for the last 2 days, budget windows
per DAG, provider and team, a few reservations and breakers. Values are what the recorder writes (``started_at``
is ``timestamptz`` on PostgreSQL and UTC ISO text on SQLite). Rows are generated server-side on PostgreSQL
(``INSERT ... SELECT`` over ``generate_series``) and with ``executemany`` on SQLite, with the secondary indexes
built afterwards; then the rollups are built by :func:`supervisor_lib.store.rollups.backfill_sql` (what a store
upgrade runs, with the server's default settings) and the tables are vacuumed and analysed.

**Timed.** Each endpoint through the function its route calls, for 24 h, 7 d, 30 d and 90 d, as an admin (every
DAG) and as a user who may read 20 DAGs; ``--repeats`` runs after 2 warm-ups; goal p95 <= 100 ms (PostgreSQL),
<= 200 ms (SQLite). Then overview, series, top DAGs and errors by scanning ``call_attempts`` (exact percentiles:
``percentile_cont`` on PostgreSQL, sorted in SQL and picked in Python on SQLite) for 24 h, 7 d and 30 d, with the
scan/rollup ratio of their p95, and a check that both give the same totals. Finally the ``/plugin/supervisor`` page
in Chromium (Debian's, never downloaded) on a real Airflow reading the PostgreSQL store: the time until the chart
is drawn and the spend shows, and the same after clicking "30 d"; medians of ``--page-loads``.

Run: ``python -m benchmarks.dashboard [--pg-rows 10000000] [--sqlite-rows 1000000] [--repeats 20]
[--skip-pg] [--skip-sqlite] [--skip-browser]`` (the defaults take 10-16 min on 2 cores).

Everything the run creates is removed at its end, also when it fails or is stopped (Ctrl-C, SIGTERM): its
PostgreSQL database, its temp dirs (the SQLite store, the Airflow home) and any process of its Airflow.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

# a scan of 30 days of calls may take longer than the store's usual 10 s client-side deadline
os.environ.setdefault("SUPERVISOR_STORE_DEADLINE_S", "900")

from benchmarks._support import drop_postgres_database, fresh_postgres_database, percentile
from supervisor_lib.analytics import operations, queries
from supervisor_lib.analytics.filters import Filters
from supervisor_lib.store import Store
from supervisor_lib.store.cursor import StoreCursor
from supervisor_lib.store.rollups import DROPPED, GRAINS, _bucket_expr, backfill_sql, derived_backfill_sql
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS, MIGRATION_TIMEOUT_MS

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
PG_DATABASE = "supervisor_bench_dashboard"
CHROMIUM = Path(os.environ.get("SUPERVISOR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip
GOAL_MS = {"postgresql": 100.0, "sqlite": 200.0}
SPAN = timedelta(days=90)
RANGES = {"24 h": timedelta(hours=24), "7 d": timedelta(days=7), "30 d": timedelta(days=30), "90 d": SPAN}
SCAN_RANGES = ("24 h", "7 d", "30 d")


# -- what the run creates, removed at its end --------------------------------------------------------------------
@dataclass
class Cleanup:
    """What the run created: removed by :meth:`run` whatever happens (a failure, Ctrl-C, SIGTERM)."""

    dirs: list[Path] = field(default_factory=list)
    homes: list[Path] = field(default_factory=list)
    pg_database: str | None = None

    def temp_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.dirs.append(path)
        return path

    def run(self) -> None:
        for home in self.homes:
            _stop_leftovers(home)
        if self.pg_database:
            try:
                drop_postgres_database(self.pg_database)
            except Exception as exc:  # report it and go on with the rest of the cleanup
                print(f"cleanup: could not drop database {self.pg_database}: {exc}", flush=True)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


def _processes_of(home: Path) -> list[int]:
    """The processes of the Airflow whose home is ``home`` (its launcher names it on its command line, every
    component has it as ``AIRFLOW_HOME``)."""
    marks = (f"AIRFLOW_HOME={home}".encode(), str(home).encode())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if marks[0] in environ or marks[1] in cmdline:
            found.append(int(entry.name))
    return found


def _stop_leftovers(home: Path) -> None:
    """Stop any process of the benchmark's Airflow that outlived it (normally none: the launcher stops them all)."""
    pids = _processes_of(home)
    if not pids:
        return
    print(f"cleanup: stopping {len(pids)} leftover Airflow process(es): {pids}", flush=True)
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and (pids := [pid for pid in pids if Path(f"/proc/{pid}").exists()]):
            time.sleep(0.2)
        if not pids:
            return


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C: through the ``finally`` blocks, so the cleanup runs."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)


# -- the mix of recorded calls ----------------------------------------------------------------------------------
DOMAINS = ("billing", "support", "sales", "marketing", "legal", "people", "security", "infra", "product", "research")
WORKFLOWS = ("ticket_triage", "email_digest", "contract_review", "invoice_extract", "lead_scoring", "churn_summary",
             "pr_review", "incident_summary", "doc_translate", "faq_refresh", "call_notes", "survey_coding",
             "kb_answers", "release_notes", "policy_check", "log_triage", "spec_draft", "data_labeling",
             "risk_scoring", "weekly_report")  # fmt: skip
TEAMS = ("finance", "cx", "revenue", "growth", "legal", "people", "secops", "platform", "product", "research")
TAGSETS = ("prod", "prod,nightly", "prod,pii", "prod,customer-facing", "staging", None, "prod,batch")
TASKS = ("extract", "classify", "summarize", "review", "draft", "translate", "score", "report")
TASK_TYPES = ("llm", "issue_summary", "documentation", "code_analysis", "pr_review", "llm", "bug_fix", "llm")
#: provider, model, USD per million input, output, cache-read, cache-write tokens (supervisor_lib/data/models.yaml)
MODELS = (
    ("anthropic", "claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25),
    ("anthropic", "claude-sonnet-4-6", 3.00, 15.00, 0.30, 3.75),
    ("anthropic", "claude-opus-4-6", 5.00, 25.00, 0.50, 6.25),
    ("openai", "gpt-5-nano", 0.05, 0.40, 0.005, 0.0),
    ("openai", "gpt-5-mini", 0.25, 2.00, 0.025, 0.0),
    ("openai", "gpt-5", 1.25, 10.00, 0.125, 0.0),
)
#: error type, cumulative share of failures, message
ERRORS = (("RateLimitError", 0.4, "Error code: 429 - rate limit exceeded, retry later"),
          ("APITimeoutError", 0.7, "Request timed out."),
          ("InternalServerError", 0.9, "Error code: 500 - internal server error"),
          ("BadRequestError", 1.0, "Error code: 400 - prompt is too long"))  # fmt: skip
REJECTED = "the output does not match output_schema: label is a required property"
#: cumulative shares of the outcomes (the rest is cached), of failovers in routed DAGs, retries, unpriced, estimated
ANSWERED, FAILED, REJECTED_UP_TO = 0.90, 0.95, 0.97
FAILOVER, MODEL_RETRY, TASK_RETRY, UNPRICED, ESTIMATED, CACHE_READ, CACHE_WRITE = (
    0.10, 0.04, 0.055, 0.015, 0.035, 0.30, 0.35)  # fmt: skip
#: what a transcript holds (``{m}``: the model), as the recorder stores it
TRANSCRIPT = json.dumps({
    "request": {"model": "{m}", "system": "You are a careful support analyst.", "max_tokens": 2048,
                "temperature": 0.2, "output_schema": None,
                "messages": [{"role": "user", "content": "Summarize the ticket below for the on-call engineer in three"
                              " bullet points, then classify its severity.\n\n<ticket>Customer reports that invoices"
                              " exported on the 3rd are missing the VAT line ...</ticket>"}]},
    "response": {"text": "- The VAT line is dropped for invoices exported on the 3rd\n- Affects EU customers only\n"
                         "- Started after the 2.14 release\nSeverity: high", "output": None, "stop_reason": "end_turn",
                 "request_id": "req_011CU8"},
}, sort_keys=True)  # fmt: skip
#: what a routing decision's detail holds (``{p}``/``{m}``: the chosen provider and model)
DECISION = json.dumps({
    "required": ["code_edit", "structured_output"], "tier": "standard", "pressure": "none", "forecasts": [],
    "notes": [], "tried": [],
    "candidates": [{"provider": "{p}", "model": "{m}", "health": "healthy",
                    "reason": "cheapest standard-tier model with code_edit, structured_output; p95 2.1 s"},
                   {"provider": "openai", "model": "gpt-5-mini", "health": "healthy", "reason": "next cheapest"}],
    "rejected": [{"provider": "openai", "model": "gpt-5-nano", "rule": "capability", "reason": "lacks code_edit",
                  "retry_at": None},
                 {"provider": "anthropic", "model": "claude-opus-4-6", "rule": "tier",
                  "reason": "tier premium is above standard", "retry_at": None}],
}, sort_keys=True)  # fmt: skip


@dataclass(frozen=True)
class Dag:
    """One benchmark DAG: who owns it, how often it runs, its tasks and how many calls it records in the 90 days."""

    index: int
    dag_id: str
    team: str | None
    tags: str | None
    tasks: tuple[tuple[str, str, int], ...]  # task_id, task_type, model index
    hourly: bool
    routed: bool
    calls: int

    @property
    def runs(self) -> int:
        return SPAN.days * 24 if self.hourly else SPAN.days

    @property
    def period_s(self) -> int:
        return 3600 if self.hourly else 86400

    @property
    def offset_s(self) -> int:
        d = self.index
        return (d % 60) * 60 if self.hourly else (d % 23) * 3600 + (d * 7 % 60) * 60

    @property
    def run_s(self) -> int:
        return 600 if self.hourly else 1800

    @property
    def per_run(self) -> float:
        return self.calls / self.runs


def make_dags(rows: int) -> list[Dag]:
    """The 200 DAGs, with ``rows`` calls between them (uneven: the heaviest DAG records 4x the lightest)."""
    weights = [1 + (d % 10) / 3 for d in range(200)]
    total = sum(weights)
    dags = []
    for d in range(200):
        tasks = tuple((TASKS[k], TASK_TYPES[(k + d) % 8], (d * 5 + k * 3) % 6) for k in range(3 + d % 6))
        dags.append(Dag(d, f"{DOMAINS[d % 10]}_{WORKFLOWS[d // 10]}", None if d % 8 == 7 else TEAMS[d % 10],
                        TAGSETS[d % 7], tasks, d % 4 == 0, d % 3 == 0, round(rows * weights[d] / total)))  # fmt: skip
    return dags


def allowed_dags(dags: list[Dag]) -> frozenset[str]:
    """The 20 DAGs the restricted user may read (10 hourly, 10 daily)."""
    return frozenset(dag.dag_id for dag in dags if dag.index % 10 == 4)


# -- PostgreSQL: generated server-side ------------------------------------------------------------------------------
_PG_OUTCOME = (f"CASE WHEN u1 < {ANSWERED} THEN 'answered' WHEN u1 < {FAILED} THEN 'failed'"
               f" WHEN u1 < {REJECTED_UP_TO} THEN 'rejected' ELSE 'cached' END")  # fmt: skip
_PG_ERROR = "CASE " + " ".join(f"WHEN u7 < {share} THEN '{name}'" for name, share, _ in ERRORS) + " END"
_PG_MESSAGE = "CASE " + " ".join(f"WHEN u7 < {share} THEN '{text}'" for _, share, text in ERRORS) + " END"
_PG_INSERT = f"""
INSERT INTO call_attempts ({", ".join(CALL_ATTEMPT_COLUMNS)})
SELECT call_id, dag_id, run_id, task_id,
  CASE WHEN hourly THEN -1 ELSE j - (k * calls + n_tasks - 1) / n_tasks END,
  CASE WHEN u3 >= {MODEL_RETRY} AND u3 < {TASK_RETRY} THEN 2 ELSE 1 END,
  CASE WHEN outcome = 'cached' THEN 0 WHEN u3 < {MODEL_RETRY} THEN 2 ELSE 1 END,
  provider, model, task_type, started_at,
  CASE WHEN outcome = 'cached' THEN 0 WHEN outcome = 'failed' AND error_type = 'APITimeoutError' THEN 60
       WHEN outcome = 'failed' THEN round((0.05 + u6 * 2)::numeric, 3)
       ELSE round((0.1 * power(600, power(u6, 1.5)))::numeric, 3) END,
  in_t, out_t, cr_t, cw_t,
  CASE WHEN NOT billed THEN 0 WHEN u7 < {UNPRICED} THEN NULL
       ELSE (in_t * p_in + out_t * p_out + cr_t * p_cr + cw_t * p_cw) / 1e6 END,
  CASE outcome WHEN 'failed' THEN 'error' WHEN 'cached' THEN 'cached' ELSE 'success' END,
  CASE WHEN outcome = 'failed' THEN error_type END,
  CASE WHEN billed THEN 'req_' || substr(call_id, 1, 24) END,
  team, tags, hourly, outcome,
  CASE outcome WHEN 'failed' THEN error_message WHEN 'rejected' THEN '{REJECTED}' END,
  CASE WHEN NOT billed THEN 'none' WHEN u7 < {UNPRICED} THEN 'unpriced' WHEN u7 < {ESTIMATED} THEN 'estimated'
       ELSE 'exact' END,
  CASE WHEN outcome = 'cached' THEN (2000 * p_in + 300 * p_out) / 1e6
       WHEN cr_t > 0 THEN cr_t * (p_in - p_cr) / 1e6 END
FROM (
  SELECT c.*, t.k, t.task_id, t.task_type, m.provider, m.model, m.p_in, m.p_out, m.p_cr, m.p_cw,
    {_PG_OUTCOME} AS outcome, u1 < {ANSWERED} OR (u1 >= {FAILED} AND u1 < {REJECTED_UP_TO}) AS billed,
    {_PG_ERROR} AS error_type, {_PG_MESSAGE} AS error_message,
    CASE WHEN u1 < {ANSWERED} OR (u1 >= {FAILED} AND u1 < {REJECTED_UP_TO}) THEN 200 + floor(u4 * u4 * 20000)::int
         ELSE 0 END AS in_t,
    CASE WHEN u1 < {ANSWERED} OR (u1 >= {FAILED} AND u1 < {REJECTED_UP_TO}) THEN 20 + floor(u5 * 1500)::int
         ELSE 0 END AS out_t,
    CASE WHEN (u1 < {ANSWERED} OR (u1 >= {FAILED} AND u1 < {REJECTED_UP_TO})) AND u8 < {CACHE_READ}
         THEN 1024 + floor(u8 * 30000)::int ELSE 0 END AS cr_t,
    CASE WHEN (u1 < {ANSWERED} OR (u1 >= {FAILED} AND u1 < {REJECTED_UP_TO})) AND m.provider = 'anthropic'
         AND u8 >= {CACHE_READ} AND u8 < {CACHE_WRITE} THEN 1024 + floor((u8 - {CACHE_READ}) * 80000)::int
         ELSE 0 END AS cw_t
  FROM (
    SELECT b.d, b.dag_id, b.team, b.tags, b.hourly, b.routed, b.n_tasks, x.calls, j,
      md5(b.d || ':' || r || ':' || j) AS call_id,
      'scheduled__' || to_char(x.run_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00' AS run_id,
      x.run_start + make_interval(secs => j * b.run_s::float8 / x.calls) AS started_at,
      random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5, random() AS u6,
      random() AS u7, random() AS u8
    FROM bench_dags b
    CROSS JOIN LATERAL generate_series(0, b.runs - 1) AS r
    CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => r * b.period_s + b.offset_s) AS run_start,
                               (floor((r + 1) * b.per_run) - floor(r * b.per_run))::int AS calls) AS x
    CROSS JOIN LATERAL generate_series(0, x.calls - 1) AS j
    WHERE b.d BETWEEN %(low)s AND %(high)s
    OFFSET 0
  ) AS c
  JOIN bench_tasks t ON t.d = c.d AND t.k = c.j * c.n_tasks / c.calls
  JOIN bench_models m ON m.m = CASE WHEN c.routed AND c.u2 < {FAILOVER} THEN mod(t.model + 3, 6) ELSE t.model END
) AS s
"""


def seed_postgres(url: str, dags: list[Dag], start: datetime, now: datetime) -> dict[str, float]:
    """Fill the store at ``url`` (already migrated); return how long each step took."""
    import psycopg2

    took: dict[str, float] = {}
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE bench_dags (d int, dag_id text, team text, tags text, hourly bool, routed bool,"
                " n_tasks int, runs int, per_run float8, period_s int, offset_s int, run_s int)")  # fmt: skip
    cur.execute("CREATE TEMP TABLE bench_tasks (d int, k int, task_id text, task_type text, model int)")
    cur.execute("CREATE TEMP TABLE bench_models (m int, provider text, model text, p_in float8, p_out float8,"
                " p_cr float8, p_cw float8)")  # fmt: skip
    cur.executemany("INSERT INTO bench_dags VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(g.index, g.dag_id, g.team, g.tags, g.hourly, g.routed, len(g.tasks), g.runs, g.per_run,
                      g.period_s, g.offset_s, g.run_s) for g in dags])  # fmt: skip
    cur.executemany("INSERT INTO bench_tasks VALUES (%s, %s, %s, %s, %s)",
                    [(g.index, k, *task) for g in dags for k, task in enumerate(g.tasks)])  # fmt: skip
    cur.executemany("INSERT INTO bench_models VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(m, *model) for m, model in enumerate(MODELS)])  # fmt: skip
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'call_attempts'"
                " AND indexname <> 'call_attempts_pkey'")  # fmt: skip
    indexes = cur.fetchall()
    for name, _ in indexes:  # built once at the end: much faster than 10M random inserts into 6 B-trees
        cur.execute(f"DROP INDEX {name}")
    cur.execute("ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_pkey")
    cur.execute("SET synchronous_commit = off")
    started = time.perf_counter()
    for low in range(0, len(dags), 25):
        cur.execute(_PG_INSERT, {"start": start, "low": low, "high": low + 24})
        print(f"  postgresql: DAGs {low}-{low + 24}: {time.perf_counter() - started:6.1f} s", flush=True)
    took["call_attempts rows"] = time.perf_counter() - started
    started = time.perf_counter()
    cur.execute("SET maintenance_work_mem = '1GB'")
    cur.execute("ALTER TABLE call_attempts ADD PRIMARY KEY (call_id)")
    for _, definition in indexes:
        cur.execute(definition)
    cur.execute("RESET maintenance_work_mem")
    took["call_attempts indexes"] = time.perf_counter() - started
    took.update(_seed_extras(lambda sql, params=(): _pg_execute(cur, sql, params), dags, now))
    took.update(_build_rollups(lambda sql, params=(): _pg_execute(cur, sql, params), "postgresql"))
    started = time.perf_counter()
    cur.execute("VACUUM ANALYZE")
    took["vacuum analyze"] = time.perf_counter() - started
    conn.close()
    return took


def _pg_execute(cur: Any, sql: str, params: Sequence[Any] = ()) -> None:
    cur.execute(sql.replace("?", "%s"), tuple(params))


# -- SQLite: generated in Python ----------------------------------------------------------------------------------
def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")  # the store's shape: 2026-11-03T22:00:00.000000+00:00


def _sqlite_rows(dags: list[Dag], start: datetime) -> Iterator[tuple[Any, ...]]:
    """The same mix as :data:`_PG_INSERT`, row by row."""
    rand = random.Random(42).random
    for dag in dags:
        for r in range(dag.runs):
            run_start = start + timedelta(seconds=r * dag.period_s + dag.offset_s)
            calls = math.floor((r + 1) * dag.per_run) - math.floor(r * dag.per_run)
            run_id = f"scheduled__{run_start:%Y-%m-%dT%H:%M:%S}+00:00"
            for j in range(calls):
                k = j * len(dag.tasks) // calls
                task_id, task_type, model = dag.tasks[k]
                u = [rand() for _ in range(8)]
                if dag.routed and u[1] < FAILOVER:
                    model = (model + 3) % 6
                map_index = -1 if dag.hourly else j - (k * calls + len(dag.tasks) - 1) // len(dag.tasks)
                call_id = hashlib.md5(f"{dag.index}:{r}:{j}".encode()).hexdigest()
                at = run_start + timedelta(seconds=j * dag.run_s / calls)
                yield (call_id, dag.dag_id, run_id, task_id, map_index, *_call(u, model, call_id),
                       task_type, _iso(at), dag.team, dag.tags, int(dag.hourly))  # fmt: skip


def _call(u: list[float], model: int, call_id: str) -> tuple[Any, ...]:
    u1, _, u3, u4, u5, u6, u7, u8 = u
    provider, name, p_in, p_out, p_cr, p_cw = MODELS[model]
    outcome = "answered" if u1 < ANSWERED else "failed" if u1 < FAILED else "rejected" if u1 < REJECTED_UP_TO else (
        "cached")  # fmt: skip
    billed = outcome in ("answered", "rejected")
    error_type, message = next((n, text) for n, share, text in ERRORS if u7 < share)
    in_t = 200 + math.floor(u4 * u4 * 20000) if billed else 0
    out_t = 20 + math.floor(u5 * 1500) if billed else 0
    cr_t = 1024 + math.floor(u8 * 30000) if billed and u8 < CACHE_READ else 0
    cw_t = 1024 + math.floor((u8 - CACHE_READ) * 80000) if (
        billed and provider == "anthropic" and CACHE_READ <= u8 < CACHE_WRITE) else 0  # fmt: skip
    if outcome == "cached":
        duration = 0.0
    elif outcome == "failed":
        duration = 60.0 if error_type == "APITimeoutError" else round(0.05 + u6 * 2, 3)
    else:
        duration = round(0.1 * 600 ** (u6**1.5), 3)
    cost = None if billed and u7 < UNPRICED else (in_t * p_in + out_t * p_out + cr_t * p_cr + cw_t * p_cw) / 1e6
    basis = "none" if not billed else "unpriced" if u7 < UNPRICED else "estimated" if u7 < ESTIMATED else "exact"
    saved = (2000 * p_in + 300 * p_out) / 1e6 if outcome == "cached" else cr_t * (p_in - p_cr) / 1e6 if cr_t else None
    return (
        2 if MODEL_RETRY <= u3 < TASK_RETRY else 1, 0 if outcome == "cached" else 2 if u3 < MODEL_RETRY else 1,
        provider, name, duration, in_t, out_t, cr_t, cw_t, cost if billed else 0.0,
        {"failed": "error", "cached": "cached"}.get(outcome, "success"), error_type if outcome == "failed" else None,
        f"req_{call_id[:24]}" if billed else None, outcome,
        message if outcome == "failed" else REJECTED if outcome == "rejected" else None, basis, saved,
    )  # fmt: skip


_SQLITE_ORDER = ("call_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "attempt", "provider", "model",
                 "duration_s", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
                 "status", "error_type", "request_id", "outcome", "error_message", "cost_basis", "saved_usd",
                 "task_type", "started_at", "team", "tags", "deferred")  # fmt: skip


def seed_sqlite(path: str, dags: list[Dag], start: datetime, now: datetime) -> dict[str, float]:
    """Fill the store file at ``path`` (already migrated); return how long each step took."""
    took: dict[str, float] = {}
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'call_attempts'"
                           " AND sql IS NOT NULL").fetchall()  # fmt: skip
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    sql = (f"INSERT INTO call_attempts ({', '.join(_SQLITE_ORDER)})"
           f" VALUES ({', '.join('?' for _ in _SQLITE_ORDER)})")  # fmt: skip
    started = time.perf_counter()
    rows = _sqlite_rows(dags, start)
    conn.execute("BEGIN")
    while batch := list(islice(rows, 100_000)):
        conn.executemany(sql, batch)
    conn.execute("COMMIT")
    took["call_attempts rows"] = time.perf_counter() - started
    started = time.perf_counter()
    for _, definition in indexes:
        conn.execute(definition)
    took["call_attempts indexes"] = time.perf_counter() - started

    def execute(statement: str, params: Sequence[Any] = ()) -> None:
        conn.execute(statement, tuple(_iso(p) if isinstance(p, datetime) else p for p in params))

    took.update(_seed_extras(execute, dags, now))
    took.update(_build_rollups(execute, "sqlite"))
    started = time.perf_counter()
    conn.execute("ANALYZE")
    took["analyze"] = time.perf_counter() - started
    conn.close()
    return took


# -- both: what the other tables hold, and the rollups ------------------------------------------------------------
def _seed_extras(execute: Callable[..., None], dags: list[Dag], now: datetime) -> dict[str, float]:
    """Transcripts (last 2 days), routing decisions, budget windows and reservations, breakers."""
    took = {}
    started = time.perf_counter()
    head, tail = TRANSCRIPT.split("{m}")
    execute("INSERT INTO call_transcripts (call_id, dag_id, run_id, task_id, map_index, content_json)"
            f" SELECT call_id, dag_id, run_id, task_id, map_index, '{head}' || model || '{tail}'"
            " FROM call_attempts WHERE started_at >= ? AND outcome <> 'cached'",
            (now - timedelta(days=2),))  # fmt: skip
    took["transcripts"] = time.perf_counter() - started
    started = time.perf_counter()
    first, rest = DECISION.split("{m}")
    middle, last = rest.split("{p}")  # sorted keys: "model" comes before "provider"
    routed = ", ".join(f"'{dag.dag_id}'" for dag in dags if dag.routed)
    execute("INSERT INTO routing_decisions (decision_id, dag_id, run_id, task_id, map_index, try_number, task_type,"
            " decided_at, outcome, provider, model, failovers, detail_json)"
            " SELECT call_id, dag_id, run_id, task_id, map_index, try_number, task_type, started_at,"
            " CASE WHEN outcome = 'failed' THEN 'unavailable' ELSE 'success' END,"
            " CASE WHEN outcome <> 'failed' THEN provider END, CASE WHEN outcome <> 'failed' THEN model END,"
            " CASE WHEN substr(call_id, 2, 1) = '0' THEN 1 ELSE 0 END,"
            f" '{first}' || model || '{middle}' || provider || '{last}'"
            " FROM call_attempts WHERE substr(call_id, 1, 1) = '0' AND attempt = 1"
            f" AND dag_id IN ({routed})")  # fmt: skip
    took["routing decisions"] = time.perf_counter() - started
    for sql, rows in _budget_rows(dags, now):
        for row in rows:
            execute(sql, row)
    return took


def _budget_rows(dags: list[Dag], now: datetime) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Per-day and per-month windows of 40 DAGs over the 90 days, per-provider days, per-team months, the latest
    run of each of those DAGs; a few reservations in flight and breakers."""
    rng = random.Random(7)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    spend: list[tuple[Any, ...]] = []
    budgeted = [dag for dag in dags if dag.index % 5 == 4]  # 40 DAGs, the restricted user's 20 among them
    for back in range(SPAN.days):
        day = today - timedelta(days=back)
        end = day + timedelta(days=1)
        updated = min(now, end - timedelta(minutes=5))
        spend += [(f"dag:{dag.dag_id}:day", f"{day:%Y-%m-%d}", rng.uniform(1, 40), updated, 50.0,
                   f"{dag.dag_id} per day", day, end) for dag in budgeted]  # fmt: skip
        spend += [(f"provider:{p}:day", f"{day:%Y-%m-%d}", rng.uniform(100, 900), updated, 1000.0, f"{p} per day",
                   day, end) for p in ("anthropic", "openai")]  # fmt: skip
    for back in range(4):
        month = _month_start(today, -back)
        end = _month_start(today, 1 - back)
        updated = min(now, end - timedelta(minutes=5))
        spend += [(f"dag:{dag.dag_id}:month", f"{month:%Y-%m}", rng.uniform(100, 900), updated, 1000.0,
                   f"{dag.dag_id} per month", month, end) for dag in budgeted]  # fmt: skip
        spend += [(f"team:{team}:month", f"{month:%Y-%m}", rng.uniform(1000, 9000), updated, 10000.0,
                   f"team {team} per month", month, end) for team in TEAMS]  # fmt: skip
    for dag in budgeted:
        last = now - timedelta(minutes=rng.randint(5, 600))
        spend.append((f"run:{dag.dag_id}:run", f"scheduled__{last:%Y-%m-%dT%H:00:00}+00:00", rng.uniform(0.1, 5),
                      last, 10.0, f"{dag.dag_id} per run", None, None))  # fmt: skip
    reservations = [(f"res-{n}", f"dag:{dag.dag_id}:day", f"{today:%Y-%m-%d}", 0.25, dag.dag_id, "manual__now",
                     dag.tasks[0][0], now, now + timedelta(minutes=10))
                    for n, dag in enumerate(budgeted[:10])]  # fmt: skip
    breakers = [("anthropic", None, None, None, None, None, now - timedelta(hours=3)),
                ("openai/gpt-5", now - timedelta(minutes=1), now + timedelta(minutes=4), None, None,
                 "5 of the last 12 calls failed: RateLimitError", now - timedelta(minutes=1)),
                ("anthropic/claude-opus-4-6", None, now - timedelta(seconds=10), "worker-7",
                 now + timedelta(seconds=50), "probing after 3 consecutive APITimeoutError",
                 now - timedelta(seconds=10))]  # fmt: skip
    return [
        ("INSERT INTO budget_spend (budget_key, window_id, spent_usd, updated_at, limit_usd, label, window_start,"
         " window_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", spend),
        ("INSERT INTO budget_reservations (reservation_id, budget_key, window_id, amount_usd, dag_id, run_id, task_id,"
         " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", reservations),
        ("INSERT INTO router_breakers (breaker_key, reset_at, open_until, probe_owner, probe_expires_at, reason,"
         " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", breakers),
    ]  # fmt: skip


def _month_start(at: datetime, months: int) -> datetime:
    """The first day of the month ``months`` after ``at``'s (before, when negative)."""
    index = at.year * 12 + at.month - 1 + months
    return at.replace(year=index // 12, month=index % 12 + 1, day=1)


def _build_rollups(execute: Callable[..., None], dialect: str) -> dict[str, float]:
    """The rollups of every seeded row: the statements a store upgrade runs (with the server's default settings)."""
    took = {}
    statements = (*backfill_sql(dialect), *(derived_backfill_sql(grain) for grain in DROPPED))
    names = ("hourly rollups", "daily rollups", "run rollups", *(f"{grain} rollups" for grain in DROPPED))
    for sql, name in zip(statements, names, strict=True):
        started = time.perf_counter()
        execute(sql)
        took[f"backfill: {name}"] = time.perf_counter() - started
    return took


def unhurried(store: Store, work: Callable[[StoreCursor], T]) -> T:
    """``store.run(work)`` without the store's server-side statement timeout (5 s on PostgreSQL): a scan of 30 days
    of 10M calls may take longer, and so may counting the tables. The views' own queries keep the timeout."""
    if store.dialect != "postgresql":
        return store.run(work)

    def without_timeout(cur: StoreCursor) -> T:
        cur.execute("SET LOCAL statement_timeout = 0")
        return work(cur)

    return store.run(without_timeout, transaction=True)


# -- the timed endpoints --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Targets:
    """What the one-DAG, one-run and one-task views are opened on."""

    dag_id: str
    run: tuple[str, str]
    task: tuple[str, str, str, int]


def find_targets(store: Store, allowed: frozenset[str], now: datetime, hourly: set[str]) -> Targets:
    marks = ", ".join("?" for _ in allowed)
    since = now - timedelta(days=2)

    def work(cur: StoreCursor) -> Targets:
        # the run view: the biggest run of the last 2 days among the restricted user's DAGs (a daily, mapped one)
        dag_id, run_id = cur.execute(
            f"SELECT dag_id, run_id FROM run_rollups WHERE dag_id IN ({marks}) AND last_at >= ?"
            " ORDER BY calls DESC, run_id LIMIT 1", (*sorted(allowed), since)).fetchone()  # fmt: skip
        # the task view: a recent task instance of an hourly DAG with the most attempts (it has transcripts)
        some = sorted(allowed & hourly)
        task = cur.execute(
            "SELECT dag_id, run_id, task_id, map_index FROM call_attempts"
            f" WHERE dag_id IN ({', '.join('?' for _ in some)}) AND started_at >= ?"
            " GROUP BY dag_id, run_id, task_id, map_index ORDER BY COUNT(*) DESC, MAX(started_at) DESC LIMIT 1",
            (*some, since)).fetchone()  # fmt: skip
        return Targets(dag_id, (dag_id, run_id), tuple(task))  # type: ignore[arg-type]

    return unhurried(store, work)


def range_endpoints(store: Store, targets: Targets) -> dict[str, Callable[[Filters], Any]]:
    """The endpoints a time range applies to (what the sidebar page and the DAG tab load), by label."""
    found: dict[str, Callable[[Filters], Any]] = {"overview": lambda f: queries.overview(store, f)}
    for metric, group in (("cost", "provider"), ("calls", "model"), ("p95", "dag"), ("error_rate", "task_type"),
                          ("tokens", "tag"), ("cost", "team")):  # fmt: skip
        found[f"series {metric} by {group}"] = lambda f, m=metric, g=group: queries.series(store, f, m, g)
    found["facets"] = lambda f: queries.facets(store, f)
    for by in ("dag", "task", "run", "model"):
        found[f"top {by}"] = lambda f, by=by: queries.top(store, f, by)
    found["errors"] = lambda f: queries.errors(store, f)
    found["dag_runs (one DAG)"] = lambda f: queries.dag_runs(store, f, targets.dag_id)
    return found


def fixed_endpoints(store: Store, targets: Targets) -> dict[str, Callable[[frozenset[str] | None], Any]]:
    """The endpoints without a range (provider health is the last hour, the tile today and yesterday, ...)."""
    return {
        "providers (last hour)": lambda dags: operations.providers(store, dags),
        "budgets": lambda dags: operations.budgets(store, dags),
        "decisions (15)": lambda dags: queries.decisions(store, dag_ids=dags, limit=15),
        "stamp": lambda dags: queries.stamp(store, dags),
        "tile": lambda dags: queries.tile(store, dags),
        "run_calls (one run)": lambda dags: queries.run_calls(store, *targets.run),
        "transcript (one task)": lambda dags: queries.transcript(store, *targets.task),
    }


def timed(fn: Callable[[], Any], repeats: int, warm: int) -> tuple[list[float], Any]:
    """``repeats`` durations (ms) of ``fn()`` after ``warm`` untimed calls, and its last answer."""
    answer = None
    for _ in range(warm):
        answer = fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, answer


@dataclass
class Result:
    """One store's figures."""

    dialect: str
    rows: int
    seeding: dict[str, float]
    sizes: dict[str, int]
    endpoints: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)  # (endpoint, range, user)
    scans: dict[tuple[str, str, str], tuple[list[float], list[float]]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    #: what each endpoint without a range answered (as admin), so a fast but empty answer shows
    answers: dict[str, str] = field(default_factory=dict)


USERS = ("admin", "20 DAGs")


def measure_endpoints(result: Result, store: Store, targets: Targets, users: dict[str, frozenset[str] | None],
                      now: datetime, repeats: int) -> None:  # fmt: skip
    for name, fn in range_endpoints(store, targets).items():
        for label, span in RANGES.items():
            for user, dags in users.items():
                filters = Filters(now - span, now, dags)
                result.endpoints[(name, label, user)] = timed(lambda fn=fn, f=filters: fn(f), repeats, 2)[0]
        print(f"  {result.dialect}: {name} timed", flush=True)
    for name, fn in fixed_endpoints(store, targets).items():
        for user, dags in users.items():
            result.endpoints[(name, "-", user)], answer = timed(lambda fn=fn, d=dags: fn(d), repeats, 2)
            if user == "admin":
                result.answers[name] = _answer_size(answer)
    print(f"  {result.dialect}: fixed-range endpoints timed", flush=True)


def _answer_size(answer: Any) -> str:
    """How much an answer holds: its length, or the length of each list in it (``EMPTY`` when it holds nothing)."""
    if isinstance(answer, list):
        return f"{len(answer)} rows" if answer else "EMPTY"
    if isinstance(answer, dict):
        lists = {key: len(value) for key, value in answer.items() if isinstance(value, list)}
        if lists:
            return ", ".join(f"{key} {n}" for key, n in lists.items()) if any(lists.values()) else "EMPTY"
        return ", ".join(f"{key} {value}" for key, value in answer.items())
    return repr(answer)[:60] if answer else "EMPTY"


# -- the same answers by scanning call_attempts ---------------------------------------------------------------------
def _scan_where(filters: Filters) -> tuple[str, list[Any]]:
    """The range the rollups answer for (from the start of the first hour or day) over ``started_at``."""
    start = filters.start.replace(minute=0, second=0, microsecond=0)
    if filters.grain == "day":
        start = start.replace(hour=0)
    clauses, params = ["started_at >= ?", "started_at < ?"], [start, filters.end]
    if filters.dag_ids is not None:
        clauses.append(f"dag_id IN ({', '.join('?' for _ in filters.dag_ids)})")
        params += sorted(filters.dag_ids)
    return " AND ".join(clauses), params


def _rows(store: Store, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A scan's rows. On PostgreSQL the store's 5 s statement timeout is lifted in the same round trip (a scan of
    30 days of 10M calls may take longer; the timing gets no extra round trip)."""
    if store.dialect == "postgresql":
        sql = "SET statement_timeout = 0; " + sql
    return store.run(lambda cur: [tuple(row) for row in cur.execute(sql, tuple(params)).fetchall()])


def _nearest_rank(ordered: Sequence[float], share: float) -> float | None:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else None


def scan_overview(store: Store, filters: Filters) -> dict[str, Any]:
    where, params = _scan_where(filters)
    sql = ("SELECT outcome, COUNT(*), SUM(COALESCE(cost_usd, 0)),"
           " SUM(CASE WHEN cost_basis = 'estimated' THEN COALESCE(cost_usd, 0) ELSE 0 END),"
           " SUM(CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END),"
           " SUM(CASE WHEN attempt > 1 OR try_number > 1 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens),"
           f" SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(COALESCE(saved_usd, 0)) FROM call_attempts"
           f" WHERE {where} GROUP BY outcome")  # fmt: skip
    totals: dict[str, float] = defaultdict(float)
    for row in _rows(store, sql, params):
        outcome, calls, cost, estimated, unpriced, retries, inp, out, c_read, c_write, saved = row
        for key, value in (("calls", calls), (f"calls_{outcome}", calls), ("cost", cost), ("estimated", estimated),
                           ("unpriced", unpriced), ("retries", retries), ("input", inp), ("output", out),
                           ("cache_read", c_read), ("cache_write", c_write), ("saved", saved)):  # fmt: skip
            totals[key] += float(value or 0)
    if store.dialect == "postgresql":
        sql = ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s), percentile_cont(0.95) WITHIN GROUP"
               f" (ORDER BY duration_s) FROM call_attempts WHERE {where} AND outcome <> 'cached'")  # fmt: skip
        p50, p95 = _rows(store, sql, params)[0]
    else:
        ordered = [row[0] for row in _rows(store, f"SELECT duration_s FROM call_attempts WHERE {where}"
                                           " AND outcome <> 'cached' ORDER BY duration_s", params)]  # fmt: skip
        p50, p95 = _nearest_rank(ordered, 0.5), _nearest_rank(ordered, 0.95)
    return {"spend_usd": round(totals["cost"], 6), "estimated_usd": round(totals["estimated"], 6),
            "unpriced_calls": int(totals["unpriced"]), "calls": int(totals["calls"]),
            "failed": int(totals["calls_failed"]), "rejected": int(totals["calls_rejected"]),
            "cached_answers": int(totals["calls_cached"]), "retries": int(totals["retries"]),
            "tokens": {k: int(totals[k]) for k in ("input", "cache_read", "cache_write", "output")},
            "latency_p50_s": p50, "latency_p95_s": p95,
            "failovers": queries.failover_count(store, filters)}  # fmt: skip


def scan_series(store: Store, filters: Filters, metric: str, column: str) -> dict[str, dict[str, float]]:
    """``{group: {bucket: value}}`` for cost (a sum) or p95 (exact)."""
    where, params = _scan_where(filters)
    bucket = _bucket_expr(store.dialect, filters.grain)
    cells: dict[str, dict[str, float]] = defaultdict(dict)
    if metric == "cost":
        sql = f"SELECT {bucket}, {column}, SUM(COALESCE(cost_usd, 0)) FROM call_attempts WHERE {where} GROUP BY 1, 2"
        for at, group, value in _rows(store, sql, params):
            cells[group or "(none)"][str(at)] = float(value)
    elif store.dialect == "postgresql":
        sql = (f"SELECT {bucket}, {column}, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s)"
               f" FROM call_attempts WHERE {where} GROUP BY 1, 2")  # fmt: skip
        for at, group, value in _rows(store, sql, params):
            cells[group or "(none)"][str(at)] = float(value)
    else:
        sql = f"SELECT {bucket}, {column}, duration_s FROM call_attempts WHERE {where} ORDER BY 1, 2, 3"
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        for at, group, value in _rows(store, sql, params):
            durations[(group or "(none)", at)].append(value)
        for (group, at), ordered in durations.items():
            cells[group][at] = _nearest_rank(ordered, 0.95) or 0.0
    return cells


def scan_top_dags(store: Store, filters: Filters, limit: int = 10) -> list[dict[str, Any]]:
    where, params = _scan_where(filters)
    sql = ("SELECT dag_id, SUM(COALESCE(cost_usd, 0)), COUNT(*),"
           " SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens),"
           " SUM(CASE WHEN outcome IN ('failed', 'rejected') THEN 1 ELSE 0 END)"
           f" FROM call_attempts WHERE {where} GROUP BY dag_id ORDER BY 2 DESC, 3 DESC LIMIT {limit}")  # fmt: skip
    return [{"dag_id": d, "cost_usd": round(c, 6), "calls": n, "tokens": t, "errors": e}
            for d, c, n, t, e in _rows(store, sql, params)]  # fmt: skip


def scan_errors(store: Store, filters: Filters) -> list[dict[str, Any]]:
    where, params = _scan_where(filters)
    sql = (f"SELECT provider, model, outcome, error_type, COUNT(*) FROM call_attempts WHERE {where}"
           " AND outcome IN ('failed', 'rejected') GROUP BY provider, model, outcome, error_type"
           " ORDER BY COUNT(*) DESC")  # fmt: skip
    return [{"provider": p, "model": m, "outcome": o, "error_type": t or None, "calls": n}
            for p, m, o, t, n in _rows(store, sql, params)]  # fmt: skip


def scan_pairs(store: Store) -> dict[str, tuple[Callable[[Filters], Any], Callable[[Filters], Any]]]:
    """Query label -> (rollup answer, scan answer)."""
    return {
        "overview": (lambda f: queries.overview(store, f), lambda f: scan_overview(store, f)),
        "series cost by provider": (lambda f: queries.series(store, f, "cost", "provider"),
                                    lambda f: scan_series(store, f, "cost", "provider")),
        "series p95 by model": (lambda f: queries.series(store, f, "p95", "model"),
                                lambda f: scan_series(store, f, "p95", "model")),
        "top dag": (lambda f: queries.top(store, f, "dag"), lambda f: scan_top_dags(store, f)),
        "errors": (lambda f: queries.errors(store, f), lambda f: scan_errors(store, f)),
    }  # fmt: skip


def measure_scans(result: Result, store: Store, users: dict[str, frozenset[str] | None], now: datetime,
                  repeats: int, scan_repeats: int) -> None:  # fmt: skip
    for name, (rollup, scan) in scan_pairs(store).items():
        for label in SCAN_RANGES:
            for user, dags in users.items():
                filters = Filters(now - RANGES[label], now, dags)
                rolled, rolled_answer = timed(lambda r=rollup, f=filters: r(f), repeats, 2)
                scanned, scanned_answer = timed(lambda s=scan, f=filters: s(f), scan_repeats, 1)
                result.scans[(name, label, user)] = (rolled, scanned)
                if label == "30 d":
                    result.checks.append(f"{name}, 30 d, {user}: {agree(name, rolled_answer, scanned_answer)}")
        print(f"  {result.dialect}: {name} scanned", flush=True)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-6 * max(abs(a), abs(b)), 1e-3)


def agree(name: str, rolled: Any, scanned: Any) -> str:
    """Whether the rollup answer and the scan answer give the same totals; what differs if not."""
    if name == "overview":
        keys = ("calls", "failed", "rejected", "cached_answers", "retries", "unpriced_calls", "failovers")
        diff = [k for k in keys if rolled[k] != scanned[k]]
        diff += [k for k in ("spend_usd", "estimated_usd") if not _close(rolled[k], scanned[k])]
        diff += [f"tokens.{k}" for k in rolled["tokens"] if rolled["tokens"][k] != scanned["tokens"][k]]
        latency = (f"; latency p50/p95 {rolled['latency_p50_s']}/{rolled['latency_p95_s']} s from the histogram,"
                   f" {scanned['latency_p50_s']:.3f}/{scanned['latency_p95_s']:.3f} s exact")  # fmt: skip
        what = f"{rolled['calls']:,} calls, ${rolled['spend_usd']:,.2f}"
        return f"agree ({what}{latency})" if not diff else f"DIFFER in {', '.join(diff)}{latency}"
    if name == "series cost by provider":
        totals = {s["name"]: sum(v or 0 for v in s["values"]) for s in rolled["series"]}
        other = {group: sum(cells.values()) for group, cells in scanned.items()}
        same = totals.keys() == other.keys() and all(_close(totals[g], other[g]) for g in totals)
        shown = ", ".join(f"{g} ${v:,.2f}" for g, v in sorted(totals.items()))
        return f"agree ({shown})" if same else f"DIFFER: {totals} vs {other}"
    if name == "series p95 by model":
        return "not compared (the rollups' p95 comes from a latency histogram)"
    if name == "top dag":
        same = [r["dag_id"] for r in rolled] == [s["dag_id"] for s in scanned] and all(
            _close(r["cost_usd"], s["cost_usd"]) and r["calls"] == s["calls"]
            for r, s in zip(rolled, scanned, strict=True)
        )
        return f"agree (top {rolled[0]['dag_id']} ${rolled[0]['cost_usd']:,.2f})" if same else "DIFFER"
    rows = {(r["provider"], r["model"], r["outcome"], r["error_type"]): r["calls"] for r in rolled}
    other_rows = {(r["provider"], r["model"], r["outcome"], r["error_type"]): r["calls"] for r in scanned}
    return f"agree ({len(rows)} rows, {sum(rows.values()):,} calls)" if rows == other_rows else "DIFFER"


# -- one store, end to end --------------------------------------------------------------------------------------
def run_store(dialect: str, rows: int, now: datetime, args: argparse.Namespace, cleanup: Cleanup) -> tuple[Result, str]:
    """Seed, time and scan one store; return its figures and the store's Airflow connection (JSON)."""
    dags = make_dags(rows)
    start = now - SPAN - timedelta(minutes=10)
    print(f"{dialect}: seeding {rows:,} calls ...", flush=True)
    if dialect == "postgresql":
        cleanup.pg_database = PG_DATABASE
        url = fresh_postgres_database(PG_DATABASE)
        conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": PG_DATABASE}
    else:
        path = cleanup.temp_dir("supervisor-bench-dashboard-") / "analytics.db"
        url, conn = f"sqlite:///{path}", {"conn_type": "sqlite", "host": str(path)}
    store = Store.from_url(url, name=f"bench-{dialect}")
    store.migrate()
    store.close()
    started = time.perf_counter()
    seed = seed_postgres if dialect == "postgresql" else seed_sqlite
    seeding = seed(url if dialect == "postgresql" else url.removeprefix("sqlite:///"), dags, start, now)
    seeding["total"] = time.perf_counter() - started
    result = Result(dialect, 0, seeding, _sizes(store, url))
    result.rows = result.sizes["call_attempts rows"]
    print(f"{dialect}: seeded {result.rows:,} calls in {seeding['total']:.1f} s", flush=True)
    allowed = allowed_dags(dags)
    users: dict[str, frozenset[str] | None] = {"admin": None, "20 DAGs": allowed}
    targets = find_targets(store, allowed, now, {dag.dag_id for dag in dags if dag.hourly})
    measure_endpoints(result, store, targets, users, now, args.repeats)
    measure_scans(result, store, users, now, args.repeats, args.scan_repeats)
    store.close()
    return result, json.dumps(conn)


def _sizes(store: Store, url: str) -> dict[str, int]:
    def work(cur: StoreCursor) -> dict[str, int]:
        found = {}
        for table in ("call_attempts", "call_rollups", "run_rollups", "routing_decisions", "call_transcripts"):
            found[f"{table} rows"] = int(cur.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for grain in GRAINS:
            sql = "SELECT COUNT(*) FROM call_rollups WHERE grain = ?"
            found[f"call_rollups {grain} rows"] = int(cur.execute(sql, (grain,)).fetchone()[0])
        if cur.dialect == "postgresql":
            for table in ("call_attempts", "call_rollups"):
                sql = f"SELECT pg_total_relation_size('{table}')"
                found[f"{table} bytes"] = int(cur.execute(sql).fetchone()[0])
        else:
            found["file bytes"] = Path(url.removeprefix("sqlite:///")).stat().st_size
        return found

    return unhurried(store, work)


# -- the page in a browser ------------------------------------------------------------------------------------------
def page_loads(connection: str, loads: int, cleanup: Cleanup) -> dict[str, list[float]]:
    """Seconds until the sidebar page shows its chart and spend (24 h), and after clicking "30 d"."""
    from playwright.sync_api import sync_playwright

    from supervisor_lib.testing.stack import AirflowStack

    base = cleanup.temp_dir("supervisor-bench-ui-")
    (base / "dags").mkdir()
    cleanup.homes.append(base / "airflow_home")
    print("browser: starting Airflow ...", flush=True)
    times: dict[str, list[float]] = {"24 h": [], "30 d": [], "first data request": []}
    env = {"AIRFLOW_CONN_SUPERVISOR_ANALYTICS": connection}
    with (
        AirflowStack(base / "dags", home=base / "airflow_home", env=env, project_dir=ROOT) as stack,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(stack.base_url + "/")
        page.wait_for_url("**/auth/login**")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(stack.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        page.close()
        for n in range(loads + 1):  # the first load warms the API server (imports, connections): not counted
            page = context.new_page()
            asked: list[float] = []  # when the view sent its first data request: the UI shell and bundle came before
            page.on("request", lambda request, asked=asked: asked.append(time.perf_counter())
                    if "/supervisor/api/" in request.url and "/stamp" not in request.url else None)  # fmt: skip
            started = time.perf_counter()
            page.goto(stack.base_url + "/plugin/supervisor", wait_until="commit")
            page.wait_for_function(_DRAWN, arg=None, polling=20)
            if n:
                times["24 h"].append(time.perf_counter() - started)
                times["first data request"].append(asked[0] - started)
            spend = page.get_by_test_id("kpi-spend-value").inner_text()
            started = time.perf_counter()
            page.get_by_role("button", name="30 d", exact=True).click()
            page.wait_for_function(_DRAWN, arg=spend, polling=20)
            if n:
                times["30 d"].append(time.perf_counter() - started)
                print(f"browser: load {n}: 24 h {times['24 h'][-1]:.2f} s (spend {spend}; first data request at "
                      f"{times['first data request'][-1]:.2f} s), 30 d "
                      f"{times['30 d'][-1]:.2f} s (spend {page.get_by_test_id('kpi-spend-value').inner_text()})",
                      flush=True)  # fmt: skip
            page.close()
        browser.close()
    return times


#: the chart is drawn and the spend shows a dollar amount (other than ``arg``: the range before a click), and the
#: chart is per day once a range longer than 3 days is asked for
_DRAWN = """(before) => {
  const spend = document.querySelector('[data-testid=kpi-spend-value]')?.textContent || '';
  const canvas = document.querySelector('[data-testid=supervisor-chart] canvas');
  const series = document.querySelector('[data-testid=series]')?.textContent || '';
  if (!canvas || !/\\$\\d/.test(spend)) return false;
  return before === null || (spend !== before && series.includes('Per day'));
}"""


# -- the report ---------------------------------------------------------------------------------------------------
def _p(samples: list[float], q: float) -> float:
    return percentile(samples, q)


def print_store(result: Result, repeats: int) -> dict[str, tuple[float, str]]:
    """The store's table; returns each endpoint's worst p95 and where it was."""
    goal = GOAL_MS[result.dialect]
    s = result.sizes
    narrower = " + ".join(f"{s[f'call_rollups {grain} rows']:,} {grain}" for grain in DROPPED)
    print(f"\n== {result.dialect}: {result.rows:,} calls over 90 days; {s['call_rollups hour rows']:,} hourly + "
          f"{s['call_rollups day rows']:,} daily + {narrower} rollup rows, {s['run_rollups rows']:,} runs, "
          f"{s['routing_decisions rows']:,} routing decisions, {s['call_transcripts rows']:,} transcripts")  # fmt: skip
    sizes = ", ".join(f"{k.removesuffix(' bytes')} {v / 2**20:,.0f} MiB" for k, v in s.items() if k.endswith("bytes"))
    print(f"   size: {sizes}")
    print("   seeding: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seeding.items()))
    over = [k for k, v in result.seeding.items() if k.startswith("backfill") and v > MIGRATION_TIMEOUT_MS / 1000]
    if result.dialect == "postgresql" and over:  # the upgrade runs them under SET LOCAL statement_timeout
        print(f"   NOTE: {', '.join(over)} took longer than the schema migration's statement_timeout"
              f" ({MIGRATION_TIMEOUT_MS / 1000:.0f} s): upgrading a store this size would fail")  # fmt: skip
    print(f"\n{result.dialect}: rollup endpoints, ms over {repeats} runs (goal: p95 <= {goal:.0f} ms)")
    print(f"{'endpoint':<32}{'range':>6}{'admin p50':>11}{'admin p95':>11}{'20 DAGs p50':>13}{'20 DAGs p95':>13}  goal")
    worst: dict[str, tuple[float, str]] = {}
    ranges = sorted({key[1] for key in result.endpoints}, key=lambda r: list(RANGES).index(r) if r in RANGES else -1)
    names = list(dict.fromkeys(key[0] for key in result.endpoints))
    for name in names:
        for label in ranges:
            if (name, label, "admin") not in result.endpoints:
                continue
            admin, user = (result.endpoints[(name, label, who)] for who in USERS)
            p95s = [_p(admin, 0.95), _p(user, 0.95)]
            line = f"{_p(admin, 0.5):>11.1f}{p95s[0]:>11.1f}{_p(user, 0.5):>13.1f}{p95s[1]:>13.1f}"
            print(f"{name:<32}{label:>6}{line}  {'met' if max(p95s) <= goal else 'NOT met'}")
            if name not in worst or max(p95s) > worst[name][0]:
                worst[name] = (max(p95s), label)
    missed = [name for name, (p95, _) in worst.items() if p95 > goal]
    tail = f"; missed: {', '.join(missed)}" if missed else ""
    print(f"{result.dialect}: goal p95 <= {goal:.0f} ms: {'met' if not missed else 'NOT met'}, within it for "
          f"{len(worst) - len(missed)} of {len(worst)} endpoints{tail}")  # fmt: skip
    print(
        f"{result.dialect}: answers without a range (admin): "
        + "; ".join(f"{name}: {size}" for name, size in result.answers.items())
    )
    _print_scans(result)
    return worst


def _print_scans(result: Result) -> None:
    print(f"\n{result.dialect}: the same answers by scanning call_attempts, ms (rollups: p95 of the runs above;"
          " scans: fewer runs)")  # fmt: skip
    print(f"{'query':<26}{'range':>6}{'user':>9}{'rollup p95':>12}{'scan p50':>11}{'scan p95':>11}{'scan/rollup':>13}")
    for (name, label, user), (rolled, scanned) in result.scans.items():
        ratio = _p(scanned, 0.95) / _p(rolled, 0.95)
        print(f"{name:<26}{label:>6}{user:>9}{_p(rolled, 0.95):>12.1f}{_p(scanned, 0.5):>11.1f}"
              f"{_p(scanned, 0.95):>11.1f}{ratio:>12.1f}x")  # fmt: skip
    print(f"{result.dialect}: rollup answer vs scan answer (30 d):")
    for line in result.checks:
        print(f"  {line}")


def print_summary(results: list[Result], worst: dict[str, dict[str, tuple[float, str]]],
                  pages: dict[str, list[float]] | None, store_for_pages: str) -> None:  # fmt: skip
    print("\n---- summary (for docs/benchmarks.md) ----")
    for result in results:
        s = result.sizes
        print(f"- {result.dialect}: {result.rows:,} calls / 90 days seeded in {result.seeding['total']:.0f} s "
              f"(rollups: {sum(v for k, v in result.seeding.items() if k.startswith('backfill')):.0f} s for "
              f"{s['call_rollups rows']:,} rollup rows + "
              f"{s['run_rollups rows']:,} run rows)")  # fmt: skip
    dialects = [r.dialect for r in results]
    head = "".join(f" | {d} worst p95 ms (range)" for d in dialects)
    print(f"\n| endpoint{head} |\n|---{'|---:' * len(dialects)}|")
    names = list(dict.fromkeys(name for d in dialects for name in worst[d]))
    for name in names:
        cells = "".join(f" | {worst[d][name][0]:.1f} ({worst[d][name][1]})"
                        + ("" if worst[d][name][0] <= GOAL_MS[d] else " **over**") for d in dialects)  # fmt: skip
        print(f"| {name}{cells} |")
    for result in results:
        goal = GOAL_MS[result.dialect]
        missed = [n for n, (p95, _) in worst[result.dialect].items() if p95 > goal]
        print(f"- {result.dialect} goal p95 <= {goal:.0f} ms per endpoint (every range, admin and 20-DAG user):"
              f" {'met' if not missed else 'NOT met'} ({len(worst[result.dialect]) - len(missed)} of"
              f" {len(worst[result.dialect])} endpoints within it)")  # fmt: skip
        ratios = [f"{name} {_p(sc, 0.95) / _p(ro, 0.95):.1f}x" for (name, label, user), (ro, sc)
                  in result.scans.items() if label == "30 d" and user == "admin"]  # fmt: skip
        print(f"- {result.dialect} scan p95 / rollup p95 at 30 d (admin): {', '.join(ratios)}")
        fails = [line for line in result.checks if "DIFFER" in line]
        print(f"- {result.dialect} rollups vs scan (30 d): {'same totals' if not fails else '; '.join(fails)}")
        empty = [name for name, size in result.answers.items() if size == "EMPTY"]
        said = "none empty" if not empty else "EMPTY: " + ", ".join(empty)
        print(f"- {result.dialect} endpoints without a range: {said}")
    if pages:
        print(f"- page load, /plugin/supervisor on the {store_for_pages} store, headless Chromium, median of "
              f"{len(pages['24 h'])}: 24 h (chart drawn + spend shown) {statistics.median(pages['24 h']):.2f} s"
              f" (the view's first data request at {statistics.median(pages['first data request']):.2f} s);"
              f" switch to 30 d {statistics.median(pages['30 d']):.2f} s")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per rollup endpoint")
    parser.add_argument("--scan-repeats", type=int, default=3, help="timed runs per scan")
    parser.add_argument("--page-loads", type=int, default=5)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    cleanup = Cleanup()
    try:
        _run(args, cleanup)
    finally:
        cleanup.run()


def _run(args: argparse.Namespace, cleanup: Cleanup) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    results, connections, worst = [], {}, {}
    for dialect, rows, skip in (("postgresql", args.pg_rows, args.skip_pg),
                                ("sqlite", args.sqlite_rows, args.skip_sqlite)):  # fmt: skip
        if not skip:
            result, connections[dialect] = run_store(dialect, rows, now, args, cleanup)
            results.append(result)
            worst[dialect] = print_store(result, args.repeats)  # printed at once: a later failure keeps them
    pages, on, failed = None, next(iter(connections), ""), False
    if not args.skip_browser and connections:
        try:
            pages = page_loads(connections[on], args.page_loads, cleanup)
        except Exception:  # the store figures above still get their summary
            traceback.print_exc()
            print("browser: page loads FAILED (see above)", flush=True)
            failed = True
    if pages:
        print(f"\npage load on the {on} store (s): 24 h {', '.join(f'{t:.2f}' for t in pages['24 h'])}; "
              f"of which before the first data request {', '.join(f'{t:.2f}' for t in pages['first data request'])};"
              f" 30 d {', '.join(f'{t:.2f}' for t in pages['30 d'])}")  # fmt: skip
    print_summary(results, worst, pages, on)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
