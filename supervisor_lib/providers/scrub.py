"""Keep provider keys out of everything Supervisor writes: exception messages, stored rows, routing decisions.

Airflow masks registered secrets in logs; nothing masks the text Supervisor builds itself. A provider or gateway
that echoes the request's key in its error body would put it into an exception message, then into the store. So
every key a hook reads is registered here (and with Airflow's masker), and text that may carry a provider's words
goes through :func:`scrub` first. A key is matched in every form it may be echoed in: as is, URL-encoded,
JSON-escaped and base64-encoded (basic auth, some gateways).
"""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import quote

REPLACEMENT = "***"
#: shorter strings are not treated as keys (they would mask ordinary words)
MIN_LENGTH = 8
_forms: set[str] = set()
_lock = threading.Lock()


def register(secret: str | None) -> None:
    """Scrub ``secret`` (in all its forms) from every text :func:`scrub` sees in this process."""
    if not secret or len(secret) < MIN_LENGTH:
        return
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()}
    with _lock:
        _forms.update(form for form in forms if len(form) >= MIN_LENGTH)


def scrub(text: str) -> str:
    """``text`` with every registered key replaced by ``***``."""
    if not _forms or not text:
        return text
    for form in sorted(_forms, key=len, reverse=True):  # the longest first: a key may contain another
        if form in text:
            text = text.replace(form, REPLACEMENT)
    return text
