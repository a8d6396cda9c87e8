"""Task specs: YAML → validated, typed models. Imports no Airflow and no AI SDK.

::

    spec = load_spec("include/specs/nightly_health.yaml")   # WorkflowSpec, or SpecError listing every problem
    specs, errors = load_specs("include/specs")              # one bad file never hides the others
    for task in spec.effective_tasks: ...                    # defaults merged in
"""

from __future__ import annotations

from supervisor_lib.spec.errors import SpecError, SpecProblem
from supervisor_lib.spec.loader import clear_cache, load_spec, load_specs
from supervisor_lib.spec.models import (
    READ_ONLY_TYPES,
    WRITE_TYPES,
    BudgetSpec,
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

__all__ = [
    "READ_ONLY_TYPES",
    "WRITE_TYPES",
    "BudgetSpec",
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
