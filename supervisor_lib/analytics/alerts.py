"""Alerts for the anomaly scan's findings, sent through Airflow notifiers (SMTP, Slack, ... from the providers that
ship them), grouped (one message per burst: the findings of one ``group_key``) and never repeated (a finding is
marked once its message went out; a notifier that fails leaves it for the next scan).

Configuration: the Airflow Variable ``supervisor_alerts`` (or ``$SUPERVISOR_ALERTS``, the same JSON/YAML), e.g.::

    {"notifiers": [{"class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
                    "kwargs": {"to": "oncall@example.com", "from_email": "supervisor@example.com"}}],
     "min_score": 0}

``class`` is an import path or a short name (``smtp``, ``webhook``, ``slack``, ``slack_webhook``). Each notifier is
built fresh for each message with its ``kwargs``; string kwargs are Jinja templates rendered with ``alert``
(``title``, ``text``, ``html``, ``kind``, ``count``, ``findings``, ``dag_id``) in the context. Known notifiers get
the message where it belongs by default (SMTP: ``subject`` and ``html_content``; Slack: ``text``; webhook: a JSON
``payload``). With no notifier configured, alerts are only logged (and still marked, so configuring one later does
not replay old findings).

Specs add their own notifiers for their DAG (:func:`routes_from_specs`): ``notify.on_anomaly`` hears every message
about the DAG, ``notify.on_budget`` the budget shares it asked for (findings of kind ``budget_share``, which the scan
records only for those DAGs). A message goes out to the configured notifiers and the DAG's, and is marked once all
of them took it.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import yaml

from supervisor_lib.analytics import findings
from supervisor_lib.store.db import Store

if TYPE_CHECKING:
    from supervisor_lib.spec.loader import StrPath

log = logging.getLogger(__name__)

ALERTS_VARIABLE = "supervisor_alerts"
ALERTS_ENV = "SUPERVISOR_ALERTS"
#: the most messages one scan sends; further groups are summed up in one more message
MAX_MESSAGES = 20
#: the message, as templates of the notifier's context (``supervisor_lib.notify.factory`` puts each part where the
#: notifier wants it unless the configuration says otherwise)
MESSAGE: dict[str, Any] = {
    "title": "{{ alert.title }}", "text": "{{ alert.text }}", "html": "{{ alert.html }}",
    "payload": {"event": "anomaly", "title": "{{ alert.title }}", "text": "{{ alert.text }}",
                "kind": "{{ alert.kind }}", "dag_id": "{{ alert.dag_id }}"},
}  # fmt: skip
BUDGET_SHARE = "budget_share"
_LABELS = {
    "context_blowup": "context blow-up", "latency_spike": "latency spike", "runaway_output": "runaway output",
    "error_burst": "error burst", "model_change": "model change", "spend_spike": "spend spike",
    "latency_p95": "p95 latency", "budget_runout": "budget running out", BUDGET_SHARE: "budget share reached",
}  # fmt: skip


#: kinds about a provider as a whole, whichever DAGs' calls showed it
_PROVIDER_WIDE = ("error_burst",)


class AlertConfigError(ValueError):
    """The alert configuration cannot be used; the message says where and what."""


@dataclass(frozen=True)
class AlertConfig:
    notifiers: tuple[dict[str, Any], ...] = ()
    min_score: float = 0.0
    source: str = "no alert configuration"

    @classmethod
    def parse(cls, text: str, source: str) -> AlertConfig:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise AlertConfigError(f"{source}: not YAML/JSON: {err}") from None
        if not isinstance(data, dict):
            raise AlertConfigError(f"{source}: expected a mapping with 'notifiers'")
        unknown = set(data) - {"notifiers", "min_score"}
        if unknown:
            raise AlertConfigError(f"{source}: unknown key {sorted(unknown)[0]!r} (known: notifiers, min_score)")
        notifiers = data.get("notifiers") or []
        if not isinstance(notifiers, list):
            raise AlertConfigError(f"{source}: notifiers must be a list")
        for index, spec in enumerate(notifiers):
            if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
                raise AlertConfigError(f"{source}: notifiers[{index}] needs a 'class' (a notifier's import path)")
            if not isinstance(spec.get("kwargs", {}), dict):
                raise AlertConfigError(f"{source}: notifiers[{index}].kwargs must be a mapping")
        try:
            min_score = float(data.get("min_score") or 0.0)
        except (TypeError, ValueError):
            raise AlertConfigError(f"{source}: min_score must be a number") from None
        return cls(tuple(notifiers), min_score, source)


def load_config() -> AlertConfig:
    """``$SUPERVISOR_ALERTS``, else the Variable ``supervisor_alerts`` (read while a task runs), else none."""
    if text := os.environ.get(ALERTS_ENV):
        return AlertConfig.parse(text, f"${ALERTS_ENV}")
    from supervisor_lib.execution.variables import variable_override

    found = variable_override(ALERTS_VARIABLE)
    return AlertConfig.parse(found[1], found[0]) if found else AlertConfig()


@dataclass
class Alert:
    """One message: the findings of one group (or the summary of the groups beyond :data:`MAX_MESSAGES`)."""

    title: str
    lines: list[str]
    links: list[str] = field(default_factory=list)
    finding_ids: list[str] = field(default_factory=list)
    kind: str = ""
    #: the DAG the message is about (``None``: a provider, a model, or several DAGs)
    dag_id: str | None = None

    def as_context(self) -> dict[str, Any]:
        text = "\n".join([self.title, *(f"- {line}" for line in self.lines), *self.links])
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines)
        links = "".join(f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>' for link in self.links)
        return {"title": self.title, "text": text, "html": f"<h3>{html.escape(self.title)}</h3><ul>{items}</ul>{links}",
                "kind": self.kind, "count": len(self.finding_ids), "findings": self.lines,
                "dag_id": self.dag_id or ""}  # fmt: skip


def compose(rows: Sequence[dict[str, Any]], ui_url: str) -> list[Alert]:
    """Group unalerted findings into messages, one per ``group_key``, largest score first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group_key"], []).append(row)
    ordered = sorted(groups.values(), key=lambda group: -max(float(r["score"]) for r in group))
    alerts = [_alert(group, ui_url) for group in ordered[:MAX_MESSAGES]]
    rest = ordered[MAX_MESSAGES:]
    if rest:
        ids = [row["finding_id"] for group in rest for row in group]
        lines = [f"{len(group)} x {_LABELS.get(group[0]['kind'], group[0]['kind'])}: {group[0]['reason']}"
                 for group in rest]  # fmt: skip
        alerts.append(Alert(f"Supervisor: {len(ids)} more anomalies", lines, [f"{ui_url}/plugin/supervisor"], ids))
    return alerts


def _alert(group: list[dict[str, Any]], ui_url: str) -> Alert:
    first = max(group, key=lambda row: float(row["score"]))
    label = _LABELS.get(first["kind"], first["kind"])
    if first["kind"] in _PROVIDER_WIDE and first["provider"]:
        where = f"provider {first['provider']}"
    else:
        where = first["dag_id"] and f"{first['dag_id']}" + (f".{first['task_id']}" if first["task_id"] else "")
        where = where or (first["provider"] and f"provider {first['provider']}") or first["subject"]
    title = f"Supervisor: {label} in {where}" + (f" ({len(group)} findings)" if len(group) > 1 else "")
    lines = [row["reason"] for row in sorted(group, key=lambda row: -float(row["score"]))[:10]]
    if len(group) > 10:
        lines.append(f"... and {len(group) - 10} more")
    links = [_link(first, ui_url)]
    dag_id = None if first["kind"] in _PROVIDER_WIDE else first["dag_id"]
    return Alert(title, lines, links, [row["finding_id"] for row in group], first["kind"], dag_id)


def _link(row: dict[str, Any], ui_url: str) -> str:
    if row["dag_id"] and row["run_id"] and row["task_id"]:
        task = f"{ui_url}/dags/{quote(row['dag_id'])}/runs/{quote(row['run_id'])}/tasks/{quote(row['task_id'])}"
        mapped = f"/mapped/{row['map_index']}" if (row["map_index"] or -1) >= 0 else ""
        return f"{task}{mapped}/plugin/supervisor-task"
    if row["dag_id"]:
        return f"{ui_url}/dags/{quote(row['dag_id'])}/plugin/supervisor-dag"
    return f"{ui_url}/plugin/supervisor"


def ui_base_url() -> str:
    """Airflow's UI address (``[api] base_url``), for the links in messages."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


@dataclass
class SendResult:
    messages: int = 0
    findings: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Route:
    """What one spec asked to hear about its DAG from the scan (``notify.on_anomaly`` and ``notify.on_budget``)."""

    anomaly: tuple[dict[str, Any], ...] = ()
    budget: tuple[dict[str, Any], ...] = ()
    #: the shares of a limit whose crossing is a ``budget_share`` finding
    shares: tuple[float, ...] = ()

    def notifiers(self, kind: str) -> tuple[dict[str, Any], ...]:
        """The DAG's notifiers for a message of this kind."""
        return self.budget if kind == BUDGET_SHARE else self.anomaly


def routes_from_specs(specs_dir: StrPath | None) -> dict[str, Route]:
    """Per DAG id, what the valid specs in ``specs_dir`` ask to hear from the scan (invalid specs are skipped: their
    errors show in Airflow's import-errors view)."""
    if specs_dir is None:
        return {}
    from supervisor_lib.spec import load_specs

    specs, _ = load_specs(specs_dir)
    routes = {}
    for spec in specs:
        notify = spec.notify
        if notify is None or not (notify.on_anomaly or notify.on_budget):
            continue
        budget = notify.on_budget
        routes[spec.dag_id] = Route(
            anomaly=tuple(_declared(item) for item in notify.on_anomaly),
            budget=tuple(_declared(item) for item in budget.notifiers) if budget else (),
            shares=tuple(sorted(budget.share)) if budget else (),
        )
    return routes


def _declared(item: Any) -> dict[str, Any]:
    return {"class": item.notifier, "kwargs": dict(item.kwargs)}


def send(store: Store, config: AlertConfig, now: datetime, ui_url: str | None = None,
         routes: Mapping[str, Route] | None = None) -> SendResult:  # fmt: skip
    """Send the alerts of every open finding not alerted yet (to the configured notifiers, and to the notifiers of
    the DAG it is about from ``routes``); mark the findings whose message went out."""
    rows = [row for row in findings.unalerted(store) if float(row["score"]) >= config.min_score]
    result = SendResult()
    for alert in compose(rows, ui_url or ui_base_url()):
        route = (routes or {}).get(alert.dag_id or "")
        notifiers = [*config.notifiers, *(route.notifiers(alert.kind) if route else ())]
        failures = [failure for spec in notifiers if (failure := _notify(spec, alert))]
        if failures:
            result.failures += failures
            continue  # tried again by the next scan
        if not notifiers:
            log.warning("alert (no notifier configured in %s): %s", config.source, alert.as_context()["text"])
        findings.mark_alerted(store, alert.finding_ids, now)
        result.messages += 1
        result.findings += len(alert.finding_ids)
    return result


def _notify(spec: dict[str, Any], alert: Alert) -> str | None:
    """Send ``alert`` with one notifier; the failure's description, or ``None``."""
    from supervisor_lib.notify.factory import make_notifier, scrub_secrets

    name = spec["class"]
    try:
        notifier = make_notifier(name, spec.get("kwargs") or {}, MESSAGE)
        notifier({"alert": alert.as_context()})
    except Exception as exc:  # a notifier's failure must not stop the others or lose the finding
        detail = scrub_secrets(exc)  # an SMTP or HTTP error may quote what the connection holds
        log.error("notifier %s failed for %r: %s: %s", name, alert.title, type(exc).__name__, detail)
        return f"{name}: {type(exc).__name__}: {detail}"
    log.info("alert sent through %s: %s", name, alert.title)
    return None


def describe(config: AlertConfig) -> str:
    """The configuration in one line, for the scan's log."""
    classes = [spec["class"].rsplit(".", 1)[-1] for spec in config.notifiers]
    return f"{json.dumps(classes)} from {config.source}" if classes else f"no notifier ({config.source})"
