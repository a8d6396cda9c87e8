"""``WebhookNotifier``: POST a JSON message to an HTTP endpoint named by an Airflow connection.

No installed provider ships a generic webhook notifier (the HTTP provider is not a dependency), so this is the
smallest ``BaseNotifier`` that does it. The connection holds everything that is not the message: the URL (``host``
with its scheme, JSON form; or ``schema``/``host``/``port``), an optional path in ``extra.endpoint``, extra headers
in ``extra.headers``, and a token in ``password`` (sent as ``Authorization: Bearer``). The body is scrubbed of every
secret this process knows (:func:`~supervisor_lib.notify.factory.scrub_secrets`) before it is sent; errors name the
connection and the HTTP status, never the URL (it may carry a token).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.bases.notifier import BaseNotifier

from supervisor_lib.notify.factory import scrub_secrets

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from airflow.sdk.definitions.context import Context

DEFAULT_CONN_ID = "supervisor_webhook"


class WebhookNotifierError(RuntimeError):
    """The endpoint refused the message or could not be reached; retrying may help."""


class WebhookNotifier(BaseNotifier):
    """POST ``payload`` (a mapping whose strings are Jinja templates) as JSON to the connection's URL.

    :param conn_id: the Airflow connection of the endpoint (default ``supervisor_webhook``).
    :param payload: the JSON body; by default the event's ``title`` and ``text``.
    :param timeout_s: seconds before the request is given up.
    """

    template_fields = ("payload", "conn_id")

    def __init__(
        self,
        conn_id: str = DEFAULT_CONN_ID,
        payload: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.payload = dict(payload) if payload is not None else {"title": "Airflow notification", "text": ""}
        self.timeout_s = timeout_s

    def notify(self, context: Context) -> None:
        """Send the rendered payload; raise :class:`WebhookNotifierError` unless the endpoint answers 2xx."""
        import httpx

        conn = BaseHook.get_connection(self.conn_id)
        body = scrub_secrets(json.dumps(self.payload, default=str), conn.password)
        try:
            response = httpx.post(_url(conn), content=body, headers=_headers(conn), timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise WebhookNotifierError(f"webhook {self.conn_id!r}: {type(exc).__name__}") from None
        if not response.is_success:
            raise WebhookNotifierError(f"webhook {self.conn_id!r}: HTTP {response.status_code}")
        self.log.info("webhook %s answered HTTP %s", self.conn_id, response.status_code)


def _url(conn: Connection) -> str:
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}" + (f":{conn.port}" if conn.port else "")
    endpoint = str(conn.extra_dejson.get("endpoint") or "").lstrip("/")
    return f"{host}/{endpoint}" if endpoint else host


def _headers(conn: Connection) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **{str(k): str(v) for k, v in
                                                      (conn.extra_dejson.get("headers") or {}).items()}}  # fmt: skip
    if conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    return headers
