"""The layering rules of ``supervisor_lib``, as contracts this test enforces (``docs/architecture.md`` draws them).

Layers, lowest first; a module may import its own layer and the layers below, never one above:

0. pure, no Airflow: ``spec`` (YAML → typed specs), ``routing`` (the routing policy), ``model_facts``, ``templating``,
   ``extensions`` (plugin discovery)
1. Airflow's and the world's edges: ``exceptions``, ``compat``, ``providers`` (hooks, SDK mapping, call policy),
   ``store`` (the operational database), ``workspace`` (worktrees, edits, sandbox), ``notify`` (notifiers)
2. ``execution``: how a model call runs (runner, routed calls, failover, budget holds); ``analytics``: the questions
   the views ask of the store
3. ``coding``: supervised coding, on top of execution
4. ``operators``, ``triggers``: Airflow tasks
5. ``build`` (spec → DAG), ``local`` (``make run``), ``testing``, ``cli``, ``plugin`` (the Airflow UI plugin), the
   package's public API

Imports under ``if TYPE_CHECKING:`` are free (they never run). Module-level imports form no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "supervisor_lib"
LAYERS: list[set[str]] = [
    {"spec", "routing", "model_facts", "templating", "data", "extensions"},
    {"exceptions", "compat", "providers", "store", "workspace", "notify"},
    {"execution", "analytics"},
    {"coding"},
    {"operators", "triggers"},
    {"build", "local", "testing", "cli", "plugin", "provider_info", "<root>"},
]
PURE = LAYERS[0]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _layer(module: str) -> int:
    part = _part(module)
    found = [index for index, names in enumerate(LAYERS) if part in names]
    assert found, f"{module}: its package {part!r} is in no layer of tests/unit/test_layers.py"
    return found[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, top_level: bool) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` of every import that runs (function bodies included unless ``top_level``)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            known = [name for name in submodules if name in _modules()]  # ``from package import module``
            yield from ((name, node.lineno) for name in known)
            if len(known) < len(submodules):
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        if top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        pending.extend(ast.iter_child_nodes(node))


@cache
def _modules() -> dict[str, Path]:
    return {_module(path): path for path in PACKAGE.rglob("*.py")}


def _graph(*, top_level: bool) -> dict[str, list[tuple[str, int]]]:
    modules = _modules()
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = [(m, line) for m, line in _imports(tree, top_level=top_level) if m in modules and m != name]
    return graph


def test_no_module_imports_a_layer_above_its_own() -> None:
    breaches = [
        f"{path.relative_to(ROOT)}:{line}: {module} (layer {_layer(module)}) imports {imported} "
        f"(layer {_layer(imported)})"
        for module, imports in _graph(top_level=False).items()
        for imported, line in imports
        if _layer(imported) > _layer(module) and (path := _modules()[module])
    ]
    assert breaches == [], "\n".join(breaches)


def test_the_pure_layer_never_imports_airflow_an_sdk_or_a_database_driver() -> None:
    forbidden = ("airflow", "anthropic", "openai", "sqlalchemy", "psycopg2", "pandas", "sklearn")
    breaches = []
    for name, path in _modules().items():
        if _part(name) not in PURE:
            continue
        for imported, line in _imports(ast.parse(path.read_text()), top_level=False):
            if imported.split(".")[0] in forbidden:
                breaches.append(f"{path.relative_to(ROOT)}:{line}: {imported}")
    assert breaches == [], "\n".join(breaches)


def test_module_level_imports_form_no_cycle() -> None:
    graph = {name: sorted({m for m, _ in imports}) for name, imports in _graph(top_level=True).items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, []):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("supervisor_lib.exceptions", ("supervisor_lib.spec.models", "supervisor_lib.spec.loader")),
        ("supervisor_lib.spec", ("airflow", "supervisor_lib.providers", "supervisor_lib.execution")),
        ("supervisor_lib.model_facts", ("supervisor_lib.providers", "airflow")),
    ],
)
def test_importing_a_module_loads_only_what_it_needs(module: str, must_not_load: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(must_not_load)] == []
