"""Benchmark instances in SWE-bench's schema, and their SWE-bench-style evaluation.

An instance (one JSON object per line of a ``.jsonl`` file, or a JSON list)::

    instance_id        unique name, e.g. "calculator__add-1"
    repo               the repository: a git URL or local path (SWE-bench: "owner/name", informative here)
    base_commit        the commit to start from (default: the repo's HEAD)
    fixture            instead of repo + base_commit: a folder (relative to the project root) snapshotted as a repo
    problem_statement  the task as the model sees it (the operator's instructions)
    FAIL_TO_PASS       tests that must pass after the change (a list, or a JSON string of one, as in SWE-bench)
    PASS_TO_PASS       tests that must keep passing
    test_patch         hidden tests, applied only for the evaluation (optional)
    task_type          bug_fix (default), feature, refactor, testing
    validate           the command the supervised loop validates with (default "python -m pytest -q")

The evaluation never trusts the loop's own validation: it checks the accepted patch out in a fresh worktree of
the base commit, applies the hidden tests, runs FAIL_TO_PASS + PASS_TO_PASS in the sandbox and reads each test's
outcome. An instance is resolved when every one of them passed.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor_lib.coding.artifacts import read_artifact
from supervisor_lib.coding.jobs import validation_env
from supervisor_lib.coding.settings import Roots, is_url
from supervisor_lib.workspace import RepoSource, Workspace, apply_patch, run_sandboxed

__all__ = ["Evaluation", "Instance", "evaluate", "load_instances"]

DEFAULT_VALIDATE = "python -m pytest -q"
EVAL_TIMEOUT_S = 300.0


def _tests(value: Any) -> tuple[str, ...]:
    return tuple(json.loads(value) if isinstance(value, str) else value or ())


@dataclass(frozen=True)
class Instance:
    """One benchmark task (see the module docstring)."""

    instance_id: str
    repo: str
    problem_statement: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    base_commit: str | None = None
    fixture: str | None = None
    test_patch: str = ""
    task_type: str = "bug_fix"
    validate: str = DEFAULT_VALIDATE

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        return cls(
            instance_id=data["instance_id"],
            repo=data.get("repo") or "",
            problem_statement=data["problem_statement"],
            fail_to_pass=_tests(data.get("FAIL_TO_PASS")),
            pass_to_pass=_tests(data.get("PASS_TO_PASS")),
            base_commit=data.get("base_commit"),
            fixture=data.get("fixture"),
            test_patch=data.get("test_patch") or "",
            task_type=data.get("task_type") or "bug_fix",
            validate=data.get("validate") or DEFAULT_VALIDATE,
        )

    def source(self, project_root: Path) -> str:
        """Where the code is: the fixture folder, else ``repo`` (a URL, or a path relative to the project root)."""
        if self.fixture:
            return str((project_root / self.fixture).resolve())
        return self.repo if is_url(self.repo) else str((project_root / self.repo).resolve())

    @property
    def tests(self) -> tuple[str, ...]:
        return (*self.fail_to_pass, *self.pass_to_pass)


def load_instances(path: Path, only: set[str] | None = None) -> list[Instance]:
    """The instances of a ``.jsonl`` file (or a JSON list), optionally only the named ones."""
    text = path.read_text(encoding="utf-8")
    rows = (
        json.loads(text)
        if text.lstrip().startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    instances = [Instance.from_dict(row) for row in rows]
    return [i for i in instances if only is None or i.instance_id in only]


@dataclass(frozen=True)
class Evaluation:
    """Which of the instance's tests passed with the accepted change."""

    passed: frozenset[str]
    tests: tuple[str, ...]
    output: str

    @property
    def resolved(self) -> bool:
        return all(test in self.passed for test in self.tests)


def evaluate(instance: Instance, result: dict[str, Any], roots: Roots, project_root: Path) -> Evaluation:
    """Run the instance's tests against the change of ``result`` (its ``patch``; none for ``no_changes``)."""
    cache = RepoSource.resolve(instance.source(project_root), roots.repo_cache)
    name = f"eval--{re.sub(r'[^A-Za-z0-9_.-]+', '_', instance.instance_id)}"
    with Workspace.create(cache, result["base_commit"], roots.workspaces, name, keep="never") as workspace:
        if result.get("patch"):
            apply_patch(workspace.path, read_artifact(result["patch"]))
        if instance.test_patch:
            apply_patch(workspace.path, instance.test_patch)
        command = "python -m pytest -q -rA -p no:cacheprovider " + " ".join(shlex.quote(t) for t in instance.tests)
        run = run_sandboxed(command, workspace.path, timeout_s=EVAL_TIMEOUT_S, env=validation_env())
    passed = frozenset(re.findall(r"^PASSED (\S+)", run.output, flags=re.M))
    return Evaluation(passed, instance.tests, run.output)
