"""``python -m benchmarks.coding``: see the package docstring and ``--help``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coding", description=__doc__)
    parser.add_argument("--live", action="store_true", help="call the real APIs (needs API keys) instead of the script")
    parser.add_argument("--tasks", type=Path, default=HERE / "tasks.jsonl", help="instances (.jsonl or a JSON list)")
    parser.add_argument("--script", type=Path, default=HERE / "scripted.yaml", help="offline answers (fake provider)")
    parser.add_argument("--only", action="append", help="run only this instance id (repeatable)")
    parser.add_argument("--provider", default="anthropic", choices=["anthropic", "openai"])
    parser.add_argument("--model", default=None, help="default: claude-sonnet-4-6 / gpt-5")
    parser.add_argument("--reviewer", default=None, choices=["anthropic", "openai"], help="review with this provider")
    parser.add_argument("--reviewer-model", default=None)
    parser.add_argument("--max-iterations", type=int, default=3)
    parser.add_argument("--budget-usd", type=float, default=None, help="spend limit per instance")
    parser.add_argument("--work-dir", type=Path, default=HERE.parent / ".work" / "coding")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--arms",
        nargs="+",
        metavar="NAME=PROVIDER:MODEL",
        help="run every instance in each arm as a model experiment (2 or more arms; the first is the "
        "baseline), e.g. sonnet=anthropic:claude-sonnet-4-6 haiku=anthropic:claude-haiku-4-5",
    )
    parser.add_argument(
        "--experiment",
        default=None,
        help="the experiment's name in the store (default: a new one "
        "per invocation; give one to add to the runs of earlier invocations)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --arms: run the instances this many times")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work_dir = args.work_dir.resolve()
    # Before Airflow is imported: a throw-away Airflow home unless one is configured.
    os.environ.setdefault("AIRFLOW_HOME", str(work_dir / "airflow_home"))
    from benchmarks.coding.harness import Settings, as_json, report, run_all
    from benchmarks.coding.instances import load_instances

    model = args.model or ("claude-sonnet-4-6" if args.provider == "anthropic" else "gpt-5")
    settings = Settings(args.provider, model, args.reviewer, args.reviewer_model, args.max_iterations, args.budget_usd)
    instances = load_instances(args.tasks, set(args.only) if args.only else None)
    if args.arms:
        return _experiment(args, settings, instances, work_dir)
    outcomes = run_all(instances, settings, work_dir, live=args.live, script=args.script)
    print(report(outcomes))
    if args.json:
        args.json.write_text(json.dumps(as_json(outcomes, settings, args.live), indent=2) + "\n")
    return 0


def _experiment(args: argparse.Namespace, settings: Any, instances: list[Any], work_dir: Path) -> int:
    import time

    from benchmarks.coding.harness import Arm, as_json, report, run_experiment
    from supervisor_lib.analytics.experiments import format_report

    try:
        arms = [Arm.parse(text) for text in args.arms]
    except ValueError as err:
        raise SystemExit(f"--arms: {err}") from None
    if len(arms) < 2 or len({arm.name for arm in arms}) < len(arms):
        raise SystemExit("--arms: two or more arms with different names")
    name = args.experiment or f"coding-benchmark-{time.strftime('%Y%m%dT%H%M%S')}"
    outcomes, summary = run_experiment(instances, settings, arms, work_dir, live=args.live, script=args.script,
                                       experiment=name, repeat=args.repeat)  # fmt: skip
    for arm in arms:
        print(f"arm {arm.name} ({arm.provider}:{arm.model})\n{report(outcomes[arm.name])}\n")
    print(format_report(summary))
    if args.json:
        per_arm = {arm.name: as_json(outcomes[arm.name], settings, args.live) for arm in arms}
        document = {"experiment": summary, "arms": per_arm}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
