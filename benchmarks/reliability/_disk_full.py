"""The child of ``store_faults``' full-disk case: runs in its own mount namespace with the SQLite store on a tiny
tmpfs (``python -m benchmarks.reliability._disk_full FOLDER CALLS``).

It fills the tmpfs, sends CALLS plain calls through the provider connections it inherits (the fake provider of the
parent), frees the space, flushes the spool (which lives on the real disk) and prints what happened as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(folder: Path, calls: int) -> dict[str, object]:
    """Fill ``folder``'s file system, run ``calls`` calls, free it, flush; return the counts."""
    from benchmarks.reliability.store_faults import run_calls, spooled
    from supervisor_lib.store import Store
    from supervisor_lib.store.recorder import get_recorder

    conn_id = "reliability_full_disk"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({"conn_type": "sqlite", "host": str(folder / "s.db")})
    store = Store.from_url(f"sqlite:///{folder / 's.db'}")
    store.attempts()  # migrated while there is room
    filler = _fill(folder / "filler")
    answered, slowest = run_calls(conn_id, "disk_full", calls)
    spool = Path(os.environ["SUPERVISOR_SPOOL_DIR"])
    waiting = spooled(spool)
    filler.unlink()
    deadline = time.monotonic() + 30
    while spooled(spool) and time.monotonic() < deadline:
        try:
            get_recorder(conn_id).flush_spool()
        except Exception:  # still down for a moment: the store retries after its back-off
            time.sleep(0.5)
    rows = len(Store.from_url(f"sqlite:///{folder / 's.db'}").attempts(dag_id="disk_full"))
    return {"answered": answered, "slowest_s": slowest, "spooled": waiting, "rows": rows}


def _fill(path: Path) -> Path:
    """Write ``path`` until the file system is full."""
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return path


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
