"""Spec folders → DAGs: ``load_dags(globals(), specs_dir=...)`` and ``raise_spec_errors(specs_dir=...)``.

One bad spec never hides the others. Airflow marks every DAG of a file with an import error as stale, so the two
jobs live in two DAG files: ``load_dags`` builds every valid spec (and only logs the invalid ones), while
``raise_spec_errors``, called from a second file that defines no DAG, raises one ``SpecError`` listing every invalid
spec with its ``file:line`` message, which Airflow shows in its import-errors view (UI and
``GET /api/v2/importErrors``). See ``dags/supervisor_specs.py`` and ``dags/supervisor_spec_errors.py``.

When a task starts, Airflow re-parses the DAG file; :func:`airflow.sdk.get_parsing_context` names the DAG it
needs, so only that DAG is built then.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context

from supervisor_lib.build.dag import build_dag
from supervisor_lib.build.tasks import factory_for, resolve_provider
from supervisor_lib.extensions import PluginError
from supervisor_lib.spec import SpecError, SpecProblem, WorkflowSpec, load_specs
from supervisor_lib.spec.errors import format_path
from supervisor_lib.spec.loader import compose, line_of
from supervisor_lib.spec.model_check import model_warnings

log = logging.getLogger(__name__)


def load_dags(
    namespace: MutableMapping[str, Any], specs_dir: str | os.PathLike[str], *, base_dir: str | None = None
) -> dict[str, DAG]:
    """Build a DAG for every spec file in ``specs_dir`` and put each into ``namespace`` (a DAG file's globals).

    :param specs_dir: the folder of ``*.yaml`` / ``*.yml`` specs; relative paths are resolved against
        ``base_dir``, by default the folder above the calling DAG file's folder (the project root).
    :return: the DAGs built, by dag_id.
    """
    folder = _resolve(specs_dir, namespace, base_dir)
    specs, errors = load_specs(folder)
    wanted = get_parsing_context().dag_id
    built: dict[str, DAG] = {}
    for spec in specs:
        if wanted is not None and spec.dag_id != wanted:
            continue
        for message in model_warnings(spec) if wanted is None else ():
            warnings.warn(message, UserWarning, stacklevel=2)  # Airflow shows warnings captured while parsing
        try:
            built[spec.dag_id] = namespace[_name(spec)] = build_dag(spec)
        except PluginError as exc:  # reported, at its task, by raise_spec_errors(): the other specs still build
            log.warning("not built: %s: %s", spec.source_path or spec.dag_id, exc)
    if wanted is None:
        for error in errors.values():  # reported by raise_spec_errors() in its own DAG file
            log.warning("not built: %s", error)
    return built


def raise_spec_errors(
    namespace: MutableMapping[str, Any], specs_dir: str | os.PathLike[str], *, base_dir: str | None = None
) -> None:
    """Raise one ``SpecError`` listing every invalid spec in ``specs_dir`` (nothing when all are valid).

    Call it from a DAG file of its own that defines no DAG: Airflow then shows the errors in its import-errors
    view without marking any spec DAG stale.
    """
    specs, errors = load_specs(_resolve(specs_dir, namespace, base_dir))
    for spec in specs:
        if (broken := plugin_errors(spec)) is not None:
            errors[spec.source_path or spec.dag_id] = broken
    if errors:
        raise SpecError([problem for error in errors.values() for problem in error.problems])


def plugin_errors(spec: WorkflowSpec) -> SpecError | None:
    """The plugin parts a valid spec needs to build (a task type's builder, a provider's operator) that cannot be
    imported, each at its task's ``type`` or ``provider`` line; ``None`` when all can (or it uses no plugin)."""
    from supervisor_lib.spec.plugins import uses_plugins

    if not uses_plugins(spec):
        return None
    problems = []
    for index, task in enumerate(spec.effective_tasks):
        for field, check in (("type", factory_for), ("provider", _operator_of)):
            try:
                check(task)
            except PluginError as exc:
                problems.append(_problem(spec, ("tasks", index, field), str(exc)))
    return SpecError(problems) if problems else None


def _operator_of(task: Any) -> None:
    if task.type.calls_model and str(task.provider or "auto") != "auto":
        from supervisor_lib.operators.llm import operator_for

        operator_for(resolve_provider(task))


def _problem(spec: WorkflowSpec, loc: tuple[str | int, ...], message: str) -> SpecProblem:
    line = None
    if spec.source_path:
        line = line_of(compose(Path(spec.source_path).read_text(encoding="utf-8")), loc)
    return SpecProblem(spec.source_path, line, format_path(loc), message, spec.dag_id)


def _name(spec: WorkflowSpec) -> str:
    return "dag__" + "".join(c if c.isalnum() else "_" for c in spec.dag_id)


def _resolve(specs_dir: str | os.PathLike[str], namespace: MutableMapping[str, Any], base_dir: str | None) -> Path:
    path = Path(specs_dir)
    if path.is_absolute():
        return path
    if base_dir is not None:
        return Path(base_dir) / path
    caller = namespace.get("__file__")
    root = Path(caller).resolve().parent.parent if caller else Path.cwd()
    return root / path
