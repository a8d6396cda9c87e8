"""Plugins as real installed distributions: the example package built and installed into a folder, and small
hand-made distributions (a ``*.dist-info`` with ``entry_points.txt`` and a module) for the failure cases.

The lock file cannot take the example package (resolving it offline fails: uv's cache lacks the metadata of every
platform the lock covers), so the example is installed the way pip would install it, with uv (pinned and
bootstrapped by the Makefile into .tools) with ``--no-deps --target`` (offline when uv's cache holds the build
backend, setuptools, else fetching it once): a real wheel build by setuptools, and
a real ``dist-info`` whose entry points ``importlib.metadata`` reads. The folder goes first on ``sys.path`` and on
``PYTHONPATH``, so Airflow's subprocesses (dag-processor, scheduler, triggerer, workers) see the plugin too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from supervisor_lib import extensions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "supervisor-openai-compatible"


def _uv() -> str:
    bootstrapped = ROOT / ".tools" / "bin" / "uv"
    found = str(bootstrapped) if bootstrapped.is_file() else shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is needed to install the example plugin: run `make env` (it bootstraps .tools/bin/uv)")
    return found


def install_example(target: Path) -> Path:
    """Build and install the example plugin package into ``target`` (no dependencies: the venv has them)."""
    command = [_uv(), "pip", "install", "--no-deps", "--quiet", "--target", str(target), "--python", sys.executable,
               str(EXAMPLE)]  # fmt: skip
    # offline first (uv's cache has setuptools once any build ran on the machine), then from the package index (a
    # fresh machine: the build backend is fetched once)
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "UV_OFFLINE": "1"})
    if result.returncode != 0:
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"installing {EXAMPLE.name} failed:\n{result.stdout}\n{result.stderr}")
    return target


@contextmanager
def on_path(folder: Path) -> Iterator[Path]:
    """``folder`` first on ``sys.path`` and ``PYTHONPATH`` (for subprocesses), and the plugin caches cleared, for
    the duration; then both restored and the caches cleared again."""
    before = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), before]))
    extensions.clear()
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
        extensions.clear()


def make_distribution(
    folder: Path, name: str, entry_points: Mapping[str, Mapping[str, str]], modules: Mapping[str, str]
) -> Path:
    """A minimal installed distribution ``name`` 1.0 in ``folder``: its ``dist-info`` (METADATA and
    ``entry_points.txt``) and ``modules`` (module name → source)."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    sections = [f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
                for group, points in entry_points.items()]  # fmt: skip
    (info / "entry_points.txt").write_text("\n".join(sections))
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    return folder
