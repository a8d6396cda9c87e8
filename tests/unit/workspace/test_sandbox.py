"""The sandbox: tests run without network or secrets, within time, CPU, memory, process and file-size limits."""

from __future__ import annotations

import shlex
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor_lib.workspace import Workspace, WorkspaceError, available_isolation, is_secret_name, run_sandboxed
from supervisor_lib.workspace.sandbox import Isolation, SandboxUnavailableError, _works
from tests.support.optional import INSTALL_BWRAP, NO_USERNS

PYTHON = shlex.quote(sys.executable)
ISOLATED = [mode for mode in ("bwrap", "unshare") if _works(mode)]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(
    params=[
        pytest.param(
            "bwrap", marks=[pytest.mark.security, pytest.mark.skipif(not _works("bwrap"), reason=INSTALL_BWRAP)]
        ),
        pytest.param(
            "unshare", marks=[pytest.mark.security, pytest.mark.skipif(not _works("unshare"), reason=NO_USERNS)]
        ),
    ]
)
def isolated(request: pytest.FixtureRequest) -> str:
    """Each isolating backend in turn (security tests: CI fails when one skips)."""
    return str(request.param)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    path = tmp_path / "box"
    path.mkdir()
    return path


def python(code: str) -> str:
    return f"{PYTHON} -c {shlex.quote(code)}"


def test_a_passing_test_suite(copy_repo: Callable[[str], Path]) -> None:
    result = run_sandboxed(f"{PYTHON} -m pytest -q", copy_repo("clean"), timeout_s=60)

    assert result.passed and result.exit_code == 0 and not result.timed_out and result.killed_reason is None
    assert "2 passed" in result.output
    assert result.isolation == available_isolation()
    assert result.network_isolated is (result.isolation != "none")


def test_a_failing_test_suite_reports_its_exit_code_and_output(copy_repo: Callable[[str], Path]) -> None:
    result = run_sandboxed(f"{PYTHON} -m pytest -q", copy_repo("calculator"), timeout_s=60)

    assert result.exit_code == 1 and not result.passed and result.killed_reason is None
    assert "FAILED tests/test_core.py::test_add" in result.output and "2 failed, 4 passed" in result.output


def test_long_output_keeps_its_head_and_tail_within_the_bound(box: Path) -> None:
    code = "print('START'); [print('x' * 99) for _ in range(2000)]; print('END')"
    result = run_sandboxed(python(code), box, timeout_s=30, output_limit=2000)

    assert len(result.output) < 2200
    assert result.output.startswith("START") and result.output.rstrip().endswith("END")
    assert "bytes of output cut by Supervisor" in result.output


def test_an_infinite_loop_is_killed_at_the_timeout(box: Path) -> None:
    started = time.monotonic()
    result = run_sandboxed("echo started; while :; do :; done", box, timeout_s=1)

    assert result.timed_out and result.exit_code is None and result.killed_reason == "timeout"
    assert time.monotonic() - started < 10
    assert "started" in result.output


def test_a_background_process_does_not_outlive_the_command(box: Path) -> None:
    marker = box / "alive"
    code = f"(sleep 1; touch {shlex.quote(str(marker))}) & echo spawned"
    result = run_sandboxed(code, box, timeout_s=10)
    time.sleep(1.5)
    assert result.exit_code == 0 and not marker.exists()


FORKS = """
import os, time
count = 0
for _ in range(500):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    count += 1
print("forked", count, flush=True)
time.sleep(60)
"""


@pytest.mark.security
def test_a_fork_burst_is_bounded_and_cleaned_up(box: Path) -> None:
    (box / "forks.py").write_text(FORKS)
    result = run_sandboxed(f"{PYTHON} forks.py", box, timeout_s=2, max_procs=20)

    if any("NOT bounded" in warning for warning in result.warnings):
        pytest.skip("no pids cgroup and running as root: process counts cannot be bounded on this machine")
    forked = int(result.output.split("forked")[1].split()[0])
    assert forked < 20 and result.timed_out
    assert not _processes_running(str(box / "forks.py")), "every forked child was killed"


def _processes_running(needle: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in text:
            found.append(text)
    return found


@pytest.fixture
def tcp_server() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


CONNECT = (
    "import socket, sys\ns = socket.socket()\ns.settimeout(3)\nprint('connect', s.connect_ex(('127.0.0.1', {port})))"
)


@pytest.mark.parametrize(
    "mode",
    ISOLATED
    or [pytest.param("bwrap", marks=pytest.mark.skip("neither bwrap nor unshare can create a network namespace here"))],
)
def test_the_network_is_cut_off(box: Path, tcp_server: int, mode: str) -> None:
    result = run_sandboxed(python(CONNECT.format(port=tcp_server)), box, timeout_s=20, isolation=mode)  # type: ignore[arg-type]

    assert result.isolation == mode and result.network_isolated
    assert "connect 0" not in result.output and "connect " in result.output


def test_without_isolation_the_result_says_so_loudly(box: Path, tcp_server: int) -> None:
    result = run_sandboxed(python(CONNECT.format(port=tcp_server)), box, timeout_s=20, isolation="none")

    assert result.isolation == "none" and not result.network_isolated
    assert any(warning.startswith("NO SANDBOX") for warning in result.warnings)
    assert "connect 0" in result.output


def test_secrets_never_reach_the_command(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "OPENAI_API_KEY": "leaked-value-1",
        "GITHUB_TOKEN": "leaked-value-2",
        "MY_SECRET_THING": "leaked-value-3",
        "DB_PASSWORD": "leaked-value-4",
        "AIRFLOW_CONN_PROD": "leaked-value-5",
        "AIRFLOW__CORE__FERNET_KEY": "leaked-value-6",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HARMLESS_SETTING", "visible")

    result = run_sandboxed(
        "env", box, timeout_s=10, env_allow=[*secrets, "HARMLESS_SETTING"], env={"ANTHROPIC_API_KEY": "leaked-value-7"}
    )

    assert "leaked-value" not in result.output
    assert "HARMLESS_SETTING=visible" in result.output and "PYTHONDONTWRITEBYTECODE=1" in result.output
    dropped = next(warning for warning in result.warnings if warning.startswith("secret-looking"))
    assert "OPENAI_API_KEY" in dropped and "ANTHROPIC_API_KEY" in dropped and "leaked-value" not in dropped


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OPENAI_API_KEY", True),
        ("gitlab_token", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("PGPASSWORD", True),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", True),
        ("AIRFLOW_CONN_X", True),
        ("PATH", False),
        ("LANG", False),
        ("TOKENIZERS_PARALLELISM", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_the_file_size_limit(box: Path) -> None:
    result = run_sandboxed(python("open('big', 'wb').write(b'x' * 3 * 1024 * 1024)"), box, timeout_s=20, max_file_mb=1)

    assert result.exit_code != 0 and result.killed_reason == "file_size"
    assert (box / "big").stat().st_size <= 1024 * 1024


def test_the_memory_limit(box: Path) -> None:
    result = run_sandboxed(python("x = bytearray(900 * 1024 * 1024)"), box, timeout_s=20, memory_mb=300)
    assert result.exit_code != 0 and result.killed_reason == "memory"


def test_the_cpu_limit(box: Path) -> None:
    result = run_sandboxed(python("while True: pass"), box, timeout_s=20, cpu_s=1)
    assert result.killed_reason == "cpu" and not result.timed_out and result.duration_s < 10


def test_only_the_workspace_is_writable(box: Path, tmp_path: Path, isolated: str) -> None:
    in_tmp = tmp_path / "outside.txt"  # /tmp is a private tmpfs in the sandbox
    elsewhere = Path("/var/tmp") / f"supervisor-sandbox-test-{uuid.uuid4().hex}"  # /var is not there at all
    home = Path.home() / f"supervisor-sandbox-test-{uuid.uuid4().hex}"
    dags = ROOT / "dags" / f"supervisor-sandbox-test-{uuid.uuid4().hex}.py"
    code = f"touch inside.txt && echo ok-inside; for f in {in_tmp} {elsewhere} {home} {dags} /usr/x; do touch $f; done"
    try:
        result = run_sandboxed(code, box, timeout_s=10, isolation=isolated)  # type: ignore[arg-type]
    finally:
        for path in (elsewhere, home, dags):
            path.unlink(missing_ok=True)
    assert result.isolation == isolated and "ok-inside" in result.output and (box / "inside.txt").exists()
    assert not [p for p in (in_tmp, elsewhere, home, dags) if p.exists()], result.output
    assert "Read-only file system" in result.output  # /usr


def test_a_toolchain_under_tmp_stays_visible(box: Path, tmp_path: Path, isolated: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A checkout (and its virtualenv) under /tmp: the sandbox's private /tmp must not hide it."""
    from supervisor_lib.workspace.jail import EXTRA_READ_ONLY_ENV

    tools = tmp_path / "toolchain" / "bin"
    tools.mkdir(parents=True)
    (tools / "hello").write_text("#!/bin/sh\necho hello-from-the-toolchain\n")
    (tools / "hello").chmod(0o755)
    monkeypatch.setenv(EXTRA_READ_ONLY_ENV, str(tools.parent))
    result = run_sandboxed(f"{tools / 'hello'}", box, timeout_s=10, isolation=isolated)  # type: ignore[arg-type]
    assert result.exit_code == 0 and "hello-from-the-toolchain" in result.output, result.output


def test_what_only_root_may_read_and_the_airflow_home_are_hidden(box: Path, tmp_path: Path, isolated: str) -> None:
    store = tmp_path / "airflow_home" / "analytics.db"
    store.parent.mkdir()
    store.write_text("the store")
    code = f"cat /etc/shadow 2>/dev/null; echo shadow-done; cat {store}; ls /root /home /run /sys 2>&1 | head -3"
    result = run_sandboxed(code, box, timeout_s=10, isolation=isolated)  # type: ignore[arg-type]
    assert result.output.startswith("shadow-done"), result.output  # an empty file in the sandbox
    assert "the store" not in result.output and "No such file" in result.output


def test_unix_sockets_of_local_services_are_out_of_reach(box: Path, tmp_path: Path, isolated: str) -> None:
    path = tmp_path / "service.sock"  # a service's socket, like PostgreSQL's in /run/postgresql
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    abstract = socket.socket(socket.AF_UNIX)
    name = f"supervisor-test-{uuid.uuid4().hex}"
    abstract.bind("\0" + name)
    server.listen()
    abstract.listen()
    sockets = [str(path), "/run/postgresql/.s.PGSQL.5432", "/var/run/postgresql/.s.PGSQL.5432"]
    code = (
        "import socket\n"
        f"for target in {sockets!r} + ['\\0{name}']:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    print('reached' if s.connect_ex(target) == 0 else 'unreachable', target.strip(chr(0)))\n"
    )
    try:
        result = run_sandboxed(python(code), box, timeout_s=10, isolation=isolated)  # type: ignore[arg-type]
    finally:
        server.close()
        abstract.close()
    assert result.output.count("unreachable") == 4 and "reached " not in result.output, result.output


def test_the_command_cannot_raise_its_limits_or_reach_its_cgroup(box: Path, isolated: str) -> None:
    code = "ulimit -H -u unlimited && echo raised; ls /sys/fs/cgroup 2>&1 | head -1; grep CapEff /proc/self/status"
    result = run_sandboxed(code, box, timeout_s=10, max_procs=64, isolation=isolated)  # type: ignore[arg-type]
    assert "raised" not in result.output and "No such file" in result.output
    assert "CapEff:\t0000000000000000" in result.output


def test_a_process_that_leaves_its_group_dies_with_the_command(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_SANDBOX_MIN", "none")
    marker = f"supervisor-orphan-{uuid.uuid4().hex}"
    # the orphan names itself by the marker (its argv) and proves it ran by writing a file, then sleeps
    orphan = "import pathlib, time; pathlib.Path('alive').touch(); time.sleep(30)"
    command = f"setsid {PYTHON} -c {shlex.quote(orphan)} {marker} & while [ ! -e alive ]; do sleep 0.05; done; echo up"
    result = run_sandboxed(command, box, timeout_s=5, isolation="none")
    time.sleep(0.5)
    assert "up" in result.output and (box / "alive").exists(), "the orphan started"
    assert not _processes_running(marker)


def test_no_sandbox_is_refused_unless_the_operator_allows_it(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor_lib.workspace.sandbox._works", lambda mode: mode == "none")
    monkeypatch.setenv("SUPERVISOR_SANDBOX_MIN", "isolated")
    with pytest.raises(SandboxUnavailableError, match="SUPERVISOR_SANDBOX_MIN=none"):
        run_sandboxed("touch ran", box, timeout_s=10)
    assert not (box / "ran").exists()
    monkeypatch.setenv("SUPERVISOR_SANDBOX_MIN", "none")
    assert run_sandboxed("true", box, timeout_s=10).isolation == "none"


def test_an_unavailable_mode_falls_back_with_a_warning(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_SANDBOX_MIN", "none")
    monkeypatch.setattr("supervisor_lib.workspace.sandbox._works", lambda mode: mode == "none")
    result = run_sandboxed("true", box, timeout_s=10, isolation="bwrap")
    assert result.isolation == "none" and "does not work on this machine" in result.warnings[0]


def test_the_worktree_git_link_is_read_only(workspace: Callable[..., Workspace], isolated: str) -> None:
    ws = workspace("clean")
    code = "echo 'gitdir: /elsewhere' > .git; echo changed > greeting/core.py"
    result = run_sandboxed(code, ws.path, timeout_s=10, isolation=isolated)  # type: ignore[arg-type]

    assert (ws.path / ".git").read_text().startswith("gitdir: ") and "/elsewhere" not in (ws.path / ".git").read_text()
    assert result.exit_code == 0 and ws.changed_files() == ["greeting/core.py"]


def test_a_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="is not a directory"):
        run_sandboxed("true", tmp_path / "gone", timeout_s=5)


@pytest.mark.parametrize("mode", [*ISOLATED, "none"])
def test_a_command_killed_by_a_signal_names_it(box: Path, mode: Isolation) -> None:
    # A nested shell: under unshare the outer one is PID 1 of its namespace, which ignores signals it sends itself.
    result = run_sandboxed("/bin/sh -c 'kill -SEGV $$'", box, timeout_s=10, isolation=mode)
    assert result.exit_code in (None, 128 + 11) and result.killed_reason == "signal SIGSEGV"
