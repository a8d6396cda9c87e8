"""The analytics store's schema: an ordered list of migrations, owned by the project (no Alembic).

Each :class:`Migration` holds portable SQL with ``{type}`` placeholders filled per dialect (PostgreSQL has real
timestamp and boolean types; SQLite stores UTC ISO-8601 text and 0/1), plus optional dialect-only statements.
The store applies the missing ones in order inside one transaction and records each in
``supervisor_schema_version``. Never edit a released migration: append a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supervisor_lib.store.rollups import (
    ERROR_OUTCOMES,
    FIRST_SUMS,
    Dialect,
    backfill_sql,
    derived_backfill_sql,
    rollup_table_sql,
)

VERSION_TABLE = "supervisor_schema_version"
#: the key of the PostgreSQL advisory lock that serializes migrations ("supvsr" + 0x0001, fits a signed bigint)
ADVISORY_LOCK_KEY = int.from_bytes(b"supvsr\x00\x01", "big")
MIGRATION_TIMEOUT_MS = 60_000

_TYPES: dict[Dialect, dict[str, str]] = {
    "postgresql": {
        "timestamp": "TIMESTAMPTZ",
        "boolean": "BOOLEAN",
        "false": "FALSE",
        "real": "DOUBLE PRECISION",
        "now": "CURRENT_TIMESTAMP",
    },
    "sqlite": {  # timestamps as UTC ISO-8601 text, the shape the store writes
        "timestamp": "TEXT",
        "boolean": "INTEGER",
        "false": "0",
        "real": "REAL",
        "now": "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
    },
}
_PARAM: dict[Dialect, str] = {"postgresql": "%s", "sqlite": "?"}

#: the columns of ``call_attempts``, in table order (CallRecord's fields match them)
CALL_ATTEMPT_COLUMNS: tuple[str, ...] = (
    "call_id",
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "attempt",
    "provider",
    "model",
    "task_type",
    "started_at",
    "duration_s",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "status",
    "error_type",
    "request_id",
    "team",
    "tags",
    "deferred",
    "outcome",
    "error_message",
    "cost_basis",
    "saved_usd",
)

#: the columns of ``response_cache``, in table order
RESPONSE_CACHE_COLUMNS: tuple[str, ...] = (
    "cache_key",
    "dag_id",
    "run_id",
    "provider",
    "model",
    "response_json",
    "created_at",
)

#: the columns of ``experiment_runs``, in table order (one row per arm's run of a task instance)
EXPERIMENT_RUN_COLUMNS: tuple[str, ...] = (
    "experiment",
    "arm",
    "arm_index",
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "task_type",
    "provider",
    "model",
    "status",
    "passed",
    "review",
    "iterations",
    "tokens",
    "cost_usd",
    "duration_s",
    "recorded_at",
)

#: the columns of ``batches``, in table order
BATCH_COLUMNS: tuple[str, ...] = (
    "provider",
    "batch_id",
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "model",
    "item_count",
    "fingerprint",
    "state",
    "created_at",
    "updated_at",
    "reservation_json",
)


@dataclass(frozen=True)
class Migration:
    """One schema step: portable ``statements`` first, then the current dialect's own ones.

    :param version: strictly increasing; recorded in ``supervisor_schema_version`` once applied.
    :param name: a short description, recorded with the version.
    """

    version: int
    name: str
    statements: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()

    def statements_for(self, dialect: Dialect) -> list[str]:
        """The SQL to run on ``dialect``, with the dialect's type names filled in."""
        own = self.postgresql if dialect == "postgresql" else self.sqlite
        return [sql.format(**_TYPES[dialect]) for sql in (*self.statements, *own)]


def version_table_sql(dialect: Dialect) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the table that records applied migrations."""
    return (
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {timestamp} NOT NULL DEFAULT {now})"
    ).format(**_TYPES[dialect])


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "call_attempts: one row per model-call attempt",
        statements=(
            """CREATE TABLE IF NOT EXISTS call_attempts (
                call_id TEXT PRIMARY KEY,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                try_number INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                task_type TEXT NOT NULL,
                started_at {timestamp} NOT NULL,
                duration_s {real} NOT NULL,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_read_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                cost_usd {real} NULL,
                status TEXT NOT NULL CHECK (status IN ('success', 'error', 'cached')),
                error_type TEXT NULL,
                request_id TEXT NULL,
                team TEXT NULL,
                tags TEXT NULL,
                deferred {boolean} NOT NULL DEFAULT {false}
            )""",
            # the queries later features run: spend and health per model over time, per DAG over time, per run
            "CREATE INDEX IF NOT EXISTS ix_call_attempts_model_time ON call_attempts (provider, model, started_at)",
            "CREATE INDEX IF NOT EXISTS ix_call_attempts_dag_time ON call_attempts (dag_id, started_at)",
            "CREATE INDEX IF NOT EXISTS ix_call_attempts_dag_run ON call_attempts (dag_id, run_id)",
            "CREATE INDEX IF NOT EXISTS ix_call_attempts_time ON call_attempts (started_at)",
        ),
    ),
    Migration(
        2,
        "response_cache: model answers re-used within a DAG run",
        statements=(
            """CREATE TABLE IF NOT EXISTS response_cache (
                cache_key TEXT PRIMARY KEY,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                response_json TEXT NOT NULL,
                created_at {timestamp} NOT NULL
            )""",
        ),
    ),
    Migration(
        3,
        "batches: provider batches submitted by a task instance, so a retry re-attaches instead of paying twice",
        statements=(
            """CREATE TABLE IF NOT EXISTS batches (
                provider TEXT NOT NULL,
                batch_id TEXT NOT NULL,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                try_number INTEGER NOT NULL,
                model TEXT NOT NULL,
                item_count INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                PRIMARY KEY (provider, batch_id)
            )""",
            # a try looks up the newest batch of its task instance
            "CREATE INDEX IF NOT EXISTS ix_batches_task ON batches (dag_id, run_id, task_id, map_index, created_at)",
        ),
    ),
    Migration(
        4,
        "routing: circuit breakers, budget spend and reservations, routing decisions; the health index",
        statements=(
            # one row per breaker key ("anthropic", "anthropic/claude-haiku-4-5"); absent means closed
            """CREATE TABLE IF NOT EXISTS router_breakers (
                breaker_key TEXT PRIMARY KEY,
                reset_at {timestamp} NULL,
                open_until {timestamp} NULL,
                probe_owner TEXT NULL,
                probe_expires_at {timestamp} NULL,
                reason TEXT NULL,
                updated_at {timestamp} NOT NULL
            )""",
            # settled spend per budget and window ("dag:nightly:day", "2026-11-05"): one row, updated in place
            """CREATE TABLE IF NOT EXISTS budget_spend (
                budget_key TEXT NOT NULL,
                window_id TEXT NOT NULL,
                spent_usd {real} NOT NULL DEFAULT 0,
                updated_at {timestamp} NOT NULL,
                PRIMARY KEY (budget_key, window_id)
            )""",
            # the worst-case cost of calls in flight, one row per reservation and budget it counts against
            """CREATE TABLE IF NOT EXISTS budget_reservations (
                reservation_id TEXT NOT NULL,
                budget_key TEXT NOT NULL,
                window_id TEXT NOT NULL,
                amount_usd {real} NOT NULL,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                created_at {timestamp} NOT NULL,
                expires_at {timestamp} NOT NULL,
                PRIMARY KEY (reservation_id, budget_key)
            )""",
            "CREATE INDEX IF NOT EXISTS ix_budget_reservations_key"
            " ON budget_reservations (budget_key, window_id, expires_at)",
            "CREATE INDEX IF NOT EXISTS ix_budget_reservations_expiry ON budget_reservations (expires_at)",
            """CREATE TABLE IF NOT EXISTS routing_decisions (
                decision_id TEXT PRIMARY KEY,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                try_number INTEGER NOT NULL,
                task_type TEXT NOT NULL,
                decided_at {timestamp} NOT NULL,
                outcome TEXT NOT NULL,
                provider TEXT NULL,
                model TEXT NULL,
                failovers INTEGER NOT NULL DEFAULT 0,
                detail_json TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS ix_routing_decisions_task ON routing_decisions (dag_id, run_id, task_id)",
            "CREATE INDEX IF NOT EXISTS ix_routing_decisions_time ON routing_decisions (decided_at)",
            # every routing decision reads the newest attempts of the health window: covering, newest first
            "CREATE INDEX IF NOT EXISTS ix_call_attempts_health"
            " ON call_attempts (started_at, provider, model, status, error_type, duration_s)",
        ),
    ),
    Migration(
        5,
        "batches: the budget reservation a batch holds until its results are in",
        # {"reservation_id", "amount_usd", "windows": [[budget_key, window_id], ...]}; NULL when no budget applied
        statements=("ALTER TABLE batches ADD COLUMN reservation_json TEXT NULL",),
    ),
    Migration(
        6,
        "analytics: each attempt's outcome, error message, cost basis and savings; hourly and daily rollups, run "
        "totals and call transcripts for the plugin's views",
        statements=(
            # answered | rejected (answered, billed, but failed its output check) | failed | cached
            "ALTER TABLE call_attempts ADD COLUMN outcome TEXT NULL",
            "ALTER TABLE call_attempts ADD COLUMN error_message TEXT NULL",  # short, scrubbed of keys
            # exact (provider-reported tokens x published price) | estimated | unpriced | none (nothing billed)
            "ALTER TABLE call_attempts ADD COLUMN cost_basis TEXT NULL",
            # what the attempt saved: a cached answer's original cost, or the provider's prompt-cache discount
            "ALTER TABLE call_attempts ADD COLUMN saved_usd {real} NULL",
            "UPDATE call_attempts SET"
            " outcome = CASE status WHEN 'success' THEN 'answered' WHEN 'cached' THEN 'cached' ELSE 'failed' END,"
            " cost_basis = CASE WHEN status = 'cached' THEN 'none' WHEN cost_usd IS NULL THEN 'unpriced'"
            " WHEN status = 'error' THEN 'none' ELSE 'exact' END"
            " WHERE outcome IS NULL",
            rollup_table_sql(),
            "CREATE INDEX IF NOT EXISTS ix_call_rollups_time ON call_rollups (grain, bucket)",
            """CREATE TABLE IF NOT EXISTS run_rollups (
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                first_at {timestamp} NOT NULL,
                last_at {timestamp} NOT NULL,
                calls INTEGER NOT NULL DEFAULT 0,
                errors INTEGER NOT NULL DEFAULT 0,
                cost_usd {real} NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0,
                duration_s {real} NOT NULL DEFAULT 0,
                PRIMARY KEY (dag_id, run_id)
            )""",
            "CREATE INDEX IF NOT EXISTS ix_run_rollups_time ON run_rollups (last_at)",
            """CREATE TABLE IF NOT EXISTS call_transcripts (
                call_id TEXT PRIMARY KEY,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                content_json TEXT NOT NULL
            )""",
            # the limit each budget row counts against, as last declared (the budgets view shows it)
            "ALTER TABLE budget_spend ADD COLUMN limit_usd {real} NULL",
            "ALTER TABLE budget_spend ADD COLUMN label TEXT NULL",
            "ALTER TABLE budget_spend ADD COLUMN window_start {timestamp} NULL",
            "ALTER TABLE budget_spend ADD COLUMN window_end {timestamp} NULL",
            "CREATE INDEX IF NOT EXISTS ix_budget_spend_updated ON budget_spend (updated_at)",
            "CREATE INDEX IF NOT EXISTS ix_call_transcripts_task"
            " ON call_transcripts (dag_id, run_id, task_id, map_index)",
        ),
        # the rollups of what was recorded before this version (nothing is lost on upgrade)
        postgresql=backfill_sql("postgresql", ("hour", "day"), FIRST_SUMS),
        sqlite=backfill_sql("sqlite", ("hour", "day"), FIRST_SUMS),
    ),
    Migration(
        7,
        "anomalies: findings of the anomaly scan (one row each, deduplicated), mutes, and the scan's watermarks",
        statements=(
            """CREATE TABLE IF NOT EXISTS anomalies (
                finding_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                occurred_at {timestamp} NOT NULL,
                detected_at {timestamp} NOT NULL,
                dag_id TEXT NULL,
                run_id TEXT NULL,
                task_id TEXT NULL,
                map_index INTEGER NULL,
                call_id TEXT NULL,
                provider TEXT NULL,
                model TEXT NULL,
                score {real} NOT NULL,
                reason TEXT NOT NULL,
                group_key TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'open',
                status_by TEXT NULL,
                status_at {timestamp} NULL,
                alerted_at {timestamp} NULL
            )""",
            "CREATE INDEX IF NOT EXISTS ix_anomalies_time ON anomalies (occurred_at)",
            "CREATE INDEX IF NOT EXISTS ix_anomalies_status ON anomalies (status, occurred_at)",
            "CREATE INDEX IF NOT EXISTS ix_anomalies_group ON anomalies (group_key)",
            # a mute silences one kind of finding for one task, DAG or provider until a time (or for good)
            """CREATE TABLE IF NOT EXISTS anomaly_mutes (
                mute_key TEXT PRIMARY KEY,
                until {timestamp} NULL,
                created_by TEXT NULL,
                created_at {timestamp} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS anomaly_watermarks (
                scope TEXT PRIMARY KEY,
                watermark {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL
            )""",
        ),
    ),
    Migration(
        8,
        "budget_spend: the spend forecast of a month window (analytics.forecast), which routing and the views read",
        statements=(
            "ALTER TABLE budget_spend ADD COLUMN forecast_usd {real} NULL",
            "ALTER TABLE budget_spend ADD COLUMN forecast_low_usd {real} NULL",
            "ALTER TABLE budget_spend ADD COLUMN forecast_high_usd {real} NULL",
            # the committed spend (settled + reserved) the forecast was made from: spend since then adds to it
            "ALTER TABLE budget_spend ADD COLUMN forecast_basis_usd {real} NULL",
            "ALTER TABLE budget_spend ADD COLUMN forecast_method TEXT NULL",
            "ALTER TABLE budget_spend ADD COLUMN forecast_runs_out {timestamp} NULL",
            "ALTER TABLE budget_spend ADD COLUMN forecast_at {timestamp} NULL",
        ),
    ),
    Migration(
        9,
        "analytics: day rollups without task, task type and error type (day_summary) for long ranges, and per-DAG"
        " indexes for the DAG tab",
        statements=(
            derived_backfill_sql("day_summary", FIRST_SUMS),
            "CREATE INDEX IF NOT EXISTS ix_call_rollups_dag ON call_rollups (dag_id, grain, bucket)",
            "CREATE INDEX IF NOT EXISTS ix_run_rollups_dag ON run_rollups (dag_id, last_at)",
            # the overview's failover count over a range: read from the index alone
            "CREATE INDEX IF NOT EXISTS ix_routing_decisions_failovers"
            " ON routing_decisions (decided_at, dag_id, provider, model, failovers)",
        ),
    ),
    Migration(
        10,
        "call_intents: an attempt about to be sent, until its row is recorded; one left behind by a process that"
        " died mid-call becomes a lost attempt",
        statements=(
            """CREATE TABLE IF NOT EXISTS call_intents (
                call_id TEXT PRIMARY KEY,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                try_number INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                task_type TEXT NOT NULL,
                team TEXT NULL,
                tags TEXT NULL,
                deferred INTEGER NOT NULL DEFAULT 0,
                started_at {timestamp} NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS ix_call_intents_task ON call_intents (dag_id, run_id, task_id, map_index)",
            "CREATE INDEX IF NOT EXISTS ix_call_intents_time ON call_intents (started_at)",
        ),
    ),
    Migration(
        11,
        "analytics: an errors count on every rollup row, and four narrower day grains (per DAG; per task type and"
        " model without the DAG; per task; per DAG and error) so the views of long ranges read few rows per day",
        statements=(
            "ALTER TABLE call_rollups ADD COLUMN errors INTEGER NOT NULL DEFAULT 0",
            "UPDATE call_rollups SET errors = calls WHERE outcome IN"
            f" ({', '.join(repr(outcome) for outcome in ERROR_OUTCOMES)})",
            derived_backfill_sql("day_dag"),
            derived_backfill_sql("day_type"),
            derived_backfill_sql("day_task"),
            derived_backfill_sql("day_error"),
        ),
    ),
    Migration(
        12,
        "experiment_runs: one row per experiment arm's run of a task instance (the last try's outcome), so an"
        " experiment's report spans days of scheduled runs",
        statements=(
            """CREATE TABLE IF NOT EXISTS experiment_runs (
                experiment TEXT NOT NULL,
                arm TEXT NOT NULL,
                arm_index INTEGER NOT NULL DEFAULT 0,
                dag_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                map_index INTEGER NOT NULL DEFAULT -1,
                try_number INTEGER NOT NULL,
                task_type TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NULL,
                status TEXT NOT NULL,
                passed {boolean} NOT NULL,
                review TEXT NULL,
                iterations INTEGER NOT NULL DEFAULT 0,
                tokens INTEGER NOT NULL DEFAULT 0,
                cost_usd {real} NULL,
                duration_s {real} NOT NULL,
                recorded_at {timestamp} NOT NULL,
                PRIMARY KEY (experiment, arm, dag_id, run_id, task_id, map_index)
            )""",
            # the report reads one experiment (or all) over a time range; the plugin filters by DAG
            "CREATE INDEX IF NOT EXISTS ix_experiment_runs_time ON experiment_runs (experiment, recorded_at)",
            "CREATE INDEX IF NOT EXISTS ix_experiment_runs_dag ON experiment_runs (dag_id, experiment)",
        ),
    ),
)


def pending(applied: set[int]) -> list[Migration]:
    """The migrations not yet in ``applied``, in order."""
    return [migration for migration in MIGRATIONS if migration.version not in applied]


def apply_pending(cur: Any, dialect: Dialect) -> list[int]:
    """Apply the missing migrations with ``cur``, inside the caller's transaction; return the versions applied.

    Concurrent callers take turns: PostgreSQL through an advisory lock held until the transaction ends, SQLite
    because the caller began it with ``BEGIN IMMEDIATE`` (the database's one write lock).
    """
    if dialect == "postgresql":
        cur.execute(f"SET LOCAL statement_timeout = {MIGRATION_TIMEOUT_MS}")
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    cur.execute(version_table_sql(dialect))
    cur.execute(f"SELECT version FROM {VERSION_TABLE}")
    applied: list[int] = []
    for migration in pending({row[0] for row in cur.fetchall()}):
        for statement in migration.statements_for(dialect):
            cur.execute(statement)
        mark = _PARAM[dialect]
        cur.execute(
            f"INSERT INTO {VERSION_TABLE} (version, name) VALUES ({mark}, {mark})", (migration.version, migration.name)
        )
        applied.append(migration.version)
    return applied
