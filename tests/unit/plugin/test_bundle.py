"""The views' bundle (``supervisor_lib/plugin/static/supervisor.js``) is committed so users need no Node; these tests
prove it was built from the committed source (``supervisor_lib/plugin/ui``) and needs nothing from the internet.

The first test reads the source hash ``npm run build`` stamps into the bundle (``ui/stamp.mjs``) and needs no Node.
The second rebuilds the bundle with Node and npm, from the lock file, and compares it byte for byte; it skips where
Node is missing (a fresh laptop), and CI requires it (``SUPERVISOR_REQUIRE=ui``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from supervisor_lib.plugin.airflow_plugin import BUNDLE, ICON, ICON_DARK, TILE, VIEW, react_apps

PLUGIN = Path(__file__).resolve().parents[3] / "supervisor_lib" / "plugin"
UI, STATIC = PLUGIN / "ui", PLUGIN / "static"
#: what the hash covers: keep in step with ui/stamp.mjs
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "stamp.mjs", "src")
REBUILD = "cd supervisor_lib/plugin/ui && npm ci && npm run build"


def source_hash() -> str:
    files = sorted(
        path.relative_to(UI).as_posix()
        for name in SOURCES
        for path in ([UI / name] if (UI / name).is_file() else (UI / name).rglob("*"))
        if path.is_file()
    )
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\n".encode())
        digest.update((UI / name).read_bytes())
        digest.update(b"\n")
    return digest.hexdigest()


def test_the_committed_bundle_was_built_from_the_committed_source() -> None:
    first = (STATIC / "supervisor.js").read_text().split("\n", 1)[0]
    stamped = re.fullmatch(r"/\* supervisor-ui source-sha256:([0-9a-f]{64}) \(built by: npm run build\) \*/", first)
    assert stamped, f"the bundle has no source stamp: rebuild it ({REBUILD})"
    assert stamped.group(1) == source_hash(), f"the UI source changed since the bundle was built: {REBUILD}"


def test_the_bundle_registers_every_view_the_plugin_declares_and_loads_nothing_remote() -> None:
    bundle = (STATIC / "supervisor.js").read_text()
    names = {app["name"] for app in react_apps()}
    assert names == {VIEW, TILE}
    for name in names:
        assert f'["{name}"]=' in bundle or f".{name}=" in bundle, f"the bundle does not set globalThis[{name!r}]"
    assert {app["bundle_url"] for app in react_apps()} == {BUNDLE}
    assert not BUNDLE.startswith("/"), "a relative bundle_url works under a non-root [api] base_url"
    assert not re.search(r"https?://", bundle), "the bundle must load nothing from a CDN"
    for icon in (ICON, ICON_DARK):
        assert (STATIC / Path(icon).name).is_file()
    # the host's own React, Chakra UI and JSX runtime, never a second copy
    assert bundle.rstrip().endswith("})({},ReactJSXRuntime,ChakraUI,React);")


@pytest.mark.slow
@pytest.mark.ui
@pytest.mark.skipif(shutil.which("npm") is None, reason="needs Node 20+ and npm to rebuild the UI bundle")
def test_rebuilding_from_the_lock_file_gives_the_committed_bundle(tmp_path: Path) -> None:
    copy = tmp_path / "ui"
    shutil.copytree(UI, copy, ignore=shutil.ignore_patterns("node_modules"))
    (tmp_path / "static").mkdir()
    for command in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "build"]):
        done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    rebuilt = (tmp_path / "static" / "supervisor.js").read_bytes()
    assert rebuilt == (STATIC / "supervisor.js").read_bytes(), f"the committed bundle is stale: {REBUILD}"
