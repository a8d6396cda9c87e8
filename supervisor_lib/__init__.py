"""Supervisor: an Airflow-native supervisor for AI coding agents.

The public API. Attributes are imported lazily (PEP 562) so that ``import supervisor_lib`` stays cheap:
a DAG file, the ``supervisor`` CLI and the spec validator pay only for what they use, and nothing here
imports a provider SDK, pandas or scikit-learn at DAG-parse time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SpecError": "supervisor_lib.spec.errors",
    "SpecProblem": "supervisor_lib.spec.errors",
    "WorkflowSpec": "supervisor_lib.spec",
    "TaskSpec": "supervisor_lib.spec",
    "load_spec": "supervisor_lib.spec",
    "load_specs": "supervisor_lib.spec",
    "build_dag": "supervisor_lib.build",
    "load_dags": "supervisor_lib.build",
    "raise_spec_errors": "supervisor_lib.build",
    "AnthropicHook": "supervisor_lib.providers.anthropic",
    "OpenAIHook": "supervisor_lib.providers.openai",
    "AnthropicOperator": "supervisor_lib.operators.llm",
    "AnthropicBatchOperator": "supervisor_lib.operators.batch",
    "OpenAIBatchOperator": "supervisor_lib.operators.batch",
    "OpenAIOperator": "supervisor_lib.operators.llm",
    "CodingTaskOperator": "supervisor_lib.operators.coding",
    "RoutedOperator": "supervisor_lib.operators.routed",
    "ReportOperator": "supervisor_lib.operators.coding",
}

__all__ = [
    "AnthropicBatchOperator",
    "AnthropicHook",
    "AnthropicOperator",
    "CodingTaskOperator",
    "OpenAIBatchOperator",
    "OpenAIHook",
    "OpenAIOperator",
    "ReportOperator",
    "RoutedOperator",
    "SpecError",
    "SpecProblem",
    "TaskSpec",
    "WorkflowSpec",
    "build_dag",
    "load_dags",
    "load_spec",
    "load_specs",
    "raise_spec_errors",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from supervisor_lib.build import build_dag, load_dags, raise_spec_errors
    from supervisor_lib.operators.batch import AnthropicBatchOperator, OpenAIBatchOperator
    from supervisor_lib.operators.coding import CodingTaskOperator, ReportOperator
    from supervisor_lib.operators.llm import AnthropicOperator, OpenAIOperator
    from supervisor_lib.operators.routed import RoutedOperator
    from supervisor_lib.providers.anthropic import AnthropicHook
    from supervisor_lib.providers.openai import OpenAIHook
    from supervisor_lib.spec import TaskSpec, WorkflowSpec, load_spec, load_specs
    from supervisor_lib.spec.errors import SpecError, SpecProblem


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supervisor_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
