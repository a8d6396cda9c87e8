"""The sandbox, per backend: hostile validation commands stay within the limits ``run_sandboxed`` states.

Every case runs through :func:`supervisor_lib.workspace.run_sandboxed` (what the coding loop validates with) under
each isolating backend that works here (``bwrap``, ``unshare``); a backend that does not work gives one "skipped"
row per case, with the reason. The backend ``none`` has no isolation by design: the suite checks that validation is
refused without it unless the operator allows it (``SUPERVISOR_SANDBOX_MIN``), that it is loud when allowed, and that
the limits that do not depend on isolation (time, CPU, memory, output, file size, leftover processes, the scrubbed
environment) still hold; a fork bomb is never run without isolation. Network checks only touch this machine's own
addresses; the "outside" address is probed with a UDP ``connect``, which picks a route and sends no packet.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from benchmarks.reliability import Section, timed
from benchmarks.reliability.patches import digest
from supervisor_lib.workspace import RepoSource, SandboxResult, Workspace, run_git, run_sandboxed
from supervisor_lib.workspace import sandbox as sandbox_module
from supervisor_lib.workspace.sandbox import MIN_ISOLATION_ENV, Isolation, SandboxUnavailableError

ROOT = Path(__file__).resolve().parents[2]
HEADERS = ["backend", "case", "outcome", "limit stated", "observed"]
ISOLATING: tuple[Isolation, ...] = ("bwrap", "unshare")
PYTHON = shlex.quote(sys.executable)
MB = 1024 * 1024
#: a documentation address (RFC 5737): only a UDP connect (route lookup, no packet) is ever aimed at it
OUTSIDE_ADDRESS = "198.51.100.1"
UNAVAILABLE = {
    "bwrap": "bubblewrap is missing or cannot create namespaces here (apt-get install -y bubblewrap)",
    "unshare": "unshare cannot create user namespaces here: allow unprivileged user namespaces (or run as root)",
}


@dataclass(frozen=True)
class Sizes:
    """How hard each case pushes; ``quick`` is what ``make test`` runs."""

    loop_timeout_s: float
    bomb_timeout_s: float
    output_mb: int
    output_cap: int
    fork_attempts: int
    max_procs: int = 64
    max_file_mb: int = 8
    memory_mb: int = 256


QUICK = Sizes(loop_timeout_s=1.0, bomb_timeout_s=2.0, output_mb=20, output_cap=1_000_000, fork_attempts=300)
FULL = Sizes(loop_timeout_s=5.0, bomb_timeout_s=5.0, output_mb=50, output_cap=1_000_000, fork_attempts=1000)


@dataclass
class Verdict:
    """One case under one backend: contained or not, the limit it is held to, and what was seen."""

    contained: bool
    limit: str
    observed: str


@dataclass
class Lab:
    """A real worktree, a scratch folder, a sentinel folder outside both, and a token naming everything made."""

    tmp: Path
    box: Path
    outside: Path
    ws: Workspace
    cache: Path
    token: str
    sizes: Sizes


@contextmanager
def open_lab(sizes: Sizes) -> Iterator[Lab]:
    """Build the worktree (``RepoSource.resolve`` + ``Workspace.create``) and the folders; remove them after."""
    with tempfile.TemporaryDirectory(prefix="reliability-sandbox-") as name:
        tmp = Path(name).resolve()
        source = tmp / "source"
        (source / "pkg").mkdir(parents=True)
        (source / "pkg" / "core.py").write_text("x = 1\n")
        run_git(["init", "--quiet", "--initial-branch=main"], source)
        run_git(["add", "--all"], source)
        run_git(["commit", "--quiet", "-m", "initial"], source)
        cache = RepoSource.resolve(str(source), tmp / "cache")
        ws = Workspace.create(cache, "HEAD", tmp / "workspaces", "ws", keep="never")
        for folder in ("box", "outside"):
            (tmp / folder).mkdir()
        try:
            yield Lab(tmp, tmp / "box", tmp / "outside", ws, cache, uuid.uuid4().hex[:12], sizes)
        finally:
            ws.remove()


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, for ``None``, unset) environment variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def python(code: str) -> str:
    """The shell command that runs ``code`` with this interpreter (the sandbox shows its toolchain)."""
    return f"{PYTHON} -c {shlex.quote(code)}"


def sandboxed(backend: Isolation, command: str, cwd: Path, **limits: object) -> SandboxResult:
    """``run_sandboxed`` under ``backend`` (timeout 20 s unless given); it must really use that backend."""
    limits.setdefault("timeout_s", 20.0)
    result = run_sandboxed(command, cwd, isolation=backend, **limits)  # type: ignore[arg-type]
    if result.isolation != backend:
        raise AssertionError(f"asked for {backend}, ran under {result.isolation}: {result.warnings}")
    return result


# -- the network --------------------------------------------------------------------------------------------------
def _servers(stack: contextlib.ExitStack) -> dict[str, tuple[str, int, socket.AddressFamily]]:
    """Listening TCP servers on this machine's loopbacks and its own outward address (traffic stays here)."""
    found = {}
    hosts = [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6), (_own_address(), socket.AF_INET)]
    for host, family in hosts:
        with contextlib.suppress(OSError):
            server = stack.enter_context(socket.socket(family))
            server.bind((host, 0))
            server.listen()
            found[host] = (host, server.getsockname()[1], family)
    return found


def _own_address() -> str:
    """This machine's outward address: a UDP connect picks the route and sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((OUTSIDE_ADDRESS, 9))
        except OSError:
            return "127.0.0.2"
        return str(probe.getsockname()[0])


CONNECT = """
import socket, sys
for host, port, family in {targets!r}:
    s = socket.socket(family)
    s.settimeout(3)
    print("tcp", host, s.connect_ex((host, port)))
"""


def network_loopback(lab: Lab, backend: Isolation) -> Verdict:
    """Services listening on this machine (127.0.0.1, ::1, its own address) must be out of reach."""
    with contextlib.ExitStack() as stack:
        targets = [(host, port, int(family)) for host, port, family in _servers(stack).values()]
        control = [_connect(host, port, family) for host, port, family in targets]
        result = sandboxed(backend, python(CONNECT.format(targets=targets)), lab.box)
    codes = dict(re.findall(r"^tcp (\S+) (-?\d+)$", result.output, re.M))
    reached = [host for host, code in codes.items() if code == "0"]
    answered = sum(code == 0 for code in control)
    contained = len(codes) == len(targets) and not reached and answered == len(targets)
    shown = ", ".join(f"{host}: {_errno(code)}" for host, code in codes.items()) or result.output[:200]
    seen = f"{len(codes) - len(reached)} of {len(targets)} listening servers unreachable ({shown}); "
    return Verdict(
        contained,
        "own network namespace: no host service reachable",
        seen + f"{answered} of {len(targets)} answer from the host",
    )


def _connect(host: str, port: int, family: int) -> int:
    with socket.socket(family) as client:
        client.settimeout(3)
        return client.connect_ex((host, port))


def _errno(code: str) -> str:
    with contextlib.suppress(ValueError):
        return os.strerror(int(code)) if int(code) else "connected"
    return code


ROUTE = f"""
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("route", u.connect_ex(({OUTSIDE_ADDRESS!r}, 9)))
print("interfaces", ",".join(name for _, name in socket.if_nameindex()))
"""


def network_outside(lab: Lab, backend: Isolation) -> Verdict:
    """No route to any outside address, and no interface but a loopback of its own."""
    result = sandboxed(backend, python(ROUTE), lab.box)
    route = re.search(r"^route (-?\d+)$", result.output, re.M)
    interfaces = re.search(r"^interfaces (.*)$", result.output, re.M)
    contained = bool(route and route.group(1) != "0" and interfaces and interfaces.group(1) == "lo")
    seen = f"route to {OUTSIDE_ADDRESS}: {_errno(route.group(1)) if route else '?'}; interfaces: "
    seen += interfaces.group(1) if interfaces else result.output[:200]
    return Verdict(contained and result.network_isolated, "no route out; network_isolated=True", seen)


# -- UNIX sockets ----------------------------------------------------------------------------------------------------
UNIX = """
import socket
for target in {targets!r}:
    s = socket.socket(socket.AF_UNIX)
    print("unix", "reached" if s.connect_ex(target) == 0 else "unreachable", repr(target))
"""


def unix_sockets(lab: Lab, backend: Isolation) -> Verdict:
    """A listening socket file outside the workspace, an abstract socket, and PostgreSQL's socket if present."""
    with contextlib.ExitStack() as stack:
        targets = [str(lab.outside / "service.sock"), f"\0supervisor-reliability-{lab.token}"]
        (lab.outside / "service.sock").unlink(missing_ok=True)  # left by the previous backend's run
        for target in targets:
            server = stack.enter_context(socket.socket(socket.AF_UNIX))
            server.bind(target)
            server.listen()
        targets += [p for p in ("/var/run/postgresql/.s.PGSQL.5432", "/run/postgresql/.s.PGSQL.5432") if _live(p)]
        answered = sum(_live(target) for target in targets)
        result = sandboxed(backend, python(UNIX.format(targets=targets)), lab.box)
    unreachable = result.output.count("unix unreachable")
    names = ", ".join(t.replace("\0", "@") for t in targets)
    ok = unreachable == answered == len(targets) and "unix reached" not in result.output
    seen = f"{unreachable} of {len(targets)} unreachable ({names}); {answered} answer from the host"
    return Verdict(ok, "no UNIX socket outside the sandbox reachable", seen)


def _live(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as client:
        return client.connect_ex(path) == 0


# -- the filesystem --------------------------------------------------------------------------------------------------
def writes_outside(lab: Lab, backend: Isolation) -> Verdict:
    """Writes to the sentinel, /var/tmp, home, the project, /usr, the worktree's .git link and the cache's hooks.

    Judged on the host: a write that lands in the sandbox's own private view (its /var/tmp tmpfs, bubblewrap's
    scratch root) is discarded with it, so it counts as contained; the row says where that happened."""
    name = f"supervisor-reliability-{lab.token}"
    targets = [
        lab.outside / name,
        Path("/var/tmp") / name,
        Path.home() / name,
        ROOT / "dags" / f"{name}.py",
        Path("/usr/local") / name,
        lab.cache / "hooks" / "pre-commit",
    ]
    before = (digest(lab.cache), digest(lab.ws.path / ".git"))
    lines = [f"(echo owned > {shlex.quote(str(t))}) 2>/dev/null && echo wrote {t} || echo refused {t}" for t in targets]
    lines += [
        "(echo 'gitdir: /elsewhere' > .git) 2>/dev/null && echo wrote .git || echo refused .git",
        "git config core.hooksPath /tmp/evil 2>/dev/null && echo wrote git-config || echo refused git-config",
        f"echo ok > inside-{lab.token} && echo wrote-inside",
    ]
    try:
        result = sandboxed(backend, "\n".join(lines), lab.ws.path)
    finally:
        reached = [str(t) for t in targets if t.exists()]
        for path in reached:
            Path(path).unlink()
    if (digest(lab.cache), digest(lab.ws.path / ".git")) != before:
        reached.append("the cache repository or the worktree's .git link")
    inside = (lab.ws.path / f"inside-{lab.token}").exists()
    lab.ws.reset()
    home = str(Path.home())  # shown as ~: the figures go into docs/reliability.md, not this machine's paths
    private = [line.split(" ", 1)[1].replace(home, "~", 1) for line in result.output.splitlines()
               if line.startswith("wrote /")]  # fmt: skip
    seen = f"{len(reached)} of {len(targets) + 2} writes reached the host (.git link, cache hooks, git config included)"
    seen += f"; {len(private)} landed in the sandbox's private view, discarded: {', '.join(private)}" if private else ""
    seen += "; the workspace was writable" if inside else "; the workspace was NOT writable"
    return Verdict(not reached and inside, "only the workspace is writable; its .git link is read-only", seen)


def airflow_home(lab: Lab, backend: Isolation) -> Verdict:
    """A fake Airflow home holding a key, the real one if set, the project's settings, a file in the home folder."""
    home = lab.outside / "airflow_home"
    home.mkdir(exist_ok=True)
    (home / "airflow.cfg").write_text(f"[core]\nfernet_key = leaked-{lab.token}\n")
    planted = Path.home() / f".supervisor-reliability-{lab.token}"
    planted.write_text(f"leaked-{lab.token}\n")
    paths = [home / "airflow.cfg", ROOT / "airflow_settings.yaml", planted]
    paths += [Path(p) for p in sorted({os.environ.get(n, "") for n in ("AIRFLOW_HOME", "SUPERVISOR_HOME")} - {""})]
    lines = [f"cat {shlex.quote(str(p))} 2>/dev/null; test -e {shlex.quote(str(p))} && echo visible {p}" for p in paths]
    try:
        result = sandboxed(backend, "\n".join([*lines, "echo shadow $(cat /etc/shadow 2>/dev/null | wc -c)"]), lab.box)
    finally:
        planted.unlink()
    visible = re.findall(r"^visible (.*)$", result.output, re.M)
    shadow = re.search(r"^shadow (\d+)", result.output, re.M)
    ok = f"leaked-{lab.token}" not in result.output and not visible and bool(shadow and shadow.group(1) == "0")
    seen = (
        f"{len(paths) - len(visible)} of {len(paths)} absent (a fake Airflow home with a key, airflow_settings.yaml, "
    )
    seen += f"a file in {Path.home()}, $AIRFLOW_HOME/$SUPERVISOR_HOME if set); /etc/shadow reads "
    return Verdict(
        ok,
        "no Airflow home, project or home folder; root-only files empty",
        seen + (f"{shadow.group(1)} bytes" if shadow else "?") + (f"; VISIBLE: {visible}" if visible else ""),
    )


# -- secrets ---------------------------------------------------------------------------------------------------------
SECRET_NAMES = (
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
    "MY_SECRET_THING",
    "DB_PASSWORD",
    "AIRFLOW_CONN_PROD",
    "AIRFLOW__CORE__FERNET_KEY",
    "AWS_SECRET_ACCESS_KEY",
)


def secrets_env(lab: Lab, backend: Isolation) -> Verdict:
    """Secret-looking variables never reach the command, even allowlisted or passed explicitly."""
    values = {name: f"leaked-{lab.token}-{n}" for n, name in enumerate(SECRET_NAMES)}
    with environment(**values, HARMLESS_SETTING="visible"):
        result = sandboxed(
            backend,
            "env",
            lab.box,
            env_allow=[*SECRET_NAMES, "HARMLESS_SETTING"],
            env={"ANTHROPIC_API_KEY": f"leaked-{lab.token}-x"},
        )
    leaked = result.output.count(f"leaked-{lab.token}")
    warned = any(w.startswith("secret-looking") and "ANTHROPIC_API_KEY" in w for w in result.warnings)
    ok = not leaked and warned and "HARMLESS_SETTING=visible" in result.output
    return Verdict(
        ok,
        "allowlist only; secret names dropped even when allowlisted",
        f"{len(values) + 1 - leaked} of {len(values) + 1} secrets absent (allowlisted or passed); "
        "the drop is named in the warnings; an ordinary allowlisted variable passes",
    )


def secrets_proc(lab: Lab, backend: Isolation) -> Verdict:
    """Another process's environment (a worker holding a key) through /proc/*/environ."""
    secret = f"leaked-{lab.token}-proc"
    holder = _start_holder(secret)
    try:
        readable = _environ_shows(holder.pid, secret)
        result = sandboxed(backend, "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c leaked-", lab.box)
    finally:
        holder.kill()
        holder.wait()
    found = re.search(r"(\d+)\s*$", result.output.strip())
    ok = readable and secret not in result.output and bool(found and found.group(1) == "0")
    return Verdict(
        ok,
        "own PID namespace: no other process visible",
        f"a process holding a key outside: its /proc environ read from the host, not from inside "
        f"({found.group(1) if found else '?'} matches)",
    )


def _environ_shows(pid: int, secret: str, timeout_s: float = 5.0) -> bool:
    """Whether the host reads ``secret`` in the process's environment (once it has exec'ed: right after the fork its
    environment is still the parent's copy)."""
    deadline = time.monotonic() + timeout_s
    while secret.encode() not in Path(f"/proc/{pid}/environ").read_bytes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _start_holder(secret: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], env={"PATH": os.defpath, "OPENAI_API_KEY": secret})


# -- processes -------------------------------------------------------------------------------------------------------
class PidsWatch:
    """Samples the pids cgroup ``run_sandboxed`` makes for this process: the highest ``pids.peak`` seen."""

    def __init__(self) -> None:
        self.peak = 0
        self.base = sandbox_module._pids_cgroup_base()  # None: no cgroup (RLIMIT_NPROC bounds a non-root user)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PidsWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while self.base and not self._stop.wait(0.02):
            for group in self.base.glob(f"supervisor-sandbox-{os.getpid()}-*"):
                for name in ("pids.peak", "pids.current"):
                    with contextlib.suppress(OSError, ValueError):
                        self.peak = max(self.peak, int((group / name).read_text()))


FORKS = """
import os, sys, time
count = 0
for _ in range({attempts}):
    try:
        pid = os.fork()
    except OSError as err:
        print("fork refused:", err.strerror, flush=True)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    count += 1
print("forked", count, flush=True)
time.sleep(60)
"""


def fork_bomb(lab: Lab, backend: Isolation) -> Verdict:
    """A burst of forks (bounded in attempts, so a broken limit cannot take the machine) against ``max_procs``."""
    sizes = lab.sizes
    script = lab.box / f"forks-{lab.token}.py"
    script.write_text(FORKS.format(attempts=sizes.fork_attempts))
    with PidsWatch() as watch:
        result = sandboxed(
            backend, f"{PYTHON} {script.name}", lab.box, timeout_s=sizes.bomb_timeout_s, max_procs=sizes.max_procs
        )
    forked = re.search(r"forked (\d+)", result.output)
    left = survivors(lab.token)
    ok = bool(forked) and watch.peak <= sizes.max_procs and int(forked.group(1) if forked else 0) < sizes.max_procs
    return Verdict(
        ok and not left and result.timed_out,
        f"pids ≤ {sizes.max_procs}",
        f"peaked at {watch.peak} ({forked.group(1) if forked else '?'} children forked, then "
        f"fork() failed); all killed at the {sizes.bomb_timeout_s:g} s timeout, {len(left)} left running",
    )


def shell_fork_bomb(lab: Lab, backend: Isolation) -> Verdict:
    """The classic ``b() { b | b & }; b``, unbounded in attempts: only the pids limit and the timeout stop it."""
    sizes = lab.sizes
    (lab.box / f"bomb-{lab.token}.sh").write_text("b() { b | b & }\nb\nsleep 60\n")
    with PidsWatch() as watch:
        result = sandboxed(
            backend, f"sh bomb-{lab.token}.sh", lab.box, timeout_s=sizes.bomb_timeout_s, max_procs=sizes.max_procs
        )
    left = survivors(lab.token)
    ok = (0 < watch.peak <= sizes.max_procs or not watch.base) and not left and result.timed_out
    return Verdict(
        ok,
        f"pids ≤ {sizes.max_procs}",
        f"peaked at {watch.peak}; killed at {result.duration_s:.1f} s "
        f"(timeout {sizes.bomb_timeout_s:g} s), {len(left)} left running",
    )


def survivors(token: str) -> list[int]:
    """Processes whose command line carries ``token``: SIGKILLed here (they are ours) and returned."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if token.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return found


def left_running(lab: Lab, backend: Isolation) -> Verdict:
    """Background processes the command leaves: plain ``&``, ``setsid``, ``nohup``, no environment, double fork."""
    sleeper = f"{PYTHON} -c 'import time; time.sleep(60)'"
    ways = {
        "&": f"{sleeper} {lab.token}-bg &",
        "setsid": f"setsid {sleeper} {lab.token}-setsid &",
        "nohup": f"nohup {sleeper} {lab.token}-nohup >/dev/null 2>&1 &",
        "setsid env -i": f"setsid env -i {sleeper} {lab.token}-noenv &",
        "double fork": f'sh -c "{sleeper} {lab.token}-orphan &" &',
    }
    command = "\n".join([*ways.values(), "sleep 0.5", "echo started"])
    result = sandboxed(backend, command, lab.box, timeout_s=20)
    time.sleep(0.3)
    left = survivors(lab.token)
    ok = "started" in result.output and not left
    return Verdict(
        ok,
        "nothing outlives the command",
        f"{len(ways) - len(left)} of {len(ways)} background processes gone when the command ended ({', '.join(ways)})",
    )


# -- time, CPU, memory, output, file size ---------------------------------------------------------------------------
def infinite_loop(lab: Lab, backend: Isolation) -> Verdict:
    """A shell loop that never ends: killed at the wall-clock timeout."""
    timeout = lab.sizes.loop_timeout_s
    result = sandboxed(backend, "echo started; while :; do :; done", lab.box, timeout_s=timeout)
    ok = result.timed_out and result.killed_reason == "timeout" and result.duration_s < timeout + 5
    return Verdict(ok, f"timeout {timeout:g} s", f"killed at {result.duration_s:.1f} s ({result.killed_reason})")


def cpu_limit(lab: Lab, backend: Isolation) -> Verdict:
    """A CPU spin with a long timeout: ``RLIMIT_CPU`` ends it first."""
    result = sandboxed(backend, python("while True: pass"), lab.box, cpu_s=1, timeout_s=30)
    ok = result.killed_reason == "cpu" and not result.timed_out
    return Verdict(
        ok, "CPU 1 s per process", f"killed by SIGXCPU at {result.duration_s:.1f} s wall ({result.killed_reason})"
    )


def memory_limit(lab: Lab, backend: Isolation) -> Verdict:
    """An allocation far over ``memory_mb``: refused by ``RLIMIT_AS``, named ``memory``."""
    mb = lab.sizes.memory_mb
    result = sandboxed(backend, python("x = bytearray(900 * 1024 * 1024)"), lab.box, memory_mb=mb)
    ok = result.exit_code != 0 and result.killed_reason == "memory"
    return Verdict(ok, f"address space {mb} MB", f"a 900 MB allocation failed ({result.killed_reason})")


def unbounded_output(lab: Lab, backend: Isolation) -> Verdict:
    """Tens of MB on stdout: only the head and tail, ``output_limit`` bytes in all, are kept."""
    sizes = lab.sizes
    command = f"head -c {sizes.output_mb * MB} /dev/zero | tr '\\0' x; echo; echo END"
    result = sandboxed(backend, command, lab.box, output_limit=sizes.output_cap)
    return _output_verdict(result, sizes.output_cap, f"{sizes.output_mb} MB written")


def endless_output(lab: Lab, backend: Isolation) -> Verdict:
    """``yes`` until the timeout: memory stays bounded by the output cap whatever the volume."""
    timeout = lab.sizes.loop_timeout_s
    result = sandboxed(backend, "yes", lab.box, output_limit=lab.sizes.output_cap, timeout_s=timeout)
    return _output_verdict(result, lab.sizes.output_cap, f"`yes` for {timeout:g} s")


def _output_verdict(result: SandboxResult, cap: int, what: str) -> Verdict:
    """Kept bytes against the cap; the total comes from the marker that says how much was cut."""
    cut = re.search(r"\[\.\.\. (\d+) bytes of output cut", result.output)
    total = len(result.output.encode()) + int(cut.group(1)) if cut else len(result.output.encode())
    kept = len(result.output.encode())
    ok = bool(cut) and kept <= cap + 200
    return Verdict(ok, f"output cap {cap / 1e6:g} MB", f"kept {kept / 1e6:.2f} MB of {total / 1e6:.1f} MB ({what})")


def huge_file(lab: Lab, backend: Isolation) -> Verdict:
    """A write ten times ``max_file_mb``: stopped at the limit by ``RLIMIT_FSIZE`` (SIGXFSZ)."""
    mb = lab.sizes.max_file_mb
    command = f"head -c {10 * mb * MB} /dev/zero > big-{lab.token}"
    result = sandboxed(backend, command, lab.box, max_file_mb=mb)
    size = (lab.box / f"big-{lab.token}").stat().st_size
    (lab.box / f"big-{lab.token}").unlink()
    ok = size <= mb * MB and result.killed_reason == "file_size"
    return Verdict(
        ok, f"largest file {mb} MB", f"a {10 * mb} MB write stopped at {size / MB:.1f} MB ({result.killed_reason})"
    )


def raise_limits(lab: Lab, backend: Isolation) -> Verdict:
    """Raising a hard limit needs a capability the command does not have; the cgroup tree is not there."""
    code = "ulimit -H -f unlimited && echo raised; ls /sys/fs/cgroup 2>&1 | head -1; grep CapEff /proc/self/status"
    result = sandboxed(backend, code, lab.box, max_procs=64)
    ok = "raised" not in result.output and "CapEff:\t0000000000000000" in result.output and "No such" in result.output
    return Verdict(
        ok,
        "no capability: limits cannot be raised",
        "ulimit -H refused; CapEff 0; no /sys/fs/cgroup" if ok else result.output[:200],
    )


# -- the matrix ------------------------------------------------------------------------------------------------------
Case = Callable[[Lab, Isolation], Verdict]
#: (name, case, needs isolation): a case that needs isolation is not run under ``none``
CASES: tuple[tuple[str, Case, bool], ...] = (
    ("network: services on this machine", network_loopback, True),
    ("network: outside addresses", network_outside, True),
    ("UNIX sockets outside (PostgreSQL's too)", unix_sockets, True),
    ("writes outside the workspace and into .git", writes_outside, True),
    ("the Airflow home, the project, /etc/shadow", airflow_home, True),
    ("secrets in the environment", secrets_env, False),
    ("secrets in other processes (/proc/*/environ)", secrets_proc, True),
    ("fork bomb (bounded burst)", fork_bomb, True),
    ("fork bomb (shell, unbounded)", shell_fork_bomb, True),
    ("processes left running", left_running, False),
    ("infinite loop", infinite_loop, False),
    ("CPU spin", cpu_limit, False),
    ("memory hog", memory_limit, False),
    ("unbounded output", unbounded_output, False),
    ("endless output", endless_output, False),
    ("huge file", huge_file, False),
    ("raising its own limits", raise_limits, True),
)
NO_ISOLATION = "needs isolation: `none` shares the network, filesystem and processes by design"
UNBOUNDED = "no pids cgroup and running as root: a fork bomb would not be bounded here, so it is not run"


def run_matrix(section: Section, lab: Lab, backend: Isolation) -> None:
    """Every case under ``backend``, one row each."""
    unavailable = backend != "none" and not sandbox_module._works(backend)
    for name, case, needs_isolation in CASES:
        skip = _skip_reason(backend, case, needs_isolation, unavailable)
        if skip:
            section.rows.append([backend, name, f"skipped: {skip}", "", ""])
            continue
        try:
            verdict = case(lab, backend)
        except Exception as error:  # a case that breaks is a finding, not the end of the part
            verdict = Verdict(False, "", f"the case crashed: {type(error).__name__}: {error}")
        outcome = "contained" if verdict.contained else "escaped"
        section.check(verdict.contained, f"{backend}: {name}: {outcome}: {verdict.observed}")
        section.rows.append([backend, name, outcome, verdict.limit, verdict.observed])


def _skip_reason(backend: Isolation, case: Case, needs_isolation: bool, unavailable: bool) -> str | None:
    if unavailable:
        return UNAVAILABLE[backend]
    if backend == "none" and needs_isolation:
        return NO_ISOLATION
    return UNBOUNDED if case in (fork_bomb, shell_fork_bomb) and not _forks_bounded() else None


def _forks_bounded() -> bool:
    """Whether ``run_sandboxed`` will bound the process count: a pids cgroup can be made right now, or not root."""
    if os.getuid() != 0:
        return True
    probe = sandbox_module._PidsCgroup.create(8)
    if probe is not None:
        probe.close()
    return probe is not None


# -- no isolation: refused, or loud ---------------------------------------------------------------------------------
def refusal_rows(section: Section, lab: Lab) -> None:
    """Without any working isolation, validation is refused by default and loud when the operator allows it."""
    for label, value in (("unset (the default)", None), ("isolated", "isolated")):
        ok, said = _refused(lab, value)
        section.check(ok, f"none: {MIN_ISOLATION_ENV} {label}: {said}")
        case = f"validation with no isolation available, {MIN_ISOLATION_ENV} {label}"
        section.rows.append(["none", case, "refused" if ok else "escaped", "isolation required", said])
    with _only_none(), environment(**{MIN_ISOLATION_ENV: "none"}):
        result = run_sandboxed("true", lab.box, timeout_s=10)
    warning = next((w for w in result.warnings if w.startswith("NO SANDBOX")), "")
    loud = bool(warning) and not result.network_isolated
    section.check(loud, f"none: allowed by the operator, but not loud: {result.warnings}")
    case = f"validation with no isolation, {MIN_ISOLATION_ENV}=none (the operator allows it)"
    seen = f"ran, with network_isolated=False and the warning {warning[:70]!r}…"
    section.rows.append(["none", case, "warned" if loud else "silent", "a loud warning", seen])


def _only_none() -> contextlib.AbstractContextManager[object]:
    """Pretend no isolation works on this machine (as on a laptop without bubblewrap or user namespaces)."""
    return mock.patch.object(sandbox_module, "_works", lambda mode: mode == "none")


def _refused(lab: Lab, minimum: str | None) -> tuple[bool, str]:
    """Run with ``SUPERVISOR_SANDBOX_MIN=minimum`` where nothing isolates: refused before anything ran?"""
    marker = lab.box / f"ran-{lab.token}"
    with _only_none(), environment(**{MIN_ISOLATION_ENV: minimum}):
        try:
            run_sandboxed(f"touch {marker.name}", lab.box, timeout_s=10)
        except SandboxUnavailableError as err:
            ran = marker.exists()
            ok = not ran and f"{MIN_ISOLATION_ENV}=none" in str(err) and "bubblewrap" in str(err)
            return ok, f"SandboxUnavailableError before running ({str(err)[:90]}…); the command ran: {ran}"
    marker.unlink(missing_ok=True)
    return False, "the command ran without isolation"


# -- the part ---------------------------------------------------------------------------------------------------------
def run(quick: bool) -> Section:
    """The matrix under each isolating backend, then ``none``'s refusal and the limits that hold without isolation."""
    section = Section(key="sandbox", title="The sandbox, per backend", headers=HEADERS)
    sizes = QUICK if quick else FULL
    with timed(section), open_lab(sizes) as lab:
        for backend in ISOLATING:
            with environment(**{MIN_ISOLATION_ENV: "isolated"}):
                run_matrix(section, lab, backend)
        refusal_rows(section, lab)
        with environment(**{MIN_ISOLATION_ENV: "none"}):
            run_matrix(section, lab, "none")
    section.summary = summary(section, sizes)
    return section


def summary(section: Section, sizes: Sizes) -> str:
    outcomes = [str(row[2]).split(":")[0] for row in section.rows]
    counts = ", ".join(f"{outcomes.count(kind)} {kind}" for kind in dict.fromkeys(outcomes))
    works = [b for b in ISOLATING if sandbox_module._works(b)] or ["none"]
    return (
        "Guarantee: a validation command — model-written code — cannot reach the network (this machine's services, "
        "UNIX sockets, outside addresses), write outside its workspace or into git's internals, read secrets from "
        "the environment, other processes or the Airflow home, and cannot escape its limits on processes, time, "
        f"CPU, memory, output and file size; without isolation, validation is refused unless the operator allows "
        f"it, and then it is loud. Each case ran through `run_sandboxed` under every backend that works here "
        f"({', '.join(works)}); limits used: pids {sizes.max_procs}, timeouts {sizes.loop_timeout_s:g}/"
        f"{sizes.bomb_timeout_s:g} s, output {sizes.output_cap / 1e6:g} MB, file {sizes.max_file_mb} MB, memory "
        f"{sizes.memory_mb} MB. Rows: {counts}. {len(section.failures)} broken guarantees. Not bounded by any "
        "stated limit: the total size of many files, each under the file limit (disk and the private /tmp, which "
        "is memory)."
    )
