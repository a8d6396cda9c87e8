"""Artifacts of a coding task: one folder per task instance, on local disk or object storage.

Layout, under the artifacts root (see :class:`~supervisor_lib.coding.settings.Roots`)::

    <dag_id>/<run_id>/<task_id>[/<map_index>]/
        result.json          the task's result (its XCom value)
        patch.diff           write tasks: the final change against the base commit
        iterations.json      write tasks: one record per iteration
        validation-<n>.log   write tasks: the sandbox output of iteration n (bounded)
        conversation.json    the messages sent to the model and its answers
        context.json         which files the prompt included, and what was left out and why
        review.json          write tasks with a reviewer: the last review
        report.json          read-only tasks: the validated report
        approval.json        written by a human_approval task that follows: the decision

A root with a scheme (``s3://bucket/prefix``, ``gs://...``, ``file:///...``) is opened through Airflow's
``ObjectStoragePath`` (the scheme's filesystem package and an Airflow connection may be needed); a plain path
is used directly. Run ids hold ``:`` and ``+``, so every segment is made safe for any store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor_lib.coding.settings import is_url, safe_segment
from supervisor_lib.execution.content import redacted

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = ["ArtifactFolder", "read_artifact"]


def _open(location: str) -> Path | ObjectStoragePath:
    if is_url(location):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(location)
    return Path(location)


def read_artifact(location: str) -> str:
    """The text of an artifact, by the path or URL a task result gives (e.g. its ``patch``)."""
    return _open(location).read_text()


class ArtifactFolder:
    """An artifact folder: ``location`` is a local path or an object-storage URL."""

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        self.path = _open(self.location)

    @classmethod
    def for_task(cls, root: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> ArtifactFolder:
        """The folder of one task instance under the artifacts ``root``."""
        parts = [dag_id, run_id, task_id] + ([str(map_index)] if map_index >= 0 else [])
        return cls("/".join([root.rstrip("/"), *(safe_segment(part) for part in parts)]))

    def clear(self) -> None:
        """Remove what an earlier try of the task left (a retry writes a complete, consistent set)."""
        if isinstance(self.path, Path):
            shutil.rmtree(self.path, ignore_errors=True)
        elif self.path.exists():
            fs = getattr(self.path, "fs", None)
            if fs is not None:
                fs.rm(getattr(self.path, "path", self.location), recursive=True)

    def write_text(self, name: str, text: str) -> str:
        """Write ``name``, every known secret masked (Airflow's masker and provider keys), and return its location
        (a path or URL, as a string)."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / name
        target.write_text(redacted(text))
        return f"{self.location}/{name}"

    def write_json(self, name: str, data: Any) -> str:
        """Write ``data`` as indented JSON (non-JSON values as their ``str``); return its location."""
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def __repr__(self) -> str:
        return f"ArtifactFolder({self.location!r})"
