"""``make run``: Airflow with the project's DAGs and plugin, the offline demo provider, and a demo run.

It initialises an Airflow home inside the checkout (``.airflow/``, git-ignored), applies
``airflow_settings.yaml``, starts the Airflow components (API server on 127.0.0.1, scheduler, DAG processor,
triggerer) with parallelism sized for a small machine, triggers the demo DAG through the REST API, prints the
run's outcome and keeps Airflow up until Ctrl-C, which stops every process it started.

With no ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` in the environment the provider connections point at the
offline demo provider (:mod:`supervisor_lib.testing`), started here on a loopback port.

``--executor celery`` (``make run EXECUTOR=celery``) runs the CeleryExecutor instead: ``--workers`` Celery workers
(default 2) on the Redis at ``redis://127.0.0.1:6379/0`` (``AIRFLOW__CELERY__BROKER_URL``), with a PostgreSQL
metadata DB (default ``supervisor_local`` on 127.0.0.1:5432, created if missing) that also holds Celery's results.
``--triggerers`` starts several triggerers (default 1), which share the deferred calls. Each component's pid is
written to ``<home>/pids/<component>.pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
#: ``make run EXECUTOR=celery``: the broker and the metadata DB (which also holds Celery's results) by default
CELERY_BROKER = "redis://127.0.0.1:6379/0"
CELERY_METADATA_DB = "postgresql+psycopg2://postgres@127.0.0.1:5432/supervisor_local"
#: Airflow's log servers listen on every interface and cannot be told otherwise; on one machine the API server reads
#: the task and trigger logs from the shared log folder, so they are not started (nothing listens beyond 127.0.0.1).
COMMANDS = {"scheduler": ["scheduler", "--skip-serve-logs"], "triggerer": ["triggerer", "--skip-serve-logs"]}
#: HS512 (Airflow's JWT algorithm) wants a key of at least 64 bytes
JWT_SECRET_BYTES = 64
PROVIDER_KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
#: the demo runs: a question to each provider, then a supervised bug fix of include/repos/payments
DEMO_DAG_IDS = "supervisor_demo,payments_bugfix"
DEMO_SCRIPT = Path("include") / "demo" / "fake_provider.yaml"
SCAN_DAG_ID = "supervisor_anomaly_scan"


def log(message: str) -> None:
    """Print a launcher line; a closed stdout (the terminal or the parent went away) never stops the shutdown."""
    with contextlib.suppress(OSError):
        print(f"[supervisor] {message}", flush=True)


@dataclass
class Launcher:
    """Owns every process ``make run`` starts, so Ctrl-C (or a failure) stops them all."""

    root: Path
    port: int
    home: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    fake_server: Any = None
    #: how each component was started (its airflow arguments and environment), to start it again
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    #: when each component was started again (the last few), to give up on one that keeps dying
    restarts: dict[str, list[float]] = field(default_factory=dict)

    base_path: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def stop(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is None:
                log(f"stopping {name}")
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        if self.fake_server is not None:
            self.fake_server.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _persistent_secrets(home: Path) -> dict[str, str]:
    """Fernet key, JWT secret and the admin password: generated once, kept in the (git-ignored) Airflow home."""
    path = home / "supervisor_local_secrets.json"
    data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if "fernet_key" not in data:
        from cryptography.fernet import Fernet

        data["fernet_key"] = Fernet.generate_key().decode()
    if len(data.get("jwt_secret", "")) < JWT_SECRET_BYTES:  # also replaces a short secret of an older checkout
        data["jwt_secret"] = secrets.token_urlsafe(JWT_SECRET_BYTES)
    data.setdefault("admin_password", secrets.token_urlsafe(9))
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    return data


@dataclass(frozen=True)
class Topology:
    """Which Airflow processes run: the executor (``local`` or ``celery``), Celery workers, triggerers."""

    executor: str = "local"
    workers: int = 2
    triggerers: int = 1

    def components(self) -> list[tuple[str, list[str]]]:
        """``(name, airflow arguments)`` of every process to start."""
        found: list[tuple[str, list[str]]] = []
        for name in COMPONENTS:
            if name == "triggerer" and self.triggerers > 1:
                found += [(f"triggerer-{i}", COMMANDS[name]) for i in range(1, self.triggerers + 1)]
            else:
                found.append((name, COMMANDS.get(name, [name])))
        if self.executor == "celery":
            found += [(f"celery-worker-{i}", ["celery", "worker", "--skip-serve-logs", "--celery-hostname",
                                              f"worker{i}@%h"]) for i in range(1, self.workers + 1)]  # fmt: skip
        return found


def airflow_env(
    root: Path,
    home: Path,
    port: int,
    base: dict[str, str],
    dags: Path | None = None,
    base_path: str = "",
    topology: Topology | None = None,
) -> dict[str, str]:
    """The environment every Airflow component and CLI call of ``make run`` shares (``base_path``: serve the UI
    and APIs under a path, e.g. ``/airflow``, as behind a reverse proxy)."""
    topology = topology or Topology()
    local = _persistent_secrets(home)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({"admin": local["admin_password"]}))
    env = dict(base)
    bin_dir = str(Path(sys.executable).parent)  # the venv's airflow, whatever PATH says
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags or root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # A triggerer runs, so model calls wait there instead of holding worker slots.
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": base.get("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True"),
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[topology.executor],
            "AIRFLOW__CORE__PARALLELISM": base.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__CORE__FERNET_KEY": local["fernet_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": local["jwt_secret"],
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}{base_path}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}{base_path}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "SUPERVISOR_HOME": str(home),
        }
    )
    if topology.executor == "celery":
        _celery_env(env, topology)
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    env.setdefault("SUPERVISOR_ANALYTICS_SQLITE", str(home / "analytics.db"))
    # The local demo runs on any laptop: without bubblewrap or user namespaces its validation runs unsandboxed,
    # loudly. Anywhere else the default (isolated) refuses that.
    env.setdefault("SUPERVISOR_SANDBOX_MIN", "none")
    return env


def _celery_env(env: dict[str, str], topology: Topology) -> None:
    """The CeleryExecutor's settings: Redis as the broker, the PostgreSQL metadata DB (created if missing) for
    Celery's results too; several processes write the metadata DB at once, which SQLite cannot serve."""
    metadata = env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", CELERY_METADATA_DB)
    if not metadata.startswith(("postgresql", "mysql")):
        raise SystemExit(
            f"the CeleryExecutor needs a PostgreSQL or MySQL metadata DB, not {metadata.split(':', 1)[0]}: set "
            f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (or unset it for {CELERY_METADATA_DB})"
        )
    if metadata == CELERY_METADATA_DB:
        _create_database(metadata)
    env.setdefault("AIRFLOW__CELERY__BROKER_URL", CELERY_BROKER)
    driverless = metadata.split("://", 1)[1]
    scheme = "postgresql" if metadata.startswith("postgresql") else "mysql"
    env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", f"db+{scheme}://{driverless}")
    # the machine's parallelism shared between the workers
    parallelism = int(env.get("AIRFLOW__CORE__PARALLELISM", "4"))
    env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(max(1, parallelism // topology.workers)))


def _create_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist (``make run EXECUTOR=celery``'s default)."""
    import psycopg2

    rest = url.split("://", 1)[1]
    server, name = rest.rsplit("/", 1)
    user, host_port = server.split("@", 1) if "@" in server else ("postgres", server)
    host, port = host_port.split(":") if ":" in host_port else (host_port, "5432")
    try:
        conn = psycopg2.connect(host=host, port=int(port), user=user, dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as err:
        raise SystemExit(
            f"the CeleryExecutor's metadata DB: cannot reach PostgreSQL at {host}:{port} ({err})"
        ) from None
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
            log(f"created the PostgreSQL database {name} for the metadata DB")
    conn.close()


def provider_endpoints(env: dict[str, str], launcher: Launcher) -> dict[str, str]:
    """Point each provider without a real key at the offline demo provider; return {provider: mode}."""
    missing = [p for p, key in PROVIDER_KEYS.items() if not env.get(key)]
    modes = {p: f"API at {env.get(f'{p.upper()}_BASE_URL') or 'the provider default URL'}" for p in PROVIDER_KEYS}
    if not missing:
        return modes
    from supervisor_lib.testing import FakeProviderServer

    launcher.fake_server = FakeProviderServer(latency=0.2).start()
    script = launcher.root / DEMO_SCRIPT
    if script.exists():  # the scripted answers of the bug-fix demo
        launcher.fake_server.load_script(script)
    for provider in missing:
        key = PROVIDER_KEYS[provider]
        log(f"{key} is not set: the '{provider}_default' connection uses the offline demo provider")
        env[key] = "demo-key-not-secret"
        base = (
            launcher.fake_server.anthropic_base_url if provider == "anthropic" else launcher.fake_server.openai_base_url
        )
        env[f"{provider.upper()}_BASE_URL"] = base
        modes[provider] = f"offline demo provider at {launcher.fake_server.url}"
    return modes


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _db_dialect(env: dict[str, str]) -> str:
    return env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split(":", 1)[0].split("+", 1)[0]


def prepare(launcher: Launcher, env: dict[str, str]) -> None:
    """Migrate the metadata DB and apply ``airflow_settings.yaml``."""
    log(f"metadata DB dialect: {_db_dialect(env)} (set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to change it)")
    logs = launcher.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "db-migrate.log", "wb") as out:
        result = subprocess.run([_airflow(), "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"'airflow db migrate' failed; see {logs / 'db-migrate.log'}")
    settings_file = launcher.root / "airflow_settings.yaml"
    apply = [sys.executable, "-m", "supervisor_lib.local.apply_settings", str(settings_file)]
    applied = subprocess.run(apply, env=env, capture_output=True, text=True)
    if applied.returncode != 0:
        raise SystemExit(f"applying {settings_file.name} failed:\n{applied.stderr.strip()[-2000:]}")
    log(applied.stdout.strip())


def start_components(launcher: Launcher, env: dict[str, str], topology: Topology | None = None) -> None:
    (launcher.home / "pids").mkdir(exist_ok=True)
    components = (topology or Topology()).components()
    for name, arguments in components:
        _spawn(launcher, name, arguments, env)
    log(f"started {', '.join(name for name, _ in components)}; component logs in {launcher.home / 'logs'}")


def _spawn(launcher: Launcher, name: str, arguments: list[str], env: dict[str, str]) -> None:
    """Start one component, its output appended to ``logs/<name>.log`` and its pid in ``pids/<name>.pid``."""
    out = open(launcher.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns the file from here on
    launcher.processes[name] = subprocess.Popen(
        [_airflow(), *arguments], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    launcher.commands[name] = (arguments, env)
    (launcher.home / "pids" / f"{name}.pid").write_text(str(launcher.processes[name].pid))


#: a component that died is started again at most this many times within ``RESTART_WINDOW_S``; after that,
#: ``make run`` stops (something is wrong that a restart does not fix: its log says what)
MAX_RESTARTS = 3
RESTART_WINDOW_S = 600.0


def _restart(launcher: Launcher, name: str, code: int | None) -> bool:
    """Start the component ``name`` again (it exited with ``code``), unless it died too often lately."""
    now = time.monotonic()
    recent = [at for at in launcher.restarts.get(name, []) if now - at < RESTART_WINDOW_S]
    if name not in launcher.commands or len(recent) >= MAX_RESTARTS:
        return False
    launcher.restarts[name] = [*recent, now]
    where = launcher.home / "logs" / f"{name}.log"
    log(f"the Airflow {name} exited with code {code}; restarting it ({len(recent) + 1} of {MAX_RESTARTS} restarts "
        f"allowed in {RESTART_WINDOW_S / 60:.0f} minutes; its log: {where})")  # fmt: skip
    _spawn(launcher, name, *launcher.commands[name])
    return True


def _request(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def wait_until(what: str, check: Any, launcher: Launcher, timeout: float) -> Any:
    """Poll ``check()`` until it returns a truthy value; fail early when an Airflow component died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in list(launcher.processes.items()):
            if proc.poll() is None:
                continue
            kind = name.rsplit("-", 1)[0]
            others = [n for n, p in launcher.processes.items() if n != name and n.startswith(f"{kind}-")
                      and p.poll() is None]  # fmt: skip
            if name[-1].isdigit() and others:  # one of several workers or triggerers: the others carry on
                log(f"the Airflow {name} exited with code {proc.returncode}; {', '.join(others)} carry on "
                    f"(its log: {launcher.home / 'logs' / (name + '.log')})")  # fmt: skip
                del launcher.processes[name]
                continue
            if _restart(launcher, name, proc.returncode):
                continue
            tail = (launcher.home / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the Airflow {name} exited with code {proc.returncode} while waiting for {what}:\n{tail}")
        try:
            value = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            value = None
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; see {launcher.home / 'logs'}")


def announce_anomaly_scan(env: dict[str, str]) -> None:
    """Say when the anomaly scan runs (its DAG starts unpaused: ``is_paused_upon_creation=False``)."""
    schedule = env.get("SUPERVISOR_ANOMALY_SCAN_SCHEDULE")
    when = f"on {schedule!r}" if schedule else "every 15 minutes"
    log(f"anomaly scan: {SCAN_DAG_ID} {when}; `make demo-history` seeds a month of demo calls to look at")


def run_demo(launcher: Launcher, password: str, dag_id: str) -> str:
    """Trigger ``dag_id`` through the REST API, wait for it to finish and print the outcome."""
    api = f"{launcher.base_url}/api/v2"
    token = _request("POST", f"{launcher.base_url}/auth/token", {"username": "admin", "password": password})[
        "access_token"
    ]
    wait_until(
        f"the DAG processor to load '{dag_id}'",
        lambda: _request("GET", f"{api}/dags/{dag_id}", token=token),
        launcher,
        timeout=180,
    )
    _request("PATCH", f"{api}/dags/{dag_id}", {"is_paused": False}, token=token)
    run = _request("POST", f"{api}/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}}, token=token)
    run_id = run["dag_run_id"]
    log(f"triggered demo run {dag_id} / {run_id}")

    def finished() -> str | None:
        state = _request("GET", f"{api}/dags/{dag_id}/dagRuns/{run_id}", token=token)["state"]
        return state if state in ("success", "failed") else None

    state = wait_until(f"demo run {run_id}", finished, launcher, timeout=300)
    tis = _request("GET", f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances", token=token)["task_instances"]
    for ti in sorted(tis, key=lambda t: t.get("start_date") or ""):
        log(f"  task {ti['task_id']}: {ti['state']}{_outcome(api, token, dag_id, run_id, ti)}")
    log(f"demo run {state.upper()}: {launcher.base_url}/dags/{dag_id}/runs/{run_id}")
    return str(state)


def _outcome(api: str, token: str, dag_id: str, run_id: str, ti: dict[str, Any]) -> str:
    """A few words on what a supervised coding task produced (status, review, patch), from its XCom."""
    if ti["state"] != "success" or ti["map_index"] >= 0:
        return ""
    path = f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries/return_value"
    try:
        value = _request("GET", f"{path}?deserialize=true", token=token).get("value")
    except (urllib.error.URLError, ValueError):
        return ""
    if not isinstance(value, dict) or "status" not in value:
        return ""
    parts = [f"status {value['status']}"]
    if isinstance(value.get("review"), dict):
        parts.append(f"review {value['review'].get('decision')}")
    if value.get("patch"):
        parts.append(f"patch {value['patch']}")
    return " (" + ", ".join(parts) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SUPERVISOR_PORT", "8080")))
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--home", type=Path, default=None, help="the Airflow home (default: .airflow in the project)")
    parser.add_argument("--dags-folder", type=Path, default=None, help="default: dags/ in the project")
    parser.add_argument(
        "--demo-dag", default=os.environ.get("SUPERVISOR_DEMO_DAG", DEMO_DAG_IDS), help="comma-separated DAG ids"
    )
    parser.add_argument("--no-demo", action="store_true", help="start Airflow without triggering the demo run")
    parser.add_argument("--base-path", default="", help="serve Airflow under this path, e.g. /airflow (default: /)")
    parser.add_argument("--exit-after-demo", action="store_true", help="stop everything once the demo run ends")
    parser.add_argument("--reparse", action="store_true", help="re-parse the DAG files of a running `make run` now")
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="local",
                        help="local (default) or celery (Redis broker, PostgreSQL metadata DB)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery; default 2)")
    parser.add_argument("--triggerers", type=int, default=1, help="triggerers, which share deferred calls (default 1)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.triggerers < 1:
        parser.error("--workers and --triggerers take a number of at least 1")
    topology = Topology(args.executor, args.workers, args.triggerers)
    if args.reparse:
        return reparse(args)

    root = args.project_dir.resolve()
    base_path = "/" + args.base_path.strip("/") if args.base_path.strip("/") else ""
    launcher = Launcher(root=root, port=args.port, home=(args.home or root / ".airflow").resolve(), base_path=base_path)
    launcher.home.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C stops everything even when started from a script's background job (where the shell ignores SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        env = airflow_env(launcher.root, launcher.home, args.port, dict(os.environ), args.dags_folder, base_path,
                          topology)  # fmt: skip
        modes = provider_endpoints(env, launcher)
        prepare(launcher, env)
        start_components(launcher, env, topology)
        if topology.executor == "celery":
            broker = env["AIRFLOW__CELERY__BROKER_URL"].rsplit("@", 1)[-1].split("://", 1)[-1]  # no credentials
            log(f"CeleryExecutor: {topology.workers} workers, broker {broker}, "
                f"{env['AIRFLOW__CELERY__WORKER_CONCURRENCY']} task slots each")  # fmt: skip
        wait_until(
            "the API server",
            lambda: _request("GET", f"{launcher.base_url}/api/v2/monitor/health"),
            launcher,
            timeout=120,
        )
        password = json.loads((launcher.home / "simple_auth_manager_passwords.json").read_text())["admin"]
        _banner(launcher, password, modes)
        states = [] if args.no_demo else [run_demo(launcher, password, d) for d in args.demo_dag.split(",") if d]
        state = "skipped" if not states else ("success" if set(states) == {"success"} else "failed")
        announce_anomaly_scan(env)
        if args.exit_after_demo:
            return 0 if state in ("success", "skipped") else 1
        log("Airflow is running. Press Ctrl-C to stop every process started here.")
        wait_until("Ctrl-C", lambda: False, launcher, timeout=float("inf"))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        launcher.stop()


def reparse(args: argparse.Namespace) -> int:
    """Parse every DAG file now and store the result, so a new or edited spec shows at once (the DAG processor
    re-parses each file only every ``[dag_processor] min_file_process_interval``, 30 s by default)."""
    root = args.project_dir.resolve()
    home = (args.home or root / ".airflow").resolve()
    if not home.exists():
        raise SystemExit(f"no Airflow home at {home}: start Airflow with `make run` first")
    env = airflow_env(root, home, args.port, dict(os.environ), args.dags_folder)
    log("parsing the DAG files now (airflow dags reserialize)")
    return subprocess.run([_airflow(), "dags", "reserialize"], env=env).returncode


def _banner(launcher: Launcher, password: str, modes: dict[str, str]) -> None:
    log("=" * 64)
    log(f"Airflow UI:  {launcher.base_url}")
    log(f"Login:       admin / {password}")
    log(f"Supervisor:  {launcher.base_url}/plugin/supervisor  (cost, latency, errors, transcripts)")
    for provider, mode in modes.items():
        log(f"{provider:<12} {mode}")
    log("=" * 64)


if __name__ == "__main__":
    sys.exit(main())
