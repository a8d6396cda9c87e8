"""Run benchmark instances through the supervised coding operator and report what it achieved.

Each instance runs through :class:`~supervisor_lib.operators.coding.CodingTaskOperator` itself (its ``execute``,
with a minimal task-instance stand-in, so no Airflow database is needed): context, isolated worktree,
SEARCH/REPLACE edits, sandboxed validation, iterate until green. Model calls go through the real SDKs: to the
fake provider with scripted answers offline (the default, for CI), to the real APIs with ``--live``. Then the
accepted change is evaluated the SWE-bench way (see :mod:`benchmarks.coding.instances`).

Per instance: status, resolved, pass@1 (resolved by the first iteration's change), iterations, tokens, cost and
wall time; then the totals. With arms (:func:`run_experiment`), every instance runs in every arm as a model
experiment: the operator records each arm's outcome in the store, and the report is the one
``supervisor experiment report`` prints (``docs/experiments.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.coding.instances import Instance, evaluate

__all__ = ["Arm", "Outcome", "Settings", "as_json", "environment", "report", "run_all", "run_experiment", "totals"]

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS_CONN_ID = "supervisor_benchmark"
DAG_ID = "benchmark_coding"
_PROVIDERS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}


@dataclass(frozen=True)
class Settings:
    """How to run: the author's provider and model, the optional reviewer, the iteration budget."""

    provider: str = "anthropic"
    model: str = "claude-sonnet-4-6"
    reviewer_provider: str | None = None
    reviewer_model: str | None = None
    max_iterations: int = 3
    budget_usd: float | None = None


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment over the benchmark: a name and the author's provider and model."""

    name: str
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> Arm:
        """``NAME=PROVIDER:MODEL``, e.g. ``haiku=anthropic:claude-haiku-4-5``."""
        name, _, rest = text.partition("=")
        provider, _, model = rest.partition(":")
        if not (name and provider in _PROVIDERS and model):
            raise ValueError(f"an arm is NAME=PROVIDER:MODEL with PROVIDER one of {sorted(_PROVIDERS)}, got {text!r}")
        return cls(name, provider, model)

    def as_arm(self, index: int) -> dict[str, Any]:
        """The arm as the spec builder maps it onto the operator."""
        return {"name": self.name, "index": index, "settings": {"provider": self.provider, "model": self.model}}


@dataclass
class Outcome:
    """One instance's numbers."""

    instance_id: str
    task_type: str
    status: str
    resolved: bool
    pass_at_1: bool
    iterations: int
    tokens: int
    cost_usd: float
    wall_s: float
    tests_passed: int = 0
    tests_total: int = 0
    error: str | None = None


@dataclass
class _TaskInstance:
    """The little of Airflow's task instance that the operator uses outside Airflow."""

    task_id: str
    run_id: str
    dag_id: str = DAG_ID
    map_index: int = -1
    try_number: int = 1
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@contextlib.contextmanager
def environment(work_dir: Path, live: bool, script: Path) -> Iterator[None]:
    """Connections (fake provider or real keys), the analytics store and roots, restored afterwards."""
    values = {
        f"AIRFLOW_CONN_{ANALYTICS_CONN_ID.upper()}": json.dumps(
            {"conn_type": "sqlite", "host": str(work_dir / "analytics.db")}
        ),
        "SUPERVISOR_WORKSPACE_ROOT": str(work_dir / "workspaces"),
        "SUPERVISOR_REPO_CACHE": str(work_dir / "repo_cache"),
        "SUPERVISOR_ARTIFACTS_ROOT": str(work_dir / "artifacts"),
    }
    with contextlib.ExitStack() as stack:
        if live:
            values.update(_live_connections())
        else:
            from supervisor_lib.testing import FakeProviderServer

            server = stack.enter_context(FakeProviderServer(strict=True))
            server.load_script(script)
            hosts = {"anthropic": server.anthropic_base_url, "openai": server.openai_base_url}
            values.update({_conn_var(p): _connection(p, host, "offline-benchmark") for p, host in hosts.items()})
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def _conn_var(provider: str) -> str:
    return f"AIRFLOW_CONN_{provider.upper()}_DEFAULT"


def _connection(provider: str, host: str, key: str) -> str:
    return json.dumps({"conn_type": provider, "host": host, "password": key, "extra": {"timeout": 300}})


def _live_connections() -> dict[str, str]:
    found = {}
    for provider, url in _PROVIDERS.items():
        key = os.environ.get(f"{provider.upper()}_API_KEY")
        if key and not os.environ.get(_conn_var(provider)):
            found[_conn_var(provider)] = _connection(
                provider, os.environ.get(f"{provider.upper()}_BASE_URL") or url, key
            )
    if not found and not any(os.environ.get(_conn_var(p)) for p in _PROVIDERS):
        raise SystemExit("--live needs ANTHROPIC_API_KEY and/or OPENAI_API_KEY (or AIRFLOW_CONN_*_DEFAULT)")
    return found


def run_instance(
    instance: Instance, settings: Settings, run_id: str, arm: dict[str, Any] | None = None,
    experiment: str | None = None,
) -> Outcome:  # fmt: skip
    """Run one instance through the operator (as one arm of ``experiment`` when given: its own map index, as in a
    mapped Airflow task), then evaluate its accepted change."""
    from supervisor_lib.coding.settings import Roots
    from supervisor_lib.exceptions import ChangeNotAcceptedError
    from supervisor_lib.operators.coding import CodingTaskOperator

    task_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", instance.instance_id)
    operator = CodingTaskOperator(
        task_id=task_id, task_kind=instance.task_type, repo=instance.source(ROOT), ref=instance.base_commit or "HEAD",
        instructions=instance.problem_statement, validate_command=instance.validate,
        max_iterations=settings.max_iterations, provider=settings.provider, model=settings.model,
        reviewer_provider=settings.reviewer_provider, reviewer_model=settings.reviewer_model,
        budget_usd=settings.budget_usd, keep_workspace="never", analytics_conn_id=ANALYTICS_CONN_ID,
        experiment=experiment, arm=arm,
    )  # fmt: skip
    ti = _TaskInstance(task_id, run_id, map_index=arm["index"] if arm else -1)
    started = time.monotonic()
    try:
        result = operator.execute({"ti": ti})
    except ChangeNotAcceptedError:
        result = ti.pushed["return_value"]
    except Exception as exc:  # a provider or workspace error: the instance counts as unresolved
        return Outcome(instance.instance_id, instance.task_type, "error", False, False, 0, 0, 0.0,
                       round(time.monotonic() - started, 2), error=f"{type(exc).__name__}: {exc}")  # fmt: skip
    wall = round(time.monotonic() - started, 2)
    return _outcome(instance, result, wall, Roots.from_env())


def _outcome(instance: Instance, result: dict[str, Any], wall: float, roots: Any) -> Outcome:
    accepted = result["status"] in ("passed", "no_changes")
    evaluation = evaluate(instance, result, roots, ROOT) if accepted else None
    resolved = bool(evaluation and evaluation.resolved)
    usage = result["usage"]
    return Outcome(
        instance_id=instance.instance_id,
        task_type=instance.task_type,
        status=result["status"],
        resolved=resolved,
        pass_at_1=resolved and len(result["iterations"]) == 1,
        iterations=len(result["iterations"]),
        tokens=sum(
            usage.get(k, 0) for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        ),
        cost_usd=float(result["cost_usd"] or 0.0),
        wall_s=wall,
        tests_passed=len(evaluation.passed & set(instance.tests)) if evaluation else 0,
        tests_total=len(instance.tests),
    )


def _run_id() -> str:
    return f"bench__{time.strftime('%Y%m%dT%H%M%S')}__{uuid.uuid4().hex[:6]}"


def run_all(
    instances: list[Instance], settings: Settings, work_dir: Path, *, live: bool, script: Path
) -> list[Outcome]:
    """Run every instance (one run id per invocation, so no answer is re-used from an earlier run)."""
    run_id = _run_id()
    work_dir.mkdir(parents=True, exist_ok=True)
    with environment(work_dir, live, script):
        return [run_instance(instance, settings, run_id) for instance in instances]


def run_experiment(
    instances: list[Instance], settings: Settings, arms: list[Arm], work_dir: Path, *, live: bool, script: Path,
    experiment: str, repeat: int = 1,
) -> tuple[dict[str, list[Outcome]], dict[str, Any]]:  # fmt: skip
    """Run every instance in every arm, ``repeat`` times (a fresh run id each, like a new scheduled DAG run);
    return each arm's outcomes and the experiment's report from the store (which also holds the rows of earlier
    invocations under the same ``experiment`` name)."""
    from supervisor_lib.analytics.experiments import experiment_report
    from supervisor_lib.store import get_store

    work_dir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, list[Outcome]] = {arm.name: [] for arm in arms}
    with environment(work_dir, live, script):
        for _ in range(repeat):
            run_id = _run_id()
            for instance in instances:
                for index, arm in enumerate(arms):
                    outcome = run_instance(instance, settings, run_id, arm.as_arm(index), experiment)
                    outcomes[arm.name].append(outcome)
        return outcomes, experiment_report(get_store(ANALYTICS_CONN_ID), experiment)


#: (heading, width, alignment) of the report's columns
_COLUMNS = (
    ("instance", 24, "<"), ("type", 9, "<"), ("status", 10, "<"), ("resolved", 8, "<"), ("pass@1", 6, "<"),
    ("iters", 5, ">"), ("tests", 7, ">"), ("tokens", 8, ">"), ("cost $", 9, ">"), ("wall s", 7, ">"),
)  # fmt: skip


def _row(cells: list[str]) -> str:
    return " ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, _COLUMNS, strict=True))


def _cells(o: Outcome) -> list[str]:
    return [
        o.instance_id, o.task_type, o.status, _yes(o.resolved), _yes(o.pass_at_1), str(o.iterations),
        f"{o.tests_passed}/{o.tests_total}", str(o.tokens), f"{o.cost_usd:.4f}", f"{o.wall_s:.1f}",
    ]  # fmt: skip


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def totals(outcomes: list[Outcome]) -> dict[str, Any]:
    """pass@1 and pass-after-iterations rates, and the sums of tokens, cost and wall time."""
    n = len(outcomes) or 1
    return {
        "instances": len(outcomes),
        "pass_at_1": sum(o.pass_at_1 for o in outcomes) / n,
        "pass_after_iterations": sum(o.resolved for o in outcomes) / n,
        "tokens": sum(o.tokens for o in outcomes),
        "cost_usd": round(sum(o.cost_usd for o in outcomes), 6),
        "wall_s": round(sum(o.wall_s for o in outcomes), 2),
    }


def report(outcomes: list[Outcome]) -> str:
    """The per-instance table and the totals, as text."""
    head = _row([name for name, _, _ in _COLUMNS])
    rows = [_row(_cells(o)) + (f"  {o.error}" if o.error else "") for o in outcomes]
    t, first, final = totals(outcomes), sum(o.pass_at_1 for o in outcomes), sum(o.resolved for o in outcomes)
    summary = (
        f"pass@1: {first}/{t['instances']} ({t['pass_at_1']:.0%})   pass after iterations: {final}/{t['instances']} "
        f"({t['pass_after_iterations']:.0%})   tokens: {t['tokens']}   cost: ${t['cost_usd']:.4f}   "
        f"wall: {t['wall_s']:.1f}s"
    )
    return "\n".join([head, "-" * len(head), *rows, "-" * len(head), summary])


def as_json(outcomes: list[Outcome], settings: Settings, live: bool) -> dict[str, Any]:
    """The results as one JSON document (settings, one row per instance, totals)."""
    return {
        "mode": "live" if live else "offline (scripted fake provider)",
        "settings": asdict(settings),
        "instances": [asdict(o) for o in outcomes],
        "totals": totals(outcomes),
    }
