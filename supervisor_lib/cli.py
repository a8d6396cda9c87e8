"""The ``supervisor`` command: validate specs, print their JSON Schema, show a workflow's task graph, report on
model experiments.

It imports no Airflow and no AI SDK at startup, so it is fast enough for pre-commit hooks and CI (``experiment
report`` without ``--store`` reads the store's Airflow connection, so it imports Airflow's SDK then).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supervisor_lib.spec import SpecError, WorkflowSpec, json_schema, load_spec, load_specs
from supervisor_lib.spec.model_check import model_warnings

DEFAULT_SPECS = "include/specs"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 all good, 1 invalid specs)."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supervisor", description="Supervisor task specs: validate and inspect.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("validate", help="validate spec files (exit 1 and one line per problem if any)")
    check.add_argument("paths", nargs="*", default=[DEFAULT_SPECS], metavar="PATH", help="files or directories")
    check.set_defaults(run=_validate)
    schema = commands.add_parser("schema", help="print the spec format's JSON Schema")
    schema.set_defaults(run=_schema)
    show = commands.add_parser("graph", help="print a workflow's task graph as JSON")
    show.add_argument("path", metavar="PATH", help="a spec file")
    show.set_defaults(run=_graph)
    experiment = commands.add_parser("experiment", help="model experiments (docs/experiments.md)")
    actions = experiment.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="per-arm pass rate, cost, tokens, latency with intervals; a verdict")
    report.add_argument("--store", metavar="URL", help="the store: postgresql://... or sqlite:///path (default: "
                        "the supervisor_analytics connection, else $AIRFLOW_HOME/supervisor_analytics.db)")  # fmt: skip
    report.add_argument("--experiment", metavar="NAME", help="default: the experiment with the newest run")
    report.add_argument("--dag", action="append", metavar="DAG_ID", help="only these DAGs' runs (repeatable)")
    report.add_argument("--margin", type=float, default=0.10, help="the pass-rate loss that still counts as none")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(run=_experiment_report)
    return parser


def _validate(args: argparse.Namespace) -> int:
    specs, errors = load_specs(args.paths)
    for error in errors.values():
        print(error)
    for spec in specs:
        for warning in model_warnings(spec):
            print(f"warning: {warning}")
    if errors:
        return 1
    tasks = sum(len(spec.tasks) for spec in specs)
    print(f"OK: {len(specs)} spec(s), {tasks} task(s) valid in {', '.join(args.paths)}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def _graph(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.path)
    except SpecError as err:
        print(err)
        return 1
    print(json.dumps(graph_json(spec), indent=2))
    return 0


def _experiment_report(args: argparse.Namespace) -> int:
    from supervisor_lib.analytics.experiments import experiment_report, format_report
    from supervisor_lib.store import Store, StoreError

    if args.store and args.store.startswith("sqlite:///") and not Path(args.store.removeprefix("sqlite:///")).is_file():
        print(f"error: no store at {args.store}", file=sys.stderr)  # rather than creating an empty one
        return 1
    store = Store.from_url(args.store) if args.store else Store()
    try:
        report = experiment_report(store, args.experiment, dag_ids=args.dag, margin=args.margin)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.experiment is not None and not report["arms"]:
        print(f"error: no runs of experiment {args.experiment!r} (known: {', '.join(report['experiments']) or 'none'})",
              file=sys.stderr)  # fmt: skip
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def graph_json(spec: WorkflowSpec) -> dict[str, Any]:
    """The task graph: nodes (defaults merged in), edges (upstream → downstream) and a topological order."""
    nodes = [
        {
            "id": task.id,
            "type": str(task.type),
            "provider": None if task.provider is None else str(task.provider),
            "model": task.model,
            "writes": task.writes,
            "mapped": task.foreach is not None,
            "conditional": task.when is not None,
        }
        for task in spec.effective_tasks
    ]
    edges = [{"from": upstream, "to": downstream} for upstream, downstream in spec.edges()]
    return {"dag_id": spec.dag_id, "nodes": nodes, "edges": edges, "order": spec.topological_order()}


if __name__ == "__main__":
    sys.exit(main())
