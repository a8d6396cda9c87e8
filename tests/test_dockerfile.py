"""The Dockerfile cannot be built here (no Docker engine), so check what can be checked."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    rows = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def _users() -> list[tuple[str, str, str]]:
    """(user, instruction, arguments) for every instruction: the user it runs as (the base image's ``airflow``
    until a ``USER`` changes it)."""
    user, rows = "airflow", []
    for ins, args in _instructions():
        if ins == "USER":
            user = args.split(":", 1)[0].strip()
        rows.append((user, ins, args))
    return rows


def _locked_version(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def test_base_image_is_official_airflow_matching_the_lock() -> None:
    froms = [args for ins, args in _instructions() if ins == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(3\.\d+)", froms[0])
    assert match, froms[0]
    assert match.group(1) == _locked_version("apache-airflow")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={match.group(2)}" in requires or match.group(2) >= "3.11", requires


def test_every_copied_path_exists() -> None:
    copies = [args for ins, args in _instructions() if ins == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source.rstrip("/")).exists(), f"Dockerfile copies {source}, which does not exist"


def test_bubblewrap_is_installed_as_root_for_the_sandbox() -> None:
    """The validation sandbox's preferred backend (supervisor_lib/workspace/sandbox.py) is in the image."""
    root_runs = [args for user, ins, args in _users() if ins == "RUN" and user in ("root", "0")]
    installs = [args for args in root_runs if re.search(r"\bapt-get install\b", args)]
    assert installs, "no apt-get install runs as root"
    words = shlex.split(installs[0])
    assert "bubblewrap" in words and "-y" in words and "--no-install-recommends" in words, installs[0]
    assert re.search(r"apt-get update\s*&&", installs[0]), "apt-get install needs a fresh package list"
    assert "rm -rf /var/lib/apt/lists/*" in installs[0], "the package lists must not stay in the layer"
    # nothing but system packages runs as root
    assert all("pip" not in args and "uv " not in args for args in root_runs), root_runs


def test_user_is_switched_back_to_airflow() -> None:
    """The official image runs as ``airflow`` (its pip refuses root); every step after the apt-get is ``airflow``'s
    again, and so is the image's final user."""
    users = [args.split(":", 1)[0].strip() for ins, args in _instructions() if ins == "USER"]
    assert users and users[-1] == "airflow", users
    for user, ins, args in _users():
        if ins in ("COPY", "ADD") or (ins == "RUN" and ("pip" in args or "uv " in args)):
            assert user == "airflow", f"{ins} {args} runs as {user}"


def test_uv_version_matches_the_makefile() -> None:
    make_version = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert make_version and f"uv=={make_version.group(1)}" in DOCKERFILE


@pytest.mark.slow
def test_install_steps_work_in_a_venv(tmp_path: Path) -> None:
    """Run the Dockerfile's RUN steps, as written, against a fresh venv standing in for the image's Python."""
    src = tmp_path / "src"
    for ins, args in _instructions():
        if ins == "COPY" and "${SUPERVISOR_SRC}" in args:
            for source in [a for a in shlex.split(args) if not a.startswith("--")][:-1]:
                target = src / source.rstrip("/") if source.endswith("/") else src / source
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():  # what .dockerignore leaves out never reaches the image
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns(*_dockerignored()))
                else:
                    shutil.copy(ROOT / source, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "SUPERVISOR_SRC": str(src),
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    for user, ins, args in _users():
        if ins == "RUN" and user == "airflow":  # root's steps install system packages, not ours: not run here
            result = subprocess.run(["bash", "-c", args], env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, result.stderr[-3000:]
    check = "import importlib.metadata as m, supervisor_lib; print(m.version('apache-airflow'))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == _locked_version("apache-airflow"), out.stderr[-2000:]
    # the installed package registers the plugin and carries the views' bundle (no Node in the image)
    plugin = (
        "import importlib.metadata as m, pathlib, supervisor_lib.plugin as p;"
        "print([e.value for e in m.entry_points(group='airflow.plugins')]);"
        "print(sorted(f.name for f in (pathlib.Path(p.__file__).parent / 'static').iterdir()))"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", plugin], capture_output=True, text=True, env=env)
    points, static = out.stdout.strip().splitlines()
    assert points == "['supervisor_lib.plugin.airflow_plugin:SupervisorPlugin']", out.stderr[-2000:]
    assert "supervisor.js" in static and "icon.svg" in static
    assert not list((src / "supervisor_lib").rglob("node_modules")), "node_modules must not reach the image"


def _dockerignored() -> list[str]:
    """The name patterns of .dockerignore (``**/x`` and ``x`` both as ``x``)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().removeprefix("**/") for line in lines if line.strip() and not line.startswith("#")]
