"""Which Airflow notifiers a spec may name, checked without importing them (no Airflow import here).

A spec names a notifier by a short name (:data:`KNOWN`) or by the import path of any ``BaseNotifier`` subclass.
Parse time only looks on disk: the module's file must exist and mention the class, so a typo or a provider that is
not installed is a located spec error, while the notifier itself (and its provider) is imported only by the builder
of a DAG that uses it. Arguments of the short names are checked against the notifier's own; arguments that would
hold a secret are refused everywhere: secrets belong in Airflow connections.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from supervisor_lib.spec.validate import Finding, did_you_mean, fail

_SMTP_ARGS = ("to", "from_email", "subject", "html_content", "files", "cc", "bcc", "mime_subtype", "mime_charset",
              "custom_headers", "smtp_conn_id", "auth_type", "template")  # fmt: skip


@dataclass(frozen=True)
class KnownNotifier:
    """A notifier a spec may name by a short name."""

    path: str
    #: who ships it (named in the error when it is not installed)
    package: str
    required: tuple[str, ...] = ()
    #: every argument it takes; ``None``: not checked at parse time
    arguments: tuple[str, ...] | None = None


KNOWN: dict[str, KnownNotifier] = {
    "smtp": KnownNotifier("airflow.providers.smtp.notifications.smtp.SmtpNotifier", "apache-airflow-providers-smtp",
                          ("to",), _SMTP_ARGS),
    "webhook": KnownNotifier("supervisor_lib.notify.webhook.WebhookNotifier", "supervisor-lib", (),
                             ("conn_id", "payload", "timeout_s")),
    "slack": KnownNotifier("airflow.providers.slack.notifications.slack.SlackNotifier",
                           "apache-airflow-providers-slack"),
    "slack_webhook": KnownNotifier("airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
                                   "apache-airflow-providers-slack"),
}  # fmt: skip

#: argument names that would carry a secret (Airflow's sensitive field names, as whole words of the name)
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key", "authorization",
                 "access_key", "credentials")  # fmt: skip
_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def class_path(name: str) -> str:
    """The import path of a notifier named in a spec (a short name, or already a path)."""
    known = KNOWN.get(name)
    return known.path if known else name


def check_notifier(name: str) -> str:
    """A short name or the import path of an installed notifier class (checked on disk, not imported)."""
    if name in KNOWN:
        known = KNOWN[name]
        if _module_file(known.path.rpartition(".")[0]) is None:
            fail(f"notifier '{name}' needs {known.package}, which is not installed: install it, or name another")
        return name
    if not _PATH_RE.match(name):
        fail(f"unknown notifier '{name}'{did_you_mean(name, KNOWN)}: use {', '.join(KNOWN)} or the import path "
             "of a BaseNotifier subclass (module.Class)")  # fmt: skip
    module, _, attribute = name.rpartition(".")
    found = _module_file(module)
    if found is None:
        fail(f"notifier '{name}': no module '{module}' is installed (is the provider that ships it installed?)")
    if found.is_file() and not re.search(rf"\b{re.escape(attribute)}\b", _read(found)):
        fail(f"notifier '{name}': module '{module}' has no '{attribute}'")
    return name


def argument_findings(name: str, arguments: dict[str, object]) -> list[Finding]:
    """Problems with a notifier's arguments: secrets in the spec, and for short names unknown or missing ones."""
    findings = [
        Finding(("kwargs", key), f"'{key}' would put a secret in the spec: keep it in an Airflow connection and "
                "name the connection here")
        for key in arguments if _secret(key)
    ]  # fmt: skip
    known = KNOWN.get(name)
    if known is None or known.arguments is None:
        return findings
    takes = f" (it takes {', '.join(known.arguments)})"
    findings += [
        Finding(("kwargs", key), f"unknown argument '{key}' of the {name} notifier"
                f"{did_you_mean(key, known.arguments) or takes}")
        for key in arguments if key not in known.arguments and not _secret(key)
    ]  # fmt: skip
    findings += [Finding(("kwargs",), f"the {name} notifier needs '{key}'") for key in known.required
                 if key not in arguments]  # fmt: skip
    return findings


def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _module_file(module: str) -> Path | None:
    """The file (or package directory) of ``module``, found without importing it; ``None`` when absent.

    Only the top-level package is looked up through the import system (which imports nothing for it); the rest of
    the path is walked on disk. When the top-level package is already imported (Airflow in the DAG processor), its
    own search path is used, which also sees directories added to it at import time.
    """
    top, _, rest = module.partition(".")
    loaded = sys.modules.get(top)
    bases: list[str] | None
    if loaded is not None:
        bases = list(getattr(loaded, "__path__", None) or [])
        if not bases and rest == "":
            return Path(loaded.__file__ or ".")
    else:
        bases = _top_level_locations(top)
        if bases is None:
            return None
    if not rest:
        return Path(bases[0]) if bases else None
    for base in bases:
        path = Path(base, *rest.split("."))
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
        if path.is_dir():  # a namespace package
            return path
    return None


def _top_level_locations(top: str) -> list[str] | None:
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations is not None:
        return list(spec.submodule_search_locations)
    return [spec.origin] if spec.origin else None


@lru_cache(maxsize=64)
def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
