"""The task dependency graph: duplicate ids, unknown upstreams, cycles named in full, topological order.

Pure functions over ``Node``\\ s, so they run both on validated tasks and, when a file has field errors, on the
raw YAML data (a file with a type error elsewhere still gets its cycle reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from supervisor_lib.spec.validate import Finding, did_you_mean


class Node(NamedTuple):
    """A task as the graph sees it: its position in ``tasks``, its id and its upstream ids."""

    position: int
    id: str
    depends_on: tuple[str, ...]


def nodes_from_raw(tasks: Any) -> list[Node]:
    """Best-effort nodes from unvalidated YAML data; malformed entries are skipped (pydantic reports them)."""
    if not isinstance(tasks, list):
        return []
    nodes = []
    for index, task in enumerate(tasks):
        if isinstance(task, dict) and isinstance(task.get("id"), str):
            deps = task.get("depends_on") or ()
            deps = (deps,) if isinstance(deps, str) else deps
            if isinstance(deps, list | tuple):
                nodes.append(Node(index, task["id"], tuple(d for d in deps if isinstance(d, str))))
    return nodes


def graph_findings(nodes: Sequence[Node]) -> list[Finding]:
    """Duplicate ids, unknown upstreams (with a did-you-mean) and cycles; locations are relative to the workflow."""
    return [*duplicate_ids(nodes), *unknown_upstreams(nodes), *cycles(nodes)]


def duplicate_ids(nodes: Sequence[Node]) -> list[Finding]:
    """One finding per task whose id an earlier task already uses."""
    first: dict[str, int] = {}
    findings = []
    for node in nodes:
        if node.id in first:
            findings.append(
                Finding(("tasks", node.position, "id"), f"duplicate task id '{node.id}' (also tasks[{first[node.id]}])")
            )
        else:
            first[node.id] = node.position
    return findings


def unknown_upstreams(nodes: Sequence[Node]) -> list[Finding]:
    """One finding per ``depends_on`` entry that names no task."""
    ids = [node.id for node in nodes]
    known = set(ids)
    return [
        Finding(
            ("tasks", node.position, "depends_on", pos), f"unknown task '{dep}' in depends_on{did_you_mean(dep, ids)}"
        )
        for node in nodes
        for pos, dep in enumerate(node.depends_on)
        if dep not in known
    ]


def cycles(nodes: Sequence[Node]) -> list[Finding]:
    """One finding per dependency cycle, named in run order from its first-declared task: ``a -> b -> a``.

    Reported at the ``depends_on`` of that first task. Deterministic: tasks and upstreams are walked in file order.
    """
    upstream = _upstream_map(nodes)
    position = {node.id: node.position for node in reversed(nodes)}
    seen: set[frozenset[str]] = set()
    findings = []
    for path in _cycle_paths(upstream):
        members = frozenset(path)
        if members in seen:
            continue
        seen.add(members)
        start = min(path, key=lambda task_id: position[task_id])
        at = path.index(start)
        # ``path`` follows depends_on (downstream to upstream); reverse it to read in run order.
        ring = list(reversed(path[at:] + path[:at] + [start]))
        findings.append(Finding(("tasks", position[start], "depends_on"), "dependency cycle: " + " -> ".join(ring)))
    return findings


def _upstream_map(nodes: Iterable[Node]) -> dict[str, tuple[str, ...]]:
    upstream: dict[str, tuple[str, ...]] = {}
    for node in nodes:
        upstream.setdefault(node.id, node.depends_on)
    return upstream


def _cycle_paths(upstream: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Every cycle closed by a back edge of a depth-first walk, as the list of ids along depends_on."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(task_id: str) -> None:
        state[task_id] = 1
        stack.append(task_id)
        for dep in upstream.get(task_id, ()):
            if dep not in upstream:
                continue
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep) :])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[task_id] = 2

    for task_id in upstream:
        if task_id not in state:
            visit(task_id)
    return found


def topological_order(nodes: Sequence[Node]) -> list[str]:
    """Task ids so that every task comes after its upstreams; ties keep file order. Assumes an acyclic graph."""
    upstream = _upstream_map(nodes)
    done: set[str] = set()
    order: list[str] = []
    pending = list(upstream)
    while pending:
        ready = [t for t in pending if all(dep in done or dep not in upstream for dep in upstream[t])]
        if not ready:  # a cycle: keep what is left in file order rather than loop forever
            ready = pending
        first = ready[0]
        order.append(first)
        done.add(first)
        pending.remove(first)
    return order


#: ``xcom_pull(task_ids='x')``, ``xcom_pull('x')`` and ``xcom_pull(task_ids="x")`` in a template
_XCOM_READ = re.compile(r"""xcom_pull\(\s*(?:task_ids\s*=\s*)?['"]([^'"]+)['"]""")


def xcom_reads(text: str) -> list[str]:
    """The task ids whose results a template reads with ``xcom_pull``, in order."""
    return _XCOM_READ.findall(text)


def read_findings(nodes: Sequence[Node], reads: dict[int, list[tuple[str, str]]]) -> list[Finding]:
    """A template that reads a task's result (``xcom_pull``) must run after that task, or it reads nothing.

    :param reads: task position → ``(field, task id read)`` pairs.
    """
    upstream = _upstream_map(nodes)
    ids = [node.id for node in nodes]
    findings = []
    for node in nodes:
        before = _ancestors(node.id, upstream)
        for field, read in reads.get(node.position, ()):
            if read not in upstream:
                message = f"reads the result of '{read}', which is no task of this spec{did_you_mean(read, ids)}"
            elif read not in before:
                message = (f"reads the result of '{read}' but does not run after it: add '{read}' to depends_on "
                           "(it would read nothing)")  # fmt: skip
            else:
                continue
            findings.append(Finding(("tasks", node.position, field), message))
    return findings


def _ancestors(task_id: str, upstream: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    pending = list(upstream.get(task_id, ()))
    while pending:
        dep = pending.pop()
        if dep not in seen:
            seen.add(dep)
            pending.extend(upstream.get(dep, ()))
    return seen
