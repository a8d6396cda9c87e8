"""What the optional parts of the suite can use on this machine, for the pytest header and the skip reasons."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = Path(os.environ.get("SUPERVISOR_CHROMIUM", "/usr/bin/chromium"))
INSTALL_CHROMIUM = "install Debian's 'chromium' package (apt-get install -y chromium) to run it"
INSTALL_BWRAP = "install bubblewrap (apt-get install -y bubblewrap) to run it"
NO_USERNS = "unshare cannot create user namespaces here: allow unprivileged user namespaces (or run as root)"


def describe_optional_parts() -> list[str]:
    """One header line per optional part: what runs here and what skips."""
    from supervisor_lib.workspace.sandbox import _pids_cgroup_base, available_isolation

    bwrap = shutil.which("bwrap")
    forks = "pids cgroup" if _pids_cgroup_base() else ("RLIMIT_NPROC" if os.geteuid() else "NOT bounded (root)")
    return [
        f"sandbox: {available_isolation()} (bubblewrap {'at ' + bwrap if bwrap else 'missing'}; forks: {forks})",
        f"browser: {'chromium at ' + str(CHROMIUM) if CHROMIUM.exists() else 'missing: ' + INSTALL_CHROMIUM}",
        f"UI rebuild: {'npm at ' + str(shutil.which('npm')) if shutil.which('npm') else 'skipped (no Node/npm)'}",
        f"celery: {_celery()}",
    ]


def _celery() -> str:
    """Whether the CeleryExecutor test can run: it needs Redis (and PostgreSQL, in the metadata DB line)."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return "skipped (no Redis on 127.0.0.1:6379)"
    return "Redis at 127.0.0.1:6379"
