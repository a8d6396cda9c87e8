"""Airflow notifier instances from what a spec or the ``supervisor_alerts`` configuration declares.

A notifier is named by a short name (``smtp``, ``webhook``, ``slack``, ``slack_webhook``: see
:data:`supervisor_lib.spec.notifiers.KNOWN`) or an import path, and imported only here, when a DAG that uses it is
built or an alert is sent. Known notifiers get the message where they expect it unless the declaration says
otherwise (SMTP: ``subject`` and ``html_content``; Slack: ``text``; webhook: ``payload``). Every instance is built
fresh: Airflow renders a notifier's templated fields in place, once.

Messages never carry a secret: the default templates pass the error through the ``scrub`` filter (registered on
every spec DAG), which removes every key Supervisor registered and every secret Airflow masks in this process.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor_lib.providers.scrub import scrub
from supervisor_lib.spec.notifiers import class_path

if TYPE_CHECKING:
    from airflow.sdk.bases.notifier import BaseNotifier

#: class name -> field -> the message part it carries (``title``, ``text``, ``html`` or the webhook's ``payload``)
_WHERE = {
    "SmtpNotifier": {"subject": "title", "html_content": "html"},
    "SlackNotifier": {"text": "text"},
    "SlackWebhookNotifier": {"text": "text"},
    "WebhookNotifier": {"payload": "payload"},
}

Message = Mapping[str, Any]


def notifier_class(name: str) -> type[BaseNotifier]:
    """The notifier class a spec or configuration names (imported now)."""
    module, _, attribute = class_path(name).rpartition(".")
    found = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(found, type) or not callable(found):
        raise TypeError(f"notifier {name!r}: {module}.{attribute} is not a class")
    return found


def make_notifier(name: str, kwargs: Mapping[str, Any], message: Message) -> BaseNotifier:
    """A fresh notifier: ``kwargs`` over the fields where its class wants ``message`` (``title``, ``text``,
    ``html``, ``payload``: Jinja templates)."""
    cls = notifier_class(name)
    defaults = {field: message[part] for field, part in _WHERE.get(cls.__name__, {}).items() if part in message}
    return cls(**{**defaults, **kwargs})


def scrub_secrets(value: Any, *secrets: str | None) -> str:
    """``value`` as text without any secret known in this process (Supervisor's provider keys, Airflow's masked
    connection passwords and sensitive extras) or given in ``secrets``: the ``scrub`` Jinja filter of spec DAGs."""
    text = scrub(str(value))
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    try:
        from airflow.sdk.log import redact  # Airflow's masker: what mask_secret registered in this process
    except ImportError:  # pragma: no cover - an Airflow without the task SDK's masker
        return text
    redacted = redact(text)
    return redacted if isinstance(redacted, str) else text


# -- messages about runs and tasks (Airflow's callback context: dag, run_id, ti, exception, reason) -------------
_TASK = "{{ ti.task_id }}{% if ti.map_index is defined and ti.map_index is not none and ti.map_index >= 0 %}[{{ ti.map_index }}]{% endif %}"  # noqa: E501
_DETAILS = (
    "Run: {{ run_id }}\n"
    "{% if ti is defined and ti %}Task: " + _TASK + ", try {{ ti.try_number }}\nLog: {{ ti.log_url }}\n{% endif %}"
    "{% if exception is defined and exception %}Error: {{ exception | scrub }}\n{% endif %}"
    "{% if reason is defined and reason %}Reason: {{ reason | scrub }}\n{% endif %}"
)
_HTML_DETAILS = (
    "<p>Run: {{ run_id | e }}</p>"
    "{% if ti is defined and ti %}<p>Task: {{ ti.task_id | e }}, try {{ ti.try_number }}</p>"
    '<p><a href="{{ ti.log_url | e }}">{{ ti.log_url | e }}</a></p>{% endif %}'
    "{% if exception is defined and exception %}<pre>{{ exception | scrub | e }}</pre>{% endif %}"
    "{% if reason is defined and reason %}<p>Reason: {{ reason | scrub | e }}</p>{% endif %}"
)


def event_message(event: str, *, task_level: bool) -> dict[str, Any]:
    """The message of a run or task event (``failed``, ``succeeded``), as templates of Airflow's callback context."""
    subject = "{{ dag.dag_id }}." + _TASK if task_level else "{{ dag.dag_id }} run"
    title = f"Supervisor: {subject} {event}"
    payload = {"event": f"{'task' if task_level else 'run'}_{event}", "title": title, "text": _DETAILS,
               "dag_id": "{{ dag.dag_id }}", "run_id": "{{ run_id }}",
               "task_id": "{{ ti.task_id if ti is defined and ti else '' }}"}  # fmt: skip
    return {"title": title, "text": f"{title}\n{_DETAILS}", "html": f"<h3>{title}</h3>{_HTML_DETAILS}",
            "payload": payload}  # fmt: skip
