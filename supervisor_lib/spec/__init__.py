"""Task specs: YAML → validated, typed models. Imports no Airflow and no AI SDK.

::

    spec = load_spec("include/specs/nightly_health.yaml")   # WorkflowSpec, or SpecError listing every problem
    specs, errors = load_specs("include/specs")              # one bad file never hides the others
    for task in spec.effective_tasks: ...                    # defaults merged in
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Exported lazily (PEP 562): ``supervisor_lib.exceptions`` imports ``spec.errors`` for the error tree, and that
# must not load pydantic and the spec models.
_EXPORTS: dict[str, str] = {
    "SpecError": "supervisor_lib.spec.errors",
    "SpecProblem": "supervisor_lib.spec.errors",
    "clear_cache": "supervisor_lib.spec.loader",
    "load_spec": "supervisor_lib.spec.loader",
    "load_specs": "supervisor_lib.spec.loader",
    "json_schema": "supervisor_lib.spec.schema",
    "when_truthy": "supervisor_lib.templating",
    **dict.fromkeys(
        ("READ_ONLY_TYPES", "WRITE_TYPES", "ArmSpec", "BudgetSpec", "ExperimentSpec", "KeepWorkspace", "Provider",
         "ReviewerSpec", "TaskDefaults",
         "TaskSpec", "TaskType", "TriggerRule", "ValidateSpec", "WorkflowSpec"),
        "supervisor_lib.spec.models",
    ),
}  # fmt: skip

__all__ = [
    "READ_ONLY_TYPES",
    "WRITE_TYPES",
    "ArmSpec",
    "BudgetSpec",
    "ExperimentSpec",
    "KeepWorkspace",
    "Provider",
    "ReviewerSpec",
    "SpecError",
    "SpecProblem",
    "TaskDefaults",
    "TaskSpec",
    "TaskType",
    "TriggerRule",
    "ValidateSpec",
    "WorkflowSpec",
    "clear_cache",
    "json_schema",
    "load_spec",
    "load_specs",
    "when_truthy",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from supervisor_lib.spec.errors import SpecError, SpecProblem
    from supervisor_lib.spec.loader import clear_cache, load_spec, load_specs
    from supervisor_lib.spec.models import (
        READ_ONLY_TYPES,
        WRITE_TYPES,
        ArmSpec,
        BudgetSpec,
        ExperimentSpec,
        KeepWorkspace,
        Provider,
        ReviewerSpec,
        TaskDefaults,
        TaskSpec,
        TaskType,
        TriggerRule,
        ValidateSpec,
        WorkflowSpec,
    )
    from supervisor_lib.spec.schema import json_schema
    from supervisor_lib.templating import when_truthy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor_lib.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
