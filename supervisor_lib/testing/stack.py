"""A real Airflow (scheduler, DAG processor, triggerer, API server) for end-to-end tests and benchmarks.

``AirflowStack`` runs the same launcher as ``make run`` (:mod:`supervisor_lib.local.run`) in a subprocess, with
its own Airflow home, DAGs folder and metadata DB, and talks to it through the REST API like a user would::

    with AirflowStack(dags_folder=folder, env={"ANTHROPIC_API_KEY": "...", "ANTHROPIC_BASE_URL": url}) as stack:
        run_id = stack.trigger("my_dag", conf={"x": 1})
        assert stack.wait("my_dag", run_id) == "success"
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

READY = "Press Ctrl-C"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStack:
    """Start Airflow for a test or a benchmark; stop every process on exit.

    :param dags_folder: the DAG files to serve.
    :param home: the Airflow home (created); by default a folder next to the DAGs folder.
    :param env: extra environment (provider keys and base URLs, ``AIRFLOW__...`` settings, the metadata DB URL);
        the caller's ``AIRFLOW*`` and ``SUPERVISOR_*`` variables are not inherited.
    :param project_dir: the project whose ``airflow_settings.yaml`` is applied.
    :param base_path: serve Airflow under this path (``/airflow``), as behind a reverse proxy; default ``/``.
    :param launcher_args: more arguments of ``make run``'s launcher, e.g. ``("--executor", "celery")``.
    """

    def __init__(
        self,
        dags_folder: Path,
        *,
        home: Path | None = None,
        env: dict[str, str] | None = None,
        project_dir: Path | None = None,
        start_timeout_s: float = 240.0,
        base_path: str = "",
        launcher_args: Sequence[str] = (),
    ) -> None:
        self.dags_folder = dags_folder
        self.home = home or dags_folder.parent / "airflow_home"
        self.project_dir = project_dir or Path.cwd()
        self.port = _free_port()
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.base_url = f"http://127.0.0.1:{self.port}{self.base_path}"
        self.extra_env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.launcher_args = list(launcher_args)  # e.g. ("--executor", "celery", "--triggerers", "2")
        self.output: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._token: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()

    def start(self) -> AirflowStack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERVISOR_"))}
        env.update(self.extra_env)
        cmd = [
            sys.executable,
            "-m",
            "supervisor_lib.local.run",
            "--no-demo",
            "--port",
            str(self.port),
            "--home",
            str(self.home),
            "--dags-folder",
            str(self.dags_folder),
            "--project-dir",
            str(self.project_dir),
            *(["--base-path", self.base_path] if self.base_path else []),
            *self.launcher_args,
        ]
        self._proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        if not ready.wait(self.start_timeout_s) or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError("Airflow did not start:\n" + "".join(self.output[-60:]))
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.output.append(line)
            if READY in line:
                ready.set()
        ready.set()

    def stop(self) -> None:
        """Stop the launcher, which stops every Airflow component it started."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)  # like Ctrl-C; SIGINT is ignored by background jobs of a shell
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()

    # -- REST API -----------------------------------------------------------------------------------------------
    @property
    def password(self) -> str:
        return str(json.loads((self.home / "simple_auth_manager_passwords.json").read_text())["admin"])

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/v2{path}`` as the admin user; raise ``HTTPError`` on an error status."""
        return self.request(method, f"/api/v2{path}", body)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call any JSON route of the API server (e.g. the plugin's ``/supervisor/api/overview``) as the admin."""
        if self._token is None:
            self._token = self._request(
                "POST", "/auth/token", {"username": "admin", "password": self.password}, auth=False
            )["access_token"]
        return self._request(method, path, body)

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth and self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180.0) -> None:
        """Wait until the DAG processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.api("GET", f"/dags/{dag_id}")
                break
            except urllib.error.HTTPError as err:
                if err.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout_s: float = 300.0) -> str:
        """Wait for a DAG run to finish; return its state."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
            if state in ("success", "failed"):
                return state
            time.sleep(0.5)
        raise TimeoutError(f"{dag_id}/{run_id} did not finish within {timeout_s:.0f}s")

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str, timeout_s: float = 300.0) -> None:
        """Answer a human-in-the-loop task (``human_approval``) once it waits for input, as a person would through
        the REST API (``PATCH .../hitlDetails``), until it is done. Like a person, it answers a few seconds after
        the question appears: an answer within a second of it races Airflow 3.3.2's scheduler, which then retries
        the task (``supervisor_lib/compat.py``, 8); should that still happen, the next try is answered too."""
        deadline = time.monotonic() + timeout_s
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        answered: set[int] = set()
        waiting_since: dict[int, float] = {}
        while time.monotonic() < deadline:
            ti = self.task_instances(dag_id, run_id).get(task_id, {})
            if ti.get("state") in ("success", "failed", "skipped", "upstream_failed"):
                return
            if ti.get("state") == "awaiting_input":
                waiting_since.setdefault(ti["try_number"], time.monotonic())
            asked = waiting_since.get(ti.get("try_number", -1))
            if asked is not None and time.monotonic() - asked >= 3 and ti["try_number"] not in answered:
                try:
                    self.api("PATCH", path, {"chosen_options": [option], "params_input": {}})
                    answered.add(ti["try_number"])
                except urllib.error.HTTPError as err:  # it stopped waiting meanwhile
                    if err.code not in (404, 409):
                        raise
            time.sleep(0.5)
        raise TimeoutError(f"{dag_id}/{run_id}/{task_id} was not answered and done within {timeout_s:.0f}s")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """``{task_id or task_id[map_index]: task instance}`` of a run (every page: the API gives at most
        ``[api] maximum_page_limit``, 100 by default, per request)."""
        tis: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(tis)}")
            tis += page["task_instances"]
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                break
        return {t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]": t for t in tis}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", f"{path}?map_index={map_index}&deserialize=true")["value"]

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Clear task instances (as the UI's "Clear" does) so the scheduler runs them again."""
        body = {"dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": False}
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances", body)

    def logs_text(self) -> str:
        """Everything the components and tasks logged (for secret-leak checks)."""
        return "".join(p.read_text(errors="replace") for p in (self.home / "logs").rglob("*") if p.is_file())
