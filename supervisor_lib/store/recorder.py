"""Recording model-call attempts: :class:`CallRecord` (one ``call_attempts`` row) and the :class:`Recorder`.

Recording never fails a task and never holds it up. :meth:`Recorder.record` writes one row in one short
transaction; when the store cannot take it, the row is appended as one JSON line to this process's spool file and
a single warning is logged for the outage. The next successful ``record()`` flushes the spool (cheaply checked),
as does :meth:`Recorder.flush_spool` for tools. Re-inserting is idempotent: ``call_id`` is the primary key.

Spool files live in ``$SUPERVISOR_SPOOL_DIR`` (default ``$AIRFLOW_HOME/supervisor_spool/``), one per process and
store, named ``<store>@<host>-<pid>-<token>.jsonl``. Each line is written by a single ``os.write`` on an
``O_APPEND`` descriptor, so lines from concurrent writers never interleave. The owner holds an ``flock`` on its file
for as long as it lives; another process flushes a file only when it can take that lock, i.e. once the owner has
exited (the kernel releases it even after a crash), so no live process ever appends to a file being deleted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal, get_args

from supervisor_lib.store.db import DEFAULT_CONN_ID, Store, get_store
from supervisor_lib.store.schema import CALL_ATTEMPT_COLUMNS
from supervisor_lib.store.targets import airflow_home

log = logging.getLogger(__name__)

CallStatus = Literal["success", "error", "cached"]
CALL_STATUSES: frozenset[str] = frozenset(get_args(CallStatus))
#: what happened to an attempt: answered; rejected (answered and billed, but its output failed the check);
#: failed (no answer); cached (an answer already paid for, re-used)
Outcome = Literal["answered", "rejected", "failed", "cached"]
#: how its cost is known: exact (the provider's reported tokens at the published price), estimated, unpriced (no
#: price known for the model), none (nothing billed)
CostBasis = Literal["exact", "estimated", "unpriced", "none"]
_OUTCOME_OF_STATUS = {"success": "answered", "error": "failed", "cached": "cached"}
#: the longest error message kept with an attempt
ERROR_MESSAGE_CHARS = 300
CALL_ID_LENGTH = 32
#: how often record() looks for spool files left by processes that have exited
SCAN_EVERY_S = 60.0
#: spooled rows are re-inserted in transactions of at most this many rows
FLUSH_BATCH = 500
_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def call_id(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    attempt: int,
    discriminator: str = "",
) -> str:
    """The id of one attempt: the same inputs always give the same id, so a replayed write is ignored.

    :param discriminator: tells apart distinct calls that share an attempt slot (e.g. a corrective request).
    """
    key = json.dumps([dag_id, run_id, task_id, map_index, try_number, attempt, discriminator])
    return sha256(key.encode()).hexdigest()[:CALL_ID_LENGTH]


@dataclass(frozen=True)
class CallRecord:
    """One model-call attempt, as stored in ``call_attempts``.

    :param attempt: 1-based within the task try; 0 for an answer served from the response cache.
    :param started_at: timezone-aware; stored in UTC.
    :param cost_usd: ``None`` when the model's price is unknown.
    :param tags: stored comma-joined, so a tag may not contain a comma.
    """

    call_id: str
    dag_id: str
    run_id: str
    task_id: str
    provider: str
    model: str
    task_type: str
    started_at: datetime
    status: CallStatus
    map_index: int = -1
    try_number: int = 1
    attempt: int = 1
    duration_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    error_type: str | None = None
    request_id: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    deferred: bool = False
    outcome: Outcome | None = None
    error_message: str | None = None
    cost_basis: CostBasis | None = None
    saved_usd: float | None = None
    #: what was asked and answered (kept in ``call_transcripts`` when content recording is on), already scrubbed
    transcript: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in CALL_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {sorted(CALL_STATUSES)}")
        if self.started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware, e.g. datetime.now(UTC)")
        if any("," in tag for tag in self.tags):
            raise ValueError(f"tags are stored comma-joined, so they may not contain commas: {self.tags!r}")
        if self.attempt < 0 or any(getattr(self, name) < 0 for name in _COUNTS):
            raise ValueError("attempt and token counts may not be negative")
        object.__setattr__(self, "started_at", self.started_at.astimezone(UTC))
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.outcome is None:
            object.__setattr__(self, "outcome", _OUTCOME_OF_STATUS[self.status])
        if self.cost_basis is None:
            object.__setattr__(self, "cost_basis", _cost_basis(self))
        if self.error_message is not None:
            object.__setattr__(self, "error_message", self.error_message[:ERROR_MESSAGE_CHARS])

    def to_row(self) -> dict[str, Any]:
        """The ``call_attempts`` row: column name → value, in table order."""
        row = {column: getattr(self, column) for column in CALL_ATTEMPT_COLUMNS}
        row["tags"] = ",".join(self.tags) or None
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CallRecord:
        """The inverse of :meth:`to_row`; also takes ISO-text ``started_at`` and 0/1 ``deferred``."""
        values = {name: row[name] for name in _FIELDS if name in row}
        if isinstance(values.get("started_at"), str):
            values["started_at"] = datetime.fromisoformat(values["started_at"])
        tags = values.get("tags") or ()
        values["tags"] = tuple(tag for tag in (tags.split(",") if isinstance(tags, str) else tags) if tag)
        values["deferred"] = bool(values.get("deferred", False))
        return cls(**values)

    def to_json(self) -> str:
        """One JSON line (no newline) holding the row (and its transcript)."""
        data = {**self.to_row(), "started_at": self.started_at.isoformat(), "transcript": self.transcript}
        return json.dumps(data, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str | bytes) -> CallRecord:
        """The record written by :meth:`to_json`."""
        return cls.from_row(json.loads(line))


_FIELDS = frozenset(field.name for field in fields(CallRecord))


def _cost_basis(record: CallRecord) -> CostBasis:
    if record.status == "cached" or (record.status == "error" and not record.cost_usd):
        return "none"
    return "unpriced" if record.cost_usd is None else "exact"


def default_spool_dir() -> Path:
    """``$SUPERVISOR_SPOOL_DIR``, else ``$AIRFLOW_HOME/supervisor_spool``."""
    explicit = os.environ.get("SUPERVISOR_SPOOL_DIR")
    return Path(explicit).expanduser() if explicit else airflow_home() / "supervisor_spool"


class _Spool:
    """This process's spool file for one store, and the draining of all that store's spool files."""

    def __init__(self, directory: Path, store_name: str) -> None:
        self.directory = directory
        self.prefix = re.sub(r"[^\w.-]", "_", store_name) + "@"
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = 0
        self._next_scan = 0.0  # the first record() of a process looks for leftovers at once

    def append(self, line: str) -> None:
        data = (line + "\n").encode()
        written = os.write(self._own_fd(), data)
        if written != len(data):
            raise OSError(f"short write to {self._path} ({written} of {len(data)} bytes)")

    def due(self) -> bool:
        """Whether a flush may find anything: this process spooled, or it is time to look for leftovers."""
        return self._owns_file() or time.monotonic() >= self._next_scan

    def drain(self, insert: Callable[[list[CallRecord]], object]) -> int:
        """Insert the rows of every spool file we may take, deleting each file once all its rows are in."""
        self._next_scan = time.monotonic() + SCAN_EVERY_S
        total = 0
        if self._owns_file() and self._path is not None:
            total += self._insert_file(self._path.read_bytes(), self._path, insert)
            self._path.unlink(missing_ok=True)
            self.close()
        for path in sorted(self.directory.glob(self.prefix + "*.jsonl")):  # the prefix holds no glob characters
            if path != self._path:
                total += self._drain_foreign(path, insert)
        return total

    def close(self) -> None:
        """Close this process's spool file; it stays for a later flush if it still holds rows."""
        fd, self._fd, self._path = self._fd, None, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)

    def _owns_file(self) -> bool:
        """Whether this process has a spool file open (a descriptor inherited over fork is the parent's)."""
        return self._fd is not None and self._pid == os.getpid()

    def _own_fd(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        self.close()  # a descriptor inherited over fork: that file belongs to the parent
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.prefix}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        # lock it under a name no flusher looks for, then publish it: nobody can drain it before we hold the lock
        unpublished = path.with_name(path.name + ".new")
        fd = os.open(unpublished, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while we live: nobody else drains this file
        os.rename(unpublished, path)
        self._fd, self._path, self._pid = fd, path, os.getpid()
        return fd

    def _drain_foreign(self, path: Path, insert: Callable[[list[CallRecord]], object]) -> int:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return 0
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive and may still append
            if os.fstat(handle.fileno()).st_nlink == 0:
                return 0  # another process drained and deleted it while we waited
            count = self._insert_file(handle.read(), path, insert)
            path.unlink(missing_ok=True)
            return count

    @staticmethod
    def _insert_file(data: bytes, path: Path, insert: Callable[[list[CallRecord]], object]) -> int:
        records: list[CallRecord] = []
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(CallRecord.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                log.error("analytics spool %s line %d is unreadable and is dropped (%s): %r", path, number, exc, line)
        for start in range(0, len(records), FLUSH_BATCH):
            insert(records[start : start + FLUSH_BATCH])
        return len(records)


class Recorder:
    """Records attempts in an :class:`Store`; never raises and never waits on a down store.

    :param store: where rows go.
    :param spool_dir: where rows wait while the store is down (default: :func:`default_spool_dir`).
    """

    def __init__(self, store: Store, *, spool_dir: str | os.PathLike[str] | None = None) -> None:
        self.store = store
        self._spool = _Spool(Path(spool_dir) if spool_dir else default_spool_dir(), store.name)
        self._lock = threading.Lock()
        self._outage = False  # spooling since the last successful write: one warning per outage

    def record(self, record: CallRecord) -> bool:
        """Store one attempt; ``True`` if it is in the store, ``False`` if it was spooled instead."""
        try:
            self.store.insert_attempts([record.to_row()], _transcripts([record]))
        except Exception as exc:
            self._spool_record(record, exc)
            return False
        if self._outage or self._spool.due():
            self._flush_quietly()
        return True

    def flush_spool(self) -> int:
        """Re-insert the spooled rows this process may take; return how many rows were read back.

        :raises StoreUnavailableError: the store is still down (spool files are kept).
        """
        with self._lock:
            flushed = self._spool.drain(self._insert)
        if self._outage or flushed:
            log.info("analytics store %s is taking rows again; %d spooled row(s) flushed", self.store.name, flushed)
        self._outage = False
        return flushed

    def close(self) -> None:
        """Close this process's spool file (its rows stay for a later flush)."""
        with self._lock:
            self._spool.close()

    def _insert(self, records: list[CallRecord]) -> None:
        self.store.insert_attempts([record.to_row() for record in records], _transcripts(records))

    def _spool_record(self, record: CallRecord, cause: Exception) -> None:
        with self._lock:
            try:
                self._spool.append(record.to_json())
            except Exception as exc:  # nowhere left to put it: the log line is the last copy
                log.error(
                    "analytics: store failed (%s) and spool failed (%s); lost row: %s", cause, exc, record.to_json()
                )
                return
            if not self._outage:
                self._outage = True
                log.warning(
                    "analytics store %s unavailable (%s); spooling call records to %s until it is back",
                    self.store.name,
                    cause,
                    self._spool.directory,
                )

    def _flush_quietly(self) -> None:
        try:
            self.flush_spool()
        except Exception as exc:  # the store wobbled again: the rows stay spooled for next time
            log.debug("analytics spool flush deferred: %s", exc)


_recorders: dict[str, Recorder] = {}
_recorders_lock = threading.Lock()


def get_recorder(conn_id: str = DEFAULT_CONN_ID) -> Recorder:
    """This process's recorder for the store ``conn_id`` (sharing :func:`get_store`'s connection)."""
    with _recorders_lock:
        recorder = _recorders.get(conn_id)
        if recorder is None:
            recorder = _recorders[conn_id] = Recorder(get_store(conn_id))
        return recorder


def _transcripts(records: list[CallRecord]) -> dict[str, dict[str, Any]]:
    return {record.call_id: record.transcript for record in records if record.transcript}
