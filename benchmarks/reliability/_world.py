"""The set-up the in-process parts share: a fake provider, a throw-away SQLite store, connections pointing at both.

Everything is set through environment variables (Airflow's ``AIRFLOW_CONN_*`` connections) for the duration of a
``with`` block and restored after it, so a part runs the same inside pytest and from ``python -m
benchmarks.reliability``.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from supervisor_lib.testing import FakeProviderServer

if TYPE_CHECKING:
    from supervisor_lib.store import Store

#: the API key the fake provider is called with: a canary no output may contain
CANARY_KEY = "sk-reliability+canary/4e1d8b27c90f="  # "+/=": its URL-encoded form differs
#: the request paths that ask a model for an answer (not batches, files or model lists)
GENERATION_PATHS = frozenset({"/v1/messages", "/v1/chat/completions", "/v1/responses"})


@dataclass
class World:
    """A running fake provider and a store; ``store_conn`` is the connection id naming the store."""

    fake: FakeProviderServer
    store_conn: str
    store_path: Path
    home: Path
    _url: str | None = None

    def store(self) -> Store:
        """The store, opened by URL (each call a fresh handle)."""
        from supervisor_lib.store import Store

        return Store.from_url(self.store_url)

    @property
    def store_url(self) -> str:
        return self._url or f"sqlite:///{self.store_path}"

    def new_store(self, url: str | None = None) -> None:
        """Switch to a fresh store under its own connection id: no rows, budgets or health from earlier calls.

        :param url: a PostgreSQL URL (``postgresql://user@host:port/db``); by default a new SQLite file.
        """
        self.store_conn = f"reliability_{uuid.uuid4().hex[:8]}"
        self.store_path = self.home / f"{self.store_conn}.db"
        self._url = url
        if url is None:
            conn: dict[str, Any] = {"conn_type": "sqlite", "host": str(self.store_path)}
        else:
            user_host, schema = url.split("://", 1)[1].rsplit("/", 1)
            login, host_port = user_host.split("@")
            host, port = host_port.split(":")
            conn = {"conn_type": "postgres", "host": host, "port": int(port), "login": login, "schema": schema}
        os.environ[f"AIRFLOW_CONN_{self.store_conn.upper()}"] = json.dumps(conn)

    def charged(self, dag_id: str) -> float:
        """What DAG ``dag_id``'s budgets were charged (settled spend, every window)."""
        store = self.store()
        sql = store._sql("SELECT COALESCE(SUM(spent_usd), 0) FROM budget_spend WHERE budget_key LIKE ?")

        def work(cur: Any) -> float:
            cur.execute(sql, (f"dag:{dag_id}:%",))
            return float(cur.fetchone()[0])

        return store.run(work)

    def requests(self, provider: str | None = None) -> int:
        """Generation requests the fake provider received (``provider``: only that one's)."""
        return sum(1 for call in self.fake.calls if call.path in GENERATION_PATHS and provider in (None, call.provider))


@contextmanager
def provider_world(*, timeout_s: float = 1.0, key: str = CANARY_KEY) -> Iterator[World]:
    """A fake provider answering both providers' default connections, and a fresh store, for one ``with`` block.

    :param timeout_s: the connections' request timeout (a ``hang`` fault must outlast it).
    :param key: the API key both connections carry.
    """
    with tempfile.TemporaryDirectory(prefix="supervisor-reliability-") as tmp, FakeProviderServer() as fake:
        home = Path(tmp)
        env = {"SUPERVISOR_SPOOL_DIR": str(home / "spool")}
        for conn_id, base in (("anthropic_default", fake.anthropic_base_url), ("openai_default", fake.openai_base_url)):
            conn = {"conn_type": conn_id.split("_")[0], "host": base, "password": key, "extra": {"timeout": timeout_s}}
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        with mock.patch.dict(os.environ, env):
            os.environ.pop("SUPERVISOR_BUDGETS", None)
            world = World(fake=fake, store_conn="", store_path=home, home=home)
            world.new_store()
            yield world


def dump_tables(store: Store) -> str:
    """Every row of every table of ``store`` as text (where a secret could hide), SQLite or PostgreSQL."""
    listing = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if store.dialect == "sqlite"
        else "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )

    def work(cur: Any) -> str:
        cur.execute(listing)
        dumped = []
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT * FROM "{table}"')
            dumped.append(json.dumps(cur.fetchall(), default=str))
        return "\n".join(dumped)

    return store.run(work)
