"""The SQL that records one attempt together with what it adds to the rollups, its run's totals and its
transcript (:mod:`~supervisor_lib.store.rollups`): one statement on PostgreSQL (a chain of ``INSERT`` in a ``WITH``,
each taking its values only if the attempt itself was new), or a short list of statements to run in the same
transaction after the attempt's ``INSERT`` (SQLite, and several rows at once)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from supervisor_lib.store import rollups
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS

_RUN_COLUMNS = ("dag_id", "run_id", "first_at", "last_at", *rollups.RUN_SUMS)
_TRANSCRIPT_COLUMNS = ("call_id", "dag_id", "run_id", "task_id", "map_index", "content_json")
_TRANSCRIPT_SQL = (
    f"INSERT INTO call_transcripts ({', '.join(_TRANSCRIPT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _TRANSCRIPT_COLUMNS)}) ON CONFLICT (call_id) DO NOTHING"
)


def _run_params(row: Mapping[str, Any]) -> list[Any]:
    sums = rollups.run_increments(row)
    return [row["dag_id"], row["run_id"], row["started_at"], row["started_at"], *(sums[n] for n in rollups.RUN_SUMS)]


def _transcript_params(row: Mapping[str, Any], transcript: Mapping[str, Any]) -> list[Any]:
    content = json.dumps(transcript, sort_keys=True, default=str)
    return [row["call_id"], row["dag_id"], row["run_id"], row["task_id"], row["map_index"], content]


def rollup_statements(
    row: Mapping[str, Any], transcript: Mapping[str, Any] | None, dialect: rollups.Dialect
) -> list[tuple[str, Sequence[Any]]]:
    """What to run after a new attempt's ``INSERT`` (the dialect's placeholders)."""
    statements: list[tuple[str, Sequence[Any]]] = [(rollups.upsert_sql(dialect), rollups.upsert_params(row))]
    statements.append((rollups.run_upsert_sql(dialect), _run_params(row)))
    if transcript:
        sql = _TRANSCRIPT_SQL if dialect == "sqlite" else _TRANSCRIPT_SQL.replace("?", "%s")
        statements.append((sql, _transcript_params(row, transcript)))
    return statements


def insert_one_postgresql(row: Mapping[str, Any], transcript: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """One statement (``%s`` placeholders) that inserts the attempt and, only if it was new, adds it up; it
    returns the number of new attempts (0 or 1)."""
    marks = ", ".join("%s" for _ in CALL_ATTEMPT_COLUMNS)
    parts = [f"ins AS (INSERT INTO call_attempts ({', '.join(CALL_ATTEMPT_COLUMNS)}) VALUES ({marks})"
             " ON CONFLICT (call_id) DO NOTHING RETURNING 1)"]  # fmt: skip
    params: list[Any] = [row[column] for column in CALL_ATTEMPT_COLUMNS]
    # every grain's rollup row in one INSERT, taking its rows only if the attempt was new (a join with ``ins``)
    parts.append(f"r AS ({rollups.upsert_sql('postgresql', only_if='ins')} RETURNING 1)")
    params += rollups.upsert_params(row)
    parts.append(_from_ins("r_run", "run_rollups", _RUN_COLUMNS, _conflict_run()))
    params += _run_params(row)
    parts.append("gone AS (DELETE FROM call_intents WHERE call_id = %s RETURNING 1)")  # in flight no more
    params.append(row["call_id"])
    if transcript:
        parts.append(_from_ins("t", "call_transcripts", _TRANSCRIPT_COLUMNS, "(call_id) DO NOTHING"))
        params += _transcript_params(row, transcript)
    return "WITH " + ", ".join(parts) + " SELECT count(*) FROM ins", params


def _from_ins(name: str, table: str, columns: Sequence[str], conflict: str) -> str:
    values = ", ".join("%s" for _ in columns)
    return (f"{name} AS (INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM ins"
            f" ON CONFLICT {conflict} RETURNING 1)")  # fmt: skip


def _conflict_run() -> str:
    adds = ", ".join(f"{name} = run_rollups.{name} + excluded.{name}" for name in rollups.RUN_SUMS)
    return (f"(dag_id, run_id) DO UPDATE SET {adds}, first_at = LEAST(run_rollups.first_at, excluded.first_at),"
            " last_at = GREATEST(run_rollups.last_at, excluded.last_at)")  # fmt: skip
