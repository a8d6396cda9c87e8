"""One task instance's transcript for the task-instance tab: every recorded attempt (what was asked, what came
back, tokens, cost, latency, errors) and, for a coding task, its artifacts (the context chosen, each iteration,
the validation output, the review, the approval, the final patch). Everything shown passes the masker again."""

from __future__ import annotations

import json
from typing import Any

from supervisor_lib.analytics import queries
from supervisor_lib.coding.artifacts import ArtifactFolder
from supervisor_lib.coding.settings import Roots
from supervisor_lib.execution.content import masked
from supervisor_lib.store.db import Store

#: the artifacts the tab shows, in the order of the work: name -> how it is read
ARTIFACTS: tuple[tuple[str, str], ...] = (
    ("context.json", "json"), ("iterations.json", "json"), ("review.json", "json"), ("approval.json", "json"),
    ("report.json", "json"), ("result.json", "json"), ("patch.diff", "text"),
)  # fmt: skip
#: the most of one artifact the tab shows
MAX_ARTIFACT = 400_000
#: validation logs beyond this many iterations are not shown
MAX_LOGS = 50


def task_transcript(store: Store, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    """The calls of one task instance and its artifacts (``{}`` when it wrote none)."""
    return {
        "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index,
        "calls": queries.transcript(store, dag_id, run_id, task_id, map_index),
        "artifacts": artifacts(dag_id, run_id, task_id, map_index),
    }  # fmt: skip


def artifacts(dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    """The task instance's artifact files that exist, parsed (JSON) or as text, masked and bounded."""
    folder = ArtifactFolder.for_task(Roots.from_env().artifacts, dag_id, run_id, task_id, map_index)
    found: dict[str, Any] = {}
    names = [*ARTIFACTS, *((f"validation-{n}.log", "text") for n in range(1, MAX_LOGS + 1))]
    for name, kind in names:
        text = _read(folder, name)
        if text is None:
            if name.startswith("validation-"):
                break  # logs are numbered from 1 without gaps
            continue
        found[name] = masked(_parsed(text) if kind == "json" else text)
    return found


def _read(folder: ArtifactFolder, name: str) -> str | None:
    try:
        target = folder.path / name
        if not target.exists():
            return None
        with target.open("rb") as handle:
            data = handle.read(MAX_ARTIFACT + 1)
    except OSError:
        return None
    text = data[:MAX_ARTIFACT].decode("utf-8", errors="replace")
    return text + "\n[... cut]" if len(data) > MAX_ARTIFACT else text


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
