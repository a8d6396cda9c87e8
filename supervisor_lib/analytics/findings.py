"""The anomaly scan's findings in the store (table ``anomalies``): written once each (a finding's id is derived from
what it is about, so a scan that sees the same call or hour again adds nothing), listed for the views, acknowledged,
muted, and marked once their alert went out.

A finding is about a call (``call_id`` set), an hour of a series (``subject`` names it: ``dag:<id>``,
``provider:<name>``, ``model:<name>``) or a budget window (``budget:<key>``). ``group_key`` ties the findings of one
burst together: one alert per group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

from supervisor_lib.store.cursor import StoreCursor, as_datetime
from supervisor_lib.store.db import Store

#: what a scan finds
KINDS = (
    "context_blowup", "latency_spike", "runaway_output", "error_burst", "model_change",
    "spend_spike", "latency_p95", "budget_runout", "budget_share",
)  # fmt: skip
STATUSES = ("open", "acknowledged")


@dataclass(frozen=True)
class Finding:
    """One anomaly, as stored."""

    kind: str
    subject: str
    occurred_at: datetime
    score: float
    reason: str
    group_key: str
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    call_id: str | None = None
    provider: str | None = None
    model: str | None = None
    #: what makes it the same finding when seen again (default: the call, else the subject at that time)
    about: str | None = None

    @property
    def finding_id(self) -> str:
        """Stable for what the finding is about: the same call, hour or budget window gives the same id."""
        about = self.about or self.call_id or f"{self.subject}|{self.occurred_at.isoformat()}"
        return sha256(f"{self.kind}|{about}".encode()).hexdigest()[:32]

    @property
    def mute_keys(self) -> tuple[str, ...]:
        """The mutes that silence this finding: its kind for its task, its DAG, its provider, or anywhere."""
        keys = [f"{self.kind}|*"]
        if self.dag_id:
            keys.append(f"{self.kind}|dag:{self.dag_id}")
            if self.task_id:
                keys.append(f"{self.kind}|task:{self.dag_id}.{self.task_id}")
        if self.provider:
            keys.append(f"{self.kind}|provider:{self.provider}")
        return tuple(keys)


_STORED = tuple(f.name for f in fields(Finding) if f.name != "about")
_COLUMNS = ("finding_id", *_STORED, "detected_at")
_INSERT = (
    f"INSERT INTO anomalies ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (finding_id) DO NOTHING"
)
_SHOWN = ("finding_id", "kind", "subject", "occurred_at", "detected_at", "dag_id", "run_id", "task_id", "map_index",
          "call_id", "provider", "model", "score", "reason", "group_key", "status", "status_by", "status_at",
          "alerted_at")  # fmt: skip


def mute_key(kind: str, scope: str) -> str:
    """The key of a mute: ``kind`` (or ``*``) within ``scope`` (``*``, ``dag:<id>``, ``task:<dag>.<task>``,
    ``provider:<name>``)."""
    return f"{kind}|{scope}"


def record(store: Store, found: Iterable[Finding], now: datetime) -> list[Finding]:
    """Store the findings not stored before and not muted; return those (in the order given)."""
    found = list(found)
    if not found:
        return []

    def work(cur: StoreCursor) -> list[Finding]:
        muted = _muted(cur, {key for finding in found for key in finding.mute_keys}, now)
        new = []
        for finding in found:
            if muted.intersection(finding.mute_keys):
                continue
            row = asdict(finding)
            cur.execute(_INSERT, (finding.finding_id, *(row[name] for name in _STORED), now))
            if cur.rowcount:
                new.append(finding)
        return new

    return store.run(work, transaction=True)


def _muted(cur: StoreCursor, keys: set[str], now: datetime) -> set[str]:
    if not keys:
        return set()
    marks = ", ".join("?" for _ in keys)
    sql = f"SELECT mute_key FROM anomaly_mutes WHERE mute_key IN ({marks}) AND (until IS NULL OR until > ?)"
    return {row[0] for row in cur.execute(sql, (*sorted(keys), now)).fetchall()}


def listed(
    store: Store,
    start: datetime,
    end: datetime,
    *,
    dag_ids: frozenset[str] | None = None,
    status: str | None = None,
    kind: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Findings that occurred in ``[start, end)``, newest first. A user limited to some DAGs (``dag_ids``) sees
    only findings about those DAGs; findings about a provider, model or budget need access to every DAG."""
    clauses = ["occurred_at >= ?", "occurred_at < ?"]
    params: list[Any] = [start, end]
    if dag_ids is not None:
        clauses.append(f"dag_id IN ({', '.join('?' for _ in dag_ids)})" if dag_ids else "1 = 0")
        params += sorted(dag_ids)
    for column, value in (("status", status), ("kind", kind), ("dag_id", dag_id), ("run_id", run_id),
                          ("task_id", task_id)):  # fmt: skip
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    sql = (f"SELECT {', '.join(_SHOWN)} FROM anomalies WHERE {' AND '.join(clauses)}"
           f" ORDER BY occurred_at DESC, finding_id LIMIT {int(limit)}")  # fmt: skip
    rows = store.run(lambda cur: cur.execute(sql, tuple(params)).fetchall())
    return [_shown(row) for row in rows]


def _shown(row: Any) -> dict[str, Any]:
    """A stored finding as the API shows it: times as ISO-8601 text (PostgreSQL returns ``datetime`` objects,
    SQLite text: JSON can carry neither as is)."""
    item = dict(zip(_SHOWN, row, strict=True))
    for key in ("occurred_at", "detected_at", "status_at", "alerted_at"):
        at = as_datetime(item[key])
        item[key] = at.isoformat() if at else None
    return item


def open_count(store: Store, dag_ids: frozenset[str] | None, since: datetime) -> int:
    """Open findings that occurred since ``since`` (the Home tile)."""
    clauses = ["status = 'open'", "occurred_at >= ?"]
    params: list[Any] = [since]
    if dag_ids is not None:
        clauses.append(f"dag_id IN ({', '.join('?' for _ in dag_ids)})" if dag_ids else "1 = 0")
        params += sorted(dag_ids)
    sql = f"SELECT COUNT(*) FROM anomalies WHERE {' AND '.join(clauses)}"
    return int(store.run(lambda cur: cur.execute(sql, tuple(params)).fetchone())[0])


def get(store: Store, finding_id: str) -> dict[str, Any] | None:
    """One finding by id."""
    sql = f"SELECT {', '.join(_SHOWN)} FROM anomalies WHERE finding_id = ?"
    row = store.run(lambda cur: cur.execute(sql, (finding_id,)).fetchone())
    return _shown(row) if row else None


def set_status(store: Store, finding_id: str, status: str, by: str, now: datetime) -> bool:
    """Acknowledge (or reopen) a finding; False when there is no such finding."""
    if status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    sql = "UPDATE anomalies SET status = ?, status_by = ?, status_at = ? WHERE finding_id = ?"

    def work(cur: StoreCursor) -> bool:
        cur.execute(sql, (status, by, now, finding_id))
        return bool(cur.rowcount)

    return store.run(work)


def mute(store: Store, key: str, by: str, now: datetime, days: float | None) -> datetime | None:
    """Silence findings matching ``key`` (see :func:`mute_key`) for ``days`` (``None``: until unmuted); return
    when the mute ends."""
    until = now + timedelta(days=days) if days is not None else None
    sql = ("INSERT INTO anomaly_mutes (mute_key, until, created_by, created_at) VALUES (?, ?, ?, ?)"
           " ON CONFLICT (mute_key) DO UPDATE SET until = excluded.until, created_by = excluded.created_by,"
           " created_at = excluded.created_at")  # fmt: skip
    store.run(lambda cur: cur.execute(sql, (key, until, by, now)))
    return until


def unmute(store: Store, key: str) -> bool:
    def work(cur: StoreCursor) -> bool:
        cur.execute("DELETE FROM anomaly_mutes WHERE mute_key = ?", (key,))
        return bool(cur.rowcount)

    return store.run(work)


def mutes(store: Store, now: datetime) -> list[dict[str, Any]]:
    sql = "SELECT mute_key, until, created_by, created_at FROM anomaly_mutes WHERE until IS NULL OR until > ?"
    rows = store.run(lambda cur: cur.execute(sql, (now,)).fetchall())
    return [{"mute_key": key, "until": _iso(until), "created_by": by, "created_at": _iso(at)}
            for key, until, by, at in rows]  # fmt: skip


def unalerted(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    """Open findings whose alert has not gone out, oldest first."""
    sql = (f"SELECT {', '.join(_SHOWN)} FROM anomalies WHERE alerted_at IS NULL AND status = 'open'"
           f" ORDER BY occurred_at, finding_id LIMIT {int(limit)}")  # fmt: skip
    rows = store.run(lambda cur: cur.execute(sql).fetchall())
    return [dict(zip(_SHOWN, row, strict=True)) for row in rows]


def mark_alerted(store: Store, finding_ids: Sequence[str], now: datetime) -> None:
    if not finding_ids:
        return
    marks = ", ".join("?" for _ in finding_ids)
    sql = f"UPDATE anomalies SET alerted_at = ? WHERE finding_id IN ({marks}) AND alerted_at IS NULL"
    store.run(lambda cur: cur.execute(sql, (now, *finding_ids)))


def watermark(store: Store, scope: str) -> datetime | None:
    """Where the scan of ``scope`` stopped last time."""
    row = store.run(lambda cur: cur.execute("SELECT watermark FROM anomaly_watermarks WHERE scope = ?",
                                            (scope,)).fetchone())  # fmt: skip
    return as_datetime(row[0]) if row else None


def set_watermark(store: Store, scope: str, at: datetime, now: datetime) -> None:
    sql = (
        "INSERT INTO anomaly_watermarks (scope, watermark, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (scope) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at"
    )
    store.run(lambda cur: cur.execute(sql, (scope, at, now)))


def _iso(value: Any) -> str | None:
    at = as_datetime(value)
    return at.isoformat() if at else None
