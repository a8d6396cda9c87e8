"""``python -m benchmarks.coding``: see the package docstring and ``--help``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

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
    return parser


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
    outcomes = run_all(instances, settings, work_dir, live=args.live, script=args.script)
    print(report(outcomes))
    if args.json:
        args.json.write_text(json.dumps(as_json(outcomes, settings, args.live), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
