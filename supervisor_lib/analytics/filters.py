"""What a view asks for: a time range, the DAGs the user may read, and optional narrowing by provider, model, team,
tag or DAG; and the SQL ``WHERE`` of it over the rollups. Bad input is a :class:`FilterError` naming the
parameter, never a database error."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from supervisor_lib.store.rollups import grain_for

#: the widest range a view may ask for
MAX_RANGE = timedelta(days=400)
#: ranges up to this long are answered per hour, longer ones per day
HOURLY_UP_TO = timedelta(days=3)
GROUPS = {"provider": "provider", "model": "model", "dag": "dag_id", "task_type": "task_type", "team": "team",
          "tag": "tags", "task": "task_id", "outcome": "outcome"}  # fmt: skip
_TEXT_LIMIT = 250
#: the times a filter may name (no call is older; far enough ahead for any window end)
EARLIEST, LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(2999, 12, 30, tzinfo=UTC)


class FilterError(ValueError):
    """A filter a view cannot use; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class Filters:
    """One view's question.

    :param dag_ids: the DAGs the user may read; ``None`` for every DAG (a user who may read them all).
    """

    start: datetime
    end: datetime
    dag_ids: frozenset[str] | None = None
    dag_id: str | None = None
    provider: str | None = None
    model: str | None = None
    team: str | None = None
    tag: str | None = None

    @classmethod
    def parse(cls, *, start: str | None, end: str | None, now: datetime | None = None, **narrow: str | None) -> Filters:
        """From query parameters: ISO-8601 ``start``/``end`` (default: the last 24 hours), and the narrowing ones
        (``dag_id``, ``provider``, ``model``, ``team``, ``tag``)."""
        now = now or datetime.now(UTC)
        until = _time("end", end) if end else now
        since = _time("start", start) if start else until - timedelta(hours=24)
        if since >= until:
            raise FilterError("start", f"must be before end ({since.isoformat()} >= {until.isoformat()})")
        if until - since > MAX_RANGE:
            raise FilterError("start", f"the range may span at most {MAX_RANGE.days} days")
        for name, value in narrow.items():
            if value is not None and (len(value) > _TEXT_LIMIT or "\x00" in value):
                raise FilterError(name, f"at most {_TEXT_LIMIT} characters, no NUL")
        unknown = set(narrow) - {"dag_id", "provider", "model", "team", "tag"}
        if unknown:
            raise FilterError(sorted(unknown)[0], "not a filter")
        values = {name: narrow.get(name) or None for name in ("dag_id", "provider", "model", "team", "tag")}
        return cls(since, until, None, **values)

    def allowing(self, dag_ids: frozenset[str] | None) -> Filters:
        """These filters restricted to the DAGs a user may read."""
        return Filters(self.start, self.end, dag_ids, self.dag_id, self.provider, self.model, self.team, self.tag)

    @property
    def grain(self) -> str:
        """``hour`` for short ranges, ``day`` for long ones."""
        return "hour" if self.end - self.start <= HOURLY_UP_TO else "day"

    @property
    def bucket_s(self) -> int:
        return 3600 if self.grain == "hour" else 86400

    def where(
        self, *, time_column: str = "bucket", grain: bool | str = True, table: str = "", needs: Iterable[str] = ()
    ) -> tuple[str, list[Any]]:
        """``WHERE`` text (``?`` placeholders) and its parameters for a rollup query.

        :param grain: ``True``: the rollups of the range's own :attr:`grain`; ``"day"``: day rollups, whatever the
            range; for either, a day range reads the smallest day grain that keeps every key in ``needs`` and every
            key these filters narrow by (:func:`~supervisor_lib.store.rollups.grain_for`). Another grain's name:
            those rows; ``False``: no grain (a table that has none).
        :param needs: the rollup keys the query groups by or reads (``dag_id``, ``task_id``, ``outcome``, ...).
        """
        prefix = f"{table}." if table else ""
        chosen = (self.grain if grain is True else grain) or None
        if chosen == "day":
            chosen = grain_for({*needs, *self.narrowing})
        start = _floor(self.start, chosen) if chosen else self.start
        clauses = [f"{prefix}{time_column} >= ?", f"{prefix}{time_column} < ?"]
        params: list[Any] = [start, self.end]
        if chosen:
            clauses.insert(0, f"{prefix}grain = ?")
            params.insert(0, chosen)
        if self.dag_ids is not None:
            if not self.dag_ids:
                clauses.append("1 = 0")  # a user who may read no DAG sees nothing
            else:
                clauses.append(f"{prefix}dag_id IN ({', '.join('?' for _ in self.dag_ids)})")
                params += sorted(self.dag_ids)
        for column, value in (("dag_id", self.dag_id), ("provider", self.provider), ("model", self.model),
                              ("team", self.team)):  # fmt: skip
            if value is not None:
                clauses.append(f"{prefix}{column} = ?")
                params.append(value)
        if self.tag is not None:
            clauses.append(f"(',' || {prefix}tags || ',') LIKE ? ESCAPE '\\'")
            params.append(f"%,{_escape_like(self.tag)},%")
        return " AND ".join(clauses), params

    @property
    def narrowing(self) -> set[str]:
        """The rollup keys these filters narrow by (``dag_id`` also for a user who may read only some DAGs)."""
        keys = {"dag_id"} if self.dag_ids is not None or self.dag_id is not None else set()
        named = (("provider", self.provider), ("model", self.model), ("team", self.team), ("tags", self.tag))
        return keys | {key for key, value in named if value is not None}


def group_column(group_by: str) -> str:
    """The rollup column a group-by names; :class:`FilterError` for anything else."""
    if group_by not in GROUPS:
        raise FilterError("group_by", f"one of {', '.join(sorted(GROUPS))}")
    return GROUPS[group_by]


def _time(param: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(param, f"not an ISO-8601 time: {value[:40]!r}") from None
    if not EARLIEST.year <= parsed.year <= LATEST.year:
        raise FilterError(param, f"must be between {EARLIEST.year} and {LATEST.year}: {value[:40]!r}")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _floor(at: datetime, grain: str) -> datetime:
    at = at.replace(minute=0, second=0, microsecond=0)
    return at if grain == "hour" else at.replace(hour=0)


def _escape_like(value: str) -> str:
    """``value`` matched literally by ``LIKE ... ESCAPE '\\'``."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
