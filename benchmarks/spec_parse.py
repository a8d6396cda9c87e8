"""How fast do spec DAGs parse, next to the same DAGs hand-written in Python and as dag-factory YAML?

Generates the same DAGs three ways, then times a full ``BundleDagBag`` parse of each folder, each parse in a fresh
subprocess that has pre-imported ``airflow.sdk`` (as the DAG processor has), and prints the table and ratios::

    .venv/bin/python -m benchmarks.spec_parse                  # 200 DAGs x 20 tasks, 5 parses per variant
    .venv/bin/python -m benchmarks.spec_parse --dags 50 --repeats 3 --no-dag-factory

Before timing, one parse of every variant checks that they all build the same DAGs (tasks, operator classes and
arguments, edges, params, schedule) and that the spec parse imports no provider SDK, pandas or scikit-learn.
See benchmarks/README.md for the variants and what keeps the comparison fair.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DAG_FACTORY_VERSION = "1.1.0"
HEAVY = ("anthropic", "openai", "pydantic_ai", "pandas", "sklearn")
OPERATORS = {
    "anthropic": "supervisor_lib.operators.llm.AnthropicOperator",
    "openai": "supervisor_lib.operators.llm.OpenAIOperator",
    "approval": "supervisor_lib.operators.approval.SpecApprovalOperator",
}
#: operator attributes compared across the variants (one an operator does not have reads as None); a model-calling
#: operator keeps its call settings in ``op.call`` (``task_type`` is the ``task_kind`` it was given)
COMPARED = (
    *("owner", "retries", "retry_delay", "execution_timeout", "prompt", "system", "model", "deferrable", "when"),
    *("subject", "body", "response_timeout", "options"),
)
CALL_COMPARED = ("conn_id", "max_tokens", "temperature", "output_schema", "budget_usd", "cache", "task_type")
AREAS = ("api", "storage", "auth", "billing", "search", "infra", "ui", "docs", "tests", "deps", "perf", "data")
TEAMS = ("payments", "platform", "growth", "identity", "mobile")
RISK_SCHEMA = {
    "type": "object",
    "properties": {"severity": {"type": "string", "enum": ["none", "low", "high", "blocker"]}, "reason": {}},
    "required": ["severity"],
}
PARAMS = {
    "branch": {"type": "string", "default": "main", "description": "Branch to review."},
    "max_files": {"type": "integer", "default": 50, "minimum": 1},
    "announce": {"type": "boolean", "default": False},
}
LOADER_HEADER = '"""Airflow DAGs from Supervisor task specs."""\n\nfrom supervisor_lib import load_dags\n\n'
Samples = dict[str, dict[str, list[float]]]  # label -> {"seconds": [...], "cpu": [...]}

# --- the DAGs, described once, with every task's effective values ---------------------------------------------------


def _pull(task_id: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['text'] }}}}"


def make_dag(i: int, n_tasks: int) -> dict[str, Any]:
    """DAG ``i``: collect → reviews (fan-out) and a structured triage → summary (fan-in) → human approval →
    release notes (fan-in of the fix plans, each behind a ``when``) → notify (``when`` on a param)."""
    team = TEAMS[i % len(TEAMS)]
    k = max(1, (n_tasks - 6) // 2)
    areas = [AREAS[(i + j) % len(AREAS)] + (f"_{j}" if j >= len(AREAS) else "") for j in range(k)]
    defaults = {"model": "claude-sonnet-4-6", "budget_usd": 0.5, "max_tokens": 2048}

    def llm(tid: str, prompt: str, deps: list[str], provider: str = "anthropic", **extra: Any) -> dict[str, Any]:
        model = "gpt-4.1-mini" if provider == "openai" else defaults["model"]
        return {"id": tid, "kind": provider, "depends_on": deps, "retries": 2, **defaults, "model": model,
                "prompt": prompt, **extra}  # fmt: skip

    system = f"You are a senior engineer on the {team} team. Answer briefly, in Markdown."
    collect = "List the changes on {{ params.branch }} since {{ ds }} (at most {{ params.max_files }} files)."
    tasks = [llm("collect", collect, [], system=system)]
    for j, area in enumerate(areas):
        prompt = f"Review the {area} changes for bugs and risks:\n{_pull('collect')}"
        provider = "openai" if j % 3 == 2 else "anthropic"
        tasks.append(llm(f"review_{area}", prompt, ["collect"], provider, system=f"You review {area} code."))
    risk = f"Rate the overall risk of these changes:\n{_pull('collect')}"
    tasks.append(llm("triage", risk, ["collect"], output_schema=RISK_SCHEMA, temperature=0.0))
    reviews = [f"review_{a}" for a in areas]
    summary = "Summarize the reviews for the release manager:\n" + "\n".join(map(_pull, reviews))
    tasks.append(llm("summarize", summary, [*reviews, "triage"], system=system, timeout_s=600.0))
    for area in areas:
        when = f"{{{{ 'bug' in ti.xcom_pull(task_ids='review_{area}')['text'] | lower }}}}"
        tasks.append(llm(f"plan_{area}", f"Plan fixes for:\n{_pull(f'review_{area}')}", [f"review_{area}"], when=when))
    tasks.append({"id": "approve", "kind": "approval", "depends_on": ["summarize"], "retries": 2,
                  "subject": "Publish the {{ params.branch }} release notes?", "body": _pull("summarize"),
                  "timeout_s": 86400.0})  # fmt: skip
    plans = [f"plan_{a}" for a in areas]
    notes = f"Write release notes from:\n{_pull('summarize')}"
    tasks.append(llm("release_notes", notes, ["approve", *plans], temperature=0.3, timeout_s=600.0))
    announce = f"Announce in two sentences:\n{_pull('release_notes')}"
    tasks.append(llm("notify", announce, ["release_notes"], "openai", retries=4, when="{{ params.announce }}"))
    for n in range(n_tasks - len(tasks)):
        tasks.append(llm(f"changelog_{n}", f"Changelog entry {n} from:\n{_pull('summarize')}", ["summarize"]))
    return {
        "dag_id": f"bench_{i:03d}",
        "description": f"Nightly review of the {team} service ({i}).",
        "schedule": f"{i % 60} {1 + i % 5} * * *",
        "timezone": ("UTC", "Europe/Berlin", "America/New_York")[i % 3],
        "owner": f"team-{team}",
        "tags": ["bench", team],
        "max_active_runs": 1,
        "defaults": defaults,
        "params": PARAMS,
        "tasks": tasks,
    }


# --- the three forms ----------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """YAML as people write it: block mappings, short lists inline, multi-line prompts as ``|`` blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_str(self, data: str) -> yaml.ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    def represent_list(self, data: Iterable[Any]) -> yaml.SequenceNode:
        data = list(data)
        inline = all(isinstance(item, str | int | float) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(str, _Dumper.represent_str)
_Dumper.add_representer(list, _Dumper.represent_list)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


SPEC_TASK_KEYS = ("prompt", "system", "subject", "body", "when", "output_schema", "temperature", "timeout_s")
LLM_KWARGS = ("model", "system", "prompt", "when", "max_tokens", "temperature", "output_schema", "budget_usd")


def spec_yaml(dag: dict[str, Any]) -> str:
    """The spec, as a person writes it: shared settings in ``defaults``, only the overrides on a task."""
    keys = ("dag_id", "description", "schedule", "timezone", "owner", "tags", "max_active_runs")
    spec: dict[str, Any] = {k: dag[k] for k in keys}
    spec |= {"defaults": {"provider": "anthropic", **dag["defaults"]}, "params": dag["params"], "tasks": []}
    for task in dag["tasks"]:
        entry = {"id": task["id"], "type": "human_approval" if task["kind"] == "approval" else "llm"}
        if task["kind"] == "openai":
            entry |= {"provider": "openai", "model": task["model"]}
        entry |= {k: task[k] for k in SPEC_TASK_KEYS if k in task}
        entry |= {"retries": task["retries"]} if task["retries"] != 2 else {}
        entry |= {"depends_on": task["depends_on"]} if task["depends_on"] else {}
        spec["tasks"].append(entry)
    return _dump(spec)


def _python_task(task: dict[str, Any]) -> str:
    args = [f"task_id={task['id']!r}"]
    if task["kind"] == "approval":
        args += [f"subject={task['subject']!r}", f"body={task['body']!r}"]
        args.append(f"response_timeout=timedelta(seconds={task['timeout_s']})")
        args.append("retry_delay=timedelta(seconds=5)")  # what the builder gives approvals (supervisor_lib/compat.py)
        operator = "SpecApprovalOperator"
    else:
        args += [f"{key}={task[key]!r}" for key in LLM_KWARGS if key in task]
        if "timeout_s" in task:
            args.append(f"execution_timeout=timedelta(seconds={task['timeout_s']})")
        operator = OPERATORS[task["kind"]].rsplit(".", 1)[1]
    if task["retries"] != 2:
        args.append(f"retries={task['retries']}")
    return f"    {task['id']} = {operator}(\n" + "".join(f"        {arg},\n" for arg in args) + "    )"


PYTHON_HEAD = '''"""{description}"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from supervisor_lib import AnthropicOperator, OpenAIOperator
from supervisor_lib.operators.approval import SpecApprovalOperator

with DAG(
    dag_id={dag_id!r},
    description={description!r},
    schedule={schedule!r},
    start_date=pendulum.datetime(2026, 1, 1, tz={timezone!r}),
    catchup=False,
    max_active_runs={max_active_runs},
    tags={all_tags!r},
    default_args={{"owner": {owner!r}, "retries": 2}},
    params={{{params}
    }},
    doc_md=__doc__,
):
'''


def python_file(dag: dict[str, Any]) -> str:
    """The hand-written twin: the same operators and arguments, the shared ones in ``default_args``."""
    params = "".join(
        f"\n        {name!r}: Param({schema['default']!r}, "
        + ", ".join(f"{k}={v!r}" for k, v in schema.items() if k != "default")
        + "),"
        for name, schema in dag["params"].items()
    )
    values = dag | {"params": params, "all_tags": sorted({*dag["tags"], "supervisor-spec"})}
    head = PYTHON_HEAD.format(**values)
    upstreams = {t["id"]: ", ".join(t["depends_on"]) for t in dag["tasks"] if t["depends_on"]}
    edges = [f"    {up if ', ' not in up else f'[{up}]'} >> {tid}" for tid, up in upstreams.items()]
    return head + "\n".join([*map(_python_task, dag["tasks"]), *edges]) + "\n"


def _timedelta(seconds: float) -> dict[str, Any]:
    return {"__type__": "datetime.timedelta", "seconds": seconds}


def dag_factory_yaml(dag: dict[str, Any]) -> str:
    """dag-factory's form: our operators by dotted path; Params and timedeltas through its ``__type__`` casting."""
    params = {
        name: {"__type__": "airflow.sdk.Param", "__args__": [schema["default"]]}
        | {k: v for k, v in schema.items() if k != "default"}
        for name, schema in dag["params"].items()
    }
    tasks = []
    for task in dag["tasks"]:
        entry: dict[str, Any] = {"task_id": task["id"], "operator": OPERATORS[task["kind"]]}
        if task["kind"] == "approval":
            entry |= {"subject": task["subject"], "body": task["body"]}
            entry["response_timeout"] = _timedelta(task["timeout_s"])
            entry["retry_delay"] = _timedelta(5)  # what the builder gives approvals
        else:
            entry |= {key: task[key] for key in LLM_KWARGS if key in task}
            entry |= {"execution_timeout": _timedelta(task["timeout_s"])} if "timeout_s" in task else {}
        entry |= {"retries": task["retries"]} if task["retries"] != 2 else {}
        entry |= {"dependencies": task["depends_on"]} if task["depends_on"] else {}
        tasks.append(entry)
    config = {
        "default_args": {"owner": dag["owner"], "retries": 2},
        **{k: dag[k] for k in ("description", "schedule", "timezone", "max_active_runs")},
        "start_date": "2026-01-01",
        "catchup": False,
        "tags": sorted({*dag["tags"], "supervisor-spec"}),
        "params": params,
        "tasks": tasks,
    }
    return _dump({dag["dag_id"]: config})


def generate(work: Path, n_dags: int, n_tasks: int) -> dict[str, Path]:
    """Write every variant's folder (``<variant>/dags`` with the DAG files, ``<variant>/specs``); return the dags."""
    shutil.rmtree(work / "dags", ignore_errors=True)
    roots = {name: work / "dags" / name for name in ("python", "spec", "spec-per-file", "dag-factory")}
    for root in roots.values():
        (root / "dags").mkdir(parents=True)
        (root / "specs").mkdir()
    (roots["spec"] / "dags" / "specs.py").write_text(LOADER_HEADER + 'load_dags(globals(), specs_dir="specs")\n')
    (roots["dag-factory"] / "dags" / "dag_factory.py").write_text(
        '"""Airflow DAGs from dag-factory YAML."""\n\nfrom pathlib import Path\n\n'
        "from dagfactory import load_yaml_dags\n\n"
        'load_yaml_dags(globals(), dags_folder=str(Path(__file__).parents[1] / "specs"))\n'
    )
    for i in range(n_dags):
        dag = make_dag(i, n_tasks)
        name, spec = dag["dag_id"], spec_yaml(dag)
        (roots["python"] / "dags" / f"{name}.py").write_text(python_file(dag))
        (roots["spec"] / "specs" / f"{name}.yaml").write_text(spec)
        (roots["spec-per-file"] / "specs" / f"{name}.yaml").write_text(spec)
        loader = LOADER_HEADER + f'load_dags(globals(), specs_dir="specs/{name}.yaml")\n'
        (roots["spec-per-file"] / "dags" / f"{name}.py").write_text(loader)
        (roots["dag-factory"] / "specs" / f"{name}.yaml").write_text(dag_factory_yaml(dag))
    return {name: root / "dags" for name, root in roots.items()}


# --- the child: one DagBag parse in a fresh interpreter -----------------------------------------------------------


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def fingerprint(dag: Any) -> dict[str, Any]:
    """What must be equal across the variants: the DAG's settings and every task's class, arguments and edges."""
    tasks = {
        t.task_id: {"class": type(t).__name__, "upstream": sorted(t.upstream_task_ids)}
        | {name: _plain(getattr(t, name, None)) for name in COMPARED}
        | {name: _plain(getattr(getattr(t, "call", None), name, None)) for name in CALL_COMPARED}
        for t in dag.tasks
    }
    return {
        "schedule": [type(dag.timetable).__name__, dag.timetable.expression, str(dag.timetable.timezone)],
        "start_date": dag.start_date.isoformat(),
        "tags": sorted(set(dag.tags) - {"dagfactory"}),  # dag-factory adds its own tag
        "settings": [dag.description, dag.catchup, dag.max_active_runs, str(dag.timezone)],
        "params": {k: _plain([p.value, p.schema, p.description]) for k, p in dag.params.items()},
        "tasks": tasks,
    }


def _cache_entries() -> set[Path]:
    directory = os.environ.get("SUPERVISOR_SPEC_CACHE_DIR", "off")
    return set(Path(directory).glob("*/*.pickle")) if directory != "off" else set()


def child(target: str, with_fingerprints: bool) -> None:
    """Parse ``target`` (a DAG folder or one DAG file) like the DAG processor; print the result as JSON."""
    import airflow.sdk  # noqa: F401 - the DAG processor has this pre-imported
    from airflow.dag_processing.dagbag import BundleDagBag

    bundle = Path(target if os.path.isdir(target) else os.path.dirname(target))
    entries = _cache_entries()
    before = set(sys.modules)
    started, cpu = time.perf_counter(), time.process_time()
    bag = BundleDagBag(dag_folder=target, bundle_path=bundle, bundle_name="bench", load_op_links=False)
    result: dict[str, Any] = {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "dags": len(bag.dags),
        "import_errors": {str(k): str(v)[-2000:] for k, v in bag.import_errors.items()},
        "heavy": sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(HEAVY)),
        "cache_writes": len(_cache_entries() - entries),  # specs validated (and cached) by this parse
    }
    if with_fingerprints:
        result["fingerprints"] = {dag_id: fingerprint(dag) for dag_id, dag in bag.dags.items()}
    print(json.dumps(result))


# --- the parent ---------------------------------------------------------------------------------------------------


class Runner:
    """Starts child parses with each variant's interpreter, environment and spec cache directory."""

    def __init__(self, work: Path, folders: dict[str, Path], dag_factory_python: Path | None) -> None:
        self.work, self.folders, self.dag_factory_python = work, folders, dag_factory_python

    def run(self, variant: str, *, cache: str = "warm", target: Path | None = None, check: bool = False) -> Any:
        """One parse; ``cache``: ``warm`` (as the last run left it), ``cold`` (emptied first) or ``off``."""
        directory = self.work / "cache" / variant
        if cache == "cold":
            shutil.rmtree(directory, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            # bytecode is cached as in a deployment, but under the work dir instead of the source tree
            "PYTHONPYCACHEPREFIX": str(self.work / "pycache"),
            "AIRFLOW_HOME": str(self.work / "airflow_home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.folders[variant]),
            "SUPERVISOR_SPEC_CACHE_DIR": "off" if cache == "off" else str(directory),
            "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "True",
        }
        python = self.dag_factory_python if variant == "dag-factory" else sys.executable
        command = [str(python), __file__, "--child", str(target or self.folders[variant])]
        proc = subprocess.run(
            [*command, *(["--fingerprint"] if check else [])], capture_output=True, text=True, env=env
        )
        if proc.returncode != 0:
            raise SystemExit(f"{variant}: the parse failed:\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def install_dag_factory(work: Path, version: str) -> Path:
    """A throw-away venv seeing this project's packages (through a ``.pth``) plus dag-factory; returns its python."""
    venv = work / "dag-factory-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import dagfactory; print(dagfactory.__version__)"]
    env = {**os.environ, "AIRFLOW_HOME": str(work / "airflow_home")}  # Airflow logs to stdout: read the last line

    def installed() -> bool:
        return subprocess.run(probe, capture_output=True, text=True, env=env).stdout.strip().endswith(f"\n{version}")

    if python.exists() and installed():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    print(f"installing dag-factory=={version} into {venv} (only there)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    ours = sysconfig.get_paths()["purelib"]  # this interpreter's site-packages: Airflow and supervisor_lib
    Path(site.decode().strip(), "_project_site.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", f"dag-factory=={version}"]
    result = subprocess.run(pip, capture_output=True, text=True)  # its dependencies are all in our venv
    if result.returncode != 0 or not installed():
        raise SystemExit(f"could not install dag-factory=={version}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return python


def _difference(expected: dict[str, Any], got: dict[str, Any]) -> str:
    """Where two fingerprints differ: top-level keys, and for tasks each differing field."""
    lines = [f"{k}: {expected[k]!r} != {got.get(k)!r}" for k in expected if k != "tasks" and got.get(k) != expected[k]]
    for task_id, fields in expected.get("tasks", {}).items():
        other = got.get("tasks", {}).get(task_id) or {}
        lines += [f"{task_id}.{k}: {v!r} != {other.get(k)!r}" for k, v in fields.items() if other.get(k) != v]
    return "; ".join(lines)[:3000]


def check_same_dags(checks: dict[str, Any], n_dags: int) -> None:
    """Every variant built the same DAGs without import errors, and no spec parse imported a heavy module."""
    reference = checks["python"]["fingerprints"]
    for variant, result in checks.items():
        if result["import_errors"] or result["dags"] != n_dags:
            raise SystemExit(f"{variant}: {result['dags']} DAGs, import errors: {result['import_errors']}")
        for dag_id, expected in reference.items():
            got = result["fingerprints"].get(dag_id) or {}
            if got != expected:
                raise SystemExit(f"{variant}: DAG {dag_id} differs from the Python one: {_difference(expected, got)}")
        if variant.startswith("spec") and result["heavy"]:
            raise SystemExit(f"{variant}: the spec parse imported {result['heavy']}")


def _complete(result: dict[str, Any], label: str, expected: int) -> dict[str, Any]:
    """``result``, unless its parse did not build every DAG (a timing of a failed parse means nothing)."""
    if result["import_errors"] or result["dags"] != expected:
        raise SystemExit(f"{label}: {result['dags']} of {expected} DAGs, import errors: {result['import_errors']}")
    return result


def measure(runner: Runner, plan: list[tuple[str, str, str]], repeats: int, n_dags: int) -> Samples:
    """Round-robin over the variants, so drift on a busy machine hits them all alike."""
    samples: Samples = {label: {"seconds": [], "cpu": []} for label, _, _ in plan}
    for _ in range(repeats):
        for label, variant, cache in plan:
            result = _complete(runner.run(variant, cache=cache), label, n_dags)
            if cache == "warm" and result["cache_writes"]:
                print(f"warning: a {label} parse validated {result['cache_writes']} spec(s) again: did supervisor_lib "
                      "change during the run?", flush=True)  # fmt: skip
            for kind, values in samples[label].items():
                values.append(result[kind])
            if (
                cache == "cold"
            ):  # flush the cache files now, not in the kernel's writeback during the next variant's run
                os.sync()
    return samples


def per_file(runner: Runner, variants: list[str], sample: int) -> Samples:
    """One DAG file per fresh interpreter, as the DAG processor parses them: the first ``sample`` files of each."""
    out: Samples = {}
    for variant in variants:
        files = sorted(runner.folders[variant].glob("*.py"))[:sample]
        results = [_complete(runner.run(variant, target=f), f"{variant} {f.name}", 1) for f in files]
        if any(r["heavy"] for r in results):
            raise SystemExit(f"{variant}: a one-file parse imported {sorted({m for r in results for m in r['heavy']})}")
        out[variant] = {kind: [r[kind] for r in results] for kind in ("seconds", "cpu")}
    return out


RATIOS = [
    ("spec warm", "python", "<= 1.2"),
    ("spec cold", "python", ""),
    ("spec uncached", "python", ""),
    ("spec-per-file warm", "python", ""),
    ("dag-factory", "spec warm", ">= 3"),
    ("dag-factory", "spec cold", ""),
]


def report(samples: Samples, n_dags: int, files: Samples) -> str:
    """The table (medians of wall-clock and CPU time), the ratios the goal is stated in, the per-file sample."""
    med = {label: {kind: statistics.median(v) for kind, v in kinds.items()} for label, kinds in samples.items()}
    lines = [
        "| variant | wall s | wall ms/DAG | CPU s | CPU ms/DAG | wall min-max s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, kinds in samples.items():
        wall, cpu, spread = med[label]["seconds"], med[label]["cpu"], kinds["seconds"]
        lines.append(
            f"| {label} | {wall:.3f} | {1000 * wall / n_dags:.2f} | {cpu:.3f} | {1000 * cpu / n_dags:.2f} "
            f"| {min(spread):.2f}-{max(spread):.2f} |"
        )
    lines += ["", "| ratio | wall | CPU | goal |", "|---|---:|---:|---|"]
    for a, b, goal in (r for r in RATIOS if r[0] in med and r[1] in med):
        lines.append(f"| {a} / {b} | {med[a]['seconds'] / med[b]['seconds']:.2f} | {med[a]['cpu'] / med[b]['cpu']:.2f} "
                     f"| {goal} |")  # fmt: skip
    if files:
        lines += ["", "| one DAG file per process | wall ms | CPU ms | files |", "|---|---:|---:|---:|"]
        for variant, kinds in files.items():
            wall, cpu = (1000 * statistics.median(kinds[k]) for k in ("seconds", "cpu"))
            lines.append(f"| {variant} | {wall:.1f} | {cpu:.1f} | {len(kinds['seconds'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        child(args.child, args.fingerprint)
        return 0
    if args.tasks < 8:
        raise SystemExit("--tasks must be at least 8 (the DAG shape needs them)")
    started, work = time.perf_counter(), args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    lock = open(work / ".lock", "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another run is using {work}: wait for it, or give this one its own --work") from None
    dag_factory = None if args.no_dag_factory else install_dag_factory(work, args.dag_factory_version)
    runner = Runner(work, generate(work, args.dags, args.tasks), dag_factory)
    variants = ["python", "spec", "spec-per-file", *([] if dag_factory is None else ["dag-factory"])]
    # The check parses also warm the OS file cache and write every variant's bytecode.
    checks = {v: runner.run(v, cache="cold", check=True) for v in variants}
    os.sync()
    check_same_dags(checks, args.dags)
    heavy = ", ".join(f"{v}: {', '.join(r['heavy']) or 'none'}" for v, r in checks.items())
    print(f"same DAGs in every variant; {', '.join(HEAVY)} imported while parsing: {heavy}", flush=True)
    plan = [("python", "python", "warm"), ("spec warm", "spec", "warm"), ("spec cold", "spec", "cold")]
    plan += [("spec uncached", "spec", "off"), ("spec-per-file warm", "spec-per-file", "warm")]
    plan += [("spec-per-file cold", "spec-per-file", "cold")]
    plan += [] if dag_factory is None else [("dag-factory", "dag-factory", "warm")]
    samples = measure(runner, plan, args.repeats, args.dags)
    runner.run("spec-per-file")  # the cold runs emptied its cache: fill it for the one-file sample
    os.sync()
    files = per_file(runner, ["python", "spec-per-file"], args.per_file) if args.per_file else {}
    print(f"\n{args.dags} DAGs x {args.tasks} tasks, {args.repeats} fresh-process parses per variant, medians "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")  # fmt: skip
    print(report(samples, args.dags, files))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dags", type=int, default=200, help="DAGs per variant (default 200)")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per DAG, at least 8 (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process parses per variant (default 5)")
    parser.add_argument("--per-file", type=int, default=8, help="DAG files timed one per process (default 8, 0: off)")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "spec_parse", help="work dir")
    parser.add_argument("--no-dag-factory", action="store_true", help="skip dag-factory (and its install)")
    parser.add_argument("--dag-factory-version", default=DAG_FACTORY_VERSION, help="the pinned dag-factory version")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fingerprint", action="store_true", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main())
