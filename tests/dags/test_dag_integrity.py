"""DAG integrity, Astro-style: every DAG file imports cleanly, cheaply, and without network or secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
#: parse budget per DAG file, excluding Airflow's own import (the DAG processor has that pre-loaded)
MAX_PARSE_SECONDS = 1.0
#: DAG files that only report invalid specs as import errors and define no DAG
REPORT_ONLY = {"supervisor_spec_errors.py"}


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("parse_probe.py")), str(DAGS)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _dag_files() -> list[str]:
    return sorted(p.name for p in DAGS.glob("*.py"))


def test_there_are_dag_files() -> None:
    assert "supervisor_demo.py" in _dag_files()


@pytest.mark.parametrize("name", _dag_files())
def test_imports_without_errors_network_or_secrets(parsed: dict[str, Any], name: str) -> None:
    assert parsed[name]["import_errors"] == {}
    assert parsed[name]["dags"] or name in REPORT_ONLY, f"{name} defines no DAG"


@pytest.mark.parametrize("name", _dag_files())
def test_does_not_import_heavy_modules(parsed: dict[str, Any], name: str) -> None:
    assert parsed[name]["heavy_modules"] == [], "provider SDKs, pandas and sklearn must not load at parse time"


@pytest.mark.parametrize("name", _dag_files())
def test_parses_quickly(parsed: dict[str, Any], name: str) -> None:
    assert parsed[name]["seconds"] < MAX_PARSE_SECONDS


@pytest.mark.parametrize("name", _dag_files())
def test_every_dag_has_tags_owner_and_retries(parsed: dict[str, Any], name: str) -> None:
    for dag_id, dag in parsed[name]["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        for task_id, task in dag["tasks"].items():
            assert task["owner"] not in ("", "airflow"), f"{dag_id}.{task_id} has no owner"
            assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"


def test_probe_catches_parse_time_access(tmp_path: Path) -> None:
    """The probe itself must fail a DAG file that reads a Variable or opens a socket while parsing."""
    (tmp_path / "bad_variable.py").write_text(
        "from airflow.sdk import DAG, Variable\nVariable.get('x')\nwith DAG('bad_variable', schedule=None): pass\n"
    )
    (tmp_path / "bad_socket.py").write_text(
        "import socket\nsocket.create_connection(('127.0.0.1', 9))\n"
        "from airflow.sdk import DAG\nwith DAG('bad_socket', schedule=None): pass\n"
    )
    (tmp_path / "heavy.py").write_text(
        "import pandas\nfrom airflow.sdk import DAG\nwith DAG('heavy', schedule=None): pass\n"
    )
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("parse_probe.py")), str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    files = json.loads(result.stdout.strip().splitlines()[-1])
    assert "a Variable accessed" in next(iter(files["bad_variable.py"]["import_errors"].values()))
    assert "the network accessed" in next(iter(files["bad_socket.py"]["import_errors"].values()))
    assert files["heavy.py"]["heavy_modules"] == ["pandas"]
