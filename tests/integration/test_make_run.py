"""``make run``'s launcher, end to end: Airflow comes up, the demo run goes green, Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DATABASES, ROOT
from tests.support.databases import fresh_database_url
from tests.support.ports import free_port

pytestmark = pytest.mark.slow


def _launcher_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERVISOR_"))}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = fresh_database_url(DATABASES, "supervisor_it_launcher", tmp_path)
    return env


def test_demo_run_is_green_and_everything_stops(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor_lib.local.run",
            "--exit-after-demo",
            "--port",
            str(port),
            "--home",
            str(home),
            "--project-dir",
            str(ROOT),
        ],
        env=_launcher_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=480,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    dialect = DATABASES.dialect
    assert f"metadata DB dialect: {dialect}" in out
    assert "ANTHROPIC_API_KEY is not set" in out and "offline demo provider" in out
    assert f"Airflow UI:  http://127.0.0.1:{port}" in out
    password = json.loads((home / "simple_auth_manager_passwords.json").read_text())["admin"]
    assert f"Login:       admin / {password}" in out
    assert "task ask_claude: success" in out and "task ask_gpt: success" in out
    assert "demo run SUCCESS: " in out and "/dags/supervisor_demo/runs/" in out
    # the supervised bug fix of include/repos/payments: green validation, an approving review, a patch artifact
    assert "task fix_fee: success (status passed, review approve, patch " in out
    assert "task review_fix: success" in out and "/dags/payments_bugfix/runs/" in out
    assert out.count("demo run SUCCESS") == 2
    # the demo spec's budget block holds for each call of the fix (its author's and its reviewer's), checked first
    [fix_log] = (home / "logs" / "dag_id=payments_bugfix").glob("run_id=*/task_id=fix_fee/attempt=1.log")
    fix_text = fix_log.read_text()
    assert "budget check for anthropic/claude-sonnet-4-6 (named by the task, not routed)" in fix_text
    assert "budget check for openai/gpt-5-mini (named by the task, not routed)" in fix_text
    this_run = {":8080": f":{port}", "dialect: sqlite": f"dialect: {dialect}", "/.airflow/": "/home/"}
    _assert_readme_sample_matches(out, this_run)
    components = (home / "logs").glob("*.log")
    assert not [p.name for p in components if "InsecureKeyLengthWarning" in p.read_text(errors="replace")]
    with pytest.raises(OSError):  # the API server is gone
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)


def _assert_readme_sample_matches(out: str, this_run: dict[str, str]) -> None:
    """Each line of the README's sample output is printed, in the README's order (``...`` and ``<...>`` stand for
    what differs per run, ``this_run`` maps what the README shows to this run's values; --exit-after-demo never
    says "Ctrl-C")."""
    readme = (ROOT / "README.md").read_text()
    sample = readme.split("### What you will see with `make run`", 1)[1].split("```", 2)[1]
    position = 0
    for line in sample.strip().splitlines():
        if "Press Ctrl-C" in line:
            continue
        for shown, actual in this_run.items():
            line = line.replace(shown, actual)
        pattern = re.escape(line.strip())
        pattern = re.sub(r"\\\.\\\.\\\.", r"\\S*", pattern)  # ...
        pattern = re.sub(r"<[^>]*>", r"\\S+", pattern.replace("\\<", "<").replace("\\>", ">"))
        found = re.compile(pattern).search(out, position)
        assert found, f"the README's sample line is not printed (in this order) by make run: {line.strip()!r}"
        position = found.end()


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supervisor_lib.local.run",
            "--no-demo",
            "--port",
            str(port),
            "--home",
            str(tmp_path / "home"),
            "--project-dir",
            str(ROOT),
        ],
        env=_launcher_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    else:
        pytest.fail("launcher ended before Airflow was ready:\n" + "".join(lines[-50:]))
    started = _descendants(proc.pid)
    assert len(started) >= 4, f"expected the Airflow components as children, found {started}"
    exposed = [addr for addr in _listening([*started, proc.pid]) if not addr.startswith(("127.", "::1", "[::1]"))]
    assert exposed == [], f"make run listens beyond loopback: {exposed}"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    time.sleep(1)
    alive = [pid for pid in started if _alive(pid)]
    assert alive == [], f"processes left running after Ctrl-C: {alive}"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children in new sessions included), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _listening(pids: list[int]) -> list[str]:
    """The addresses (``ip:port``) on which these processes listen for TCP connections, from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append(f"{_address(address, width)}:{int(port, 16)}")
    return found


def _address(hex_address: str, width: int) -> str:
    import ipaddress
    import struct

    raw = bytes.fromhex(hex_address)
    words = b"".join(struct.pack("<I", *struct.unpack(">I", raw[i : i + 4])) for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words if width == 32 else words[:4]))


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()
