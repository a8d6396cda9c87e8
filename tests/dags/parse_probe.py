"""Parse every DAG file the way the DAG processor does, with the network and secrets made unreachable.

Run as a subprocess (``python tests/dags/parse_probe.py DAGS_DIR``) so the modules a DAG file imports are
measured on a clean interpreter that, like the DAG processor, has pre-imported only Airflow. Prints JSON.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

HEAVY = ("anthropic", "openai", "pandas", "sklearn")


class ParseTimeAccess(RuntimeError):
    """Raised when a DAG file touches the network or a secret while it is parsed."""


def _forbid(what: str):
    def _raise(*args: object, **kwargs: object) -> None:
        raise ParseTimeAccess(f"{what} accessed at DAG-parse time")

    return _raise


def main(dags_dir: str) -> None:
    import airflow.sdk  # noqa: F401 - the DAG processor has this pre-imported
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk import BaseHook, Variable

    socket.socket.connect = _forbid("the network")  # type: ignore[method-assign]
    socket.create_connection = _forbid("the network")  # type: ignore[assignment]
    BaseHook.get_connection = classmethod(_forbid("a connection"))  # type: ignore[method-assign,assignment]
    Variable.get = staticmethod(_forbid("a Variable"))  # type: ignore[method-assign,assignment]

    files = {}
    for path in sorted(Path(dags_dir).glob("*.py")):
        before = set(sys.modules)
        started = time.perf_counter()
        bag = BundleDagBag(dag_folder=str(path), bundle_path=dags_dir, bundle_name="dags-folder")
        files[path.name] = {
            "seconds": time.perf_counter() - started,
            "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
            "heavy_modules": sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(HEAVY)),
            "dags": {
                dag_id: {
                    "tags": sorted(dag.tags or []),
                    "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries} for t in dag.tasks},
                }
                for dag_id, dag in bag.dags.items()
            },
        }
    print(json.dumps(files))


if __name__ == "__main__":
    main(sys.argv[1])
