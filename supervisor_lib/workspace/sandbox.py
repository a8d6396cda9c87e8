"""Run a repository's tests on model-written code: no network, bounded resources, no secrets, output kept short.

Isolation, best first (probed once per process); both isolating backends build the same allowlist view of the
machine (:mod:`supervisor_lib.workspace.jail`): the system's programs, the Python the tests run with, ``/etc``
without what only root may read, the workspace (writable) and a private scratch ``HOME`` and ``/tmp`` — no
``/home``, ``/root``, ``/run`` or ``/var`` (so no UNIX sockets of local services), no Airflow home, no ``/sys``,
a network namespace of its own, and no capability over anything outside its own user namespace.

* ``bwrap`` (bubblewrap) builds it;
* ``unshare`` (util-linux, with user namespaces) builds it with our own small jail when bubblewrap is missing;
* ``none``: no isolation. Refused unless the operator allows it (``SUPERVISOR_SANDBOX_MIN=none``, which the local
  demo sets); then the result says so loudly in ``warnings`` and ``network_isolated`` is False.

Resource limits come from ``setrlimit`` (CPU, address space, file size, no core dumps). Processes are bounded by
a pids cgroup when one is writable here, else by ``RLIMIT_NPROC`` for a non-root user; as root without a cgroup
the result carries a warning. On timeout the process group, the cgroup and (through the PID namespace) every
descendant are killed with SIGKILL; without isolation, processes that left the group are found by a marker in
their environment and killed too.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import itertools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Literal

from supervisor_lib.workspace import jail
from supervisor_lib.workspace.repo import WorkspaceError

__all__ = [
    "DEFAULT_ENV_ALLOW",
    "SECRET_PATTERNS",
    "Isolation",
    "SandboxResult",
    "SandboxUnavailableError",
    "available_isolation",
    "is_secret_name",
    "require_isolation",
    "run_sandboxed",
    "sandbox_env",
]

Isolation = Literal["bwrap", "unshare", "none"]
DEFAULT_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
SECRET_PATTERNS = (
    "*_API_KEY",
    "*_TOKEN",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "AIRFLOW_CONN_*",
    "AIRFLOW_VAR_*",
    "AIRFLOW__*",
)
_MB = 1024 * 1024
_NO_SANDBOX_WARNING = (
    "NO SANDBOX: the command ran with full network access and a writable filesystem, because neither bwrap nor "
    "unshare was used (none works here, or isolation='none' was asked for). Install bubblewrap (apt-get install "
    "bubblewrap) or allow unprivileged user namespaces."
)
#: the weakest isolation the operator accepts: ``isolated`` (bwrap or unshare; the default) or ``none``
MIN_ISOLATION_ENV = "SUPERVISOR_SANDBOX_MIN"
#: set in the environment of every sandboxed command: finds processes that left the group (``none`` mode)
RUN_MARKER_ENV = "SUPERVISOR_SANDBOX_RUN"
_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_CRASH_SIGNALS = {signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
_cgroup_names = itertools.count()


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did.

    :param exit_code: the exit status, or ``None`` when the command was killed by a signal (e.g. on timeout).
    :param killed_reason: which limit ended or broke the command: ``"timeout"``, ``"cpu"``, ``"memory"``,
        ``"file_size"`` or ``"signal <NAME>"``; ``None`` when it ran to completion within its limits.
    :param output: stdout and stderr merged; when longer than the bound, its head and tail with a marker between.
    :param isolation: ``"bwrap"``, ``"unshare"`` or ``"none"``.
    :param warnings: problems the caller must log and record (weaker isolation than asked, dropped variables).
    """

    exit_code: int | None
    timed_out: bool
    killed_reason: str | None
    output: str
    duration_s: float
    network_isolated: bool
    isolation: str
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the command exited 0 within its limits."""
        return self.exit_code == 0 and self.killed_reason is None


def is_secret_name(name: str) -> bool:
    """True when an environment variable's name looks like it holds a secret (see ``SECRET_PATTERNS``)."""
    return any(fnmatch.fnmatchcase(name.upper(), pattern) for pattern in SECRET_PATTERNS)


def sandbox_env(
    home: Path, env_allow: Iterable[str] = (), extra: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Build the command's environment from an allowlist; return it and the names of secrets left out.

    Only ``DEFAULT_ENV_ALLOW`` and ``env_allow`` are copied from this process's environment, and ``extra`` is
    added; any name matching ``SECRET_PATTERNS`` is dropped even when allowlisted. ``HOME`` and ``TMPDIR`` point
    at ``home``, a scratch directory.
    """
    wanted = {name: os.environ[name] for name in (*DEFAULT_ENV_ALLOW, *env_allow) if name in os.environ}
    wanted.update(extra or {})
    dropped = sorted(name for name in wanted if is_secret_name(name))
    env = {name: value for name, value in wanted.items() if name not in dropped}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    return env, dropped


def _wrapper(isolation: Isolation, cwd: Path, scratch: Path) -> list[str]:
    """The argv prefix that puts a command into ``isolation``."""
    if isolation == "none":
        return []
    mounts = jail.plan(cwd, scratch)
    return jail.bwrap_args(mounts, cwd) if isolation == "bwrap" else jail.unshare_argv(mounts, cwd)


@functools.cache
def _works(isolation: Isolation) -> bool:
    if isolation == "none":
        return True
    if not shutil.which(isolation):
        return False
    with tempfile.TemporaryDirectory(prefix="supervisor-probe-") as scratch:
        argv = [*_wrapper(isolation, Path(scratch), Path(scratch)), "/bin/sh", "-c", "exit 0"]
        try:
            probe = subprocess.run(argv, cwd=scratch, capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return probe.returncode == 0


def available_isolation() -> Isolation:
    """The strongest isolation that works on this machine (probed once, then cached)."""
    modes: tuple[Isolation, ...] = ("bwrap", "unshare", "none")
    return next(mode for mode in modes if _works(mode))


class _PidsCgroup:
    """A throw-away pids cgroup that bounds every process the command starts, root's included."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_procs: int) -> _PidsCgroup | None:
        base = _pids_cgroup_base()
        if base is None:
            return None
        path = base / f"supervisor-sandbox-{os.getpid()}-{next(_cgroup_names)}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(max_procs))
        except OSError:
            path.rmdir()
            return None
        return cls(path)

    def kill(self) -> None:
        for _ in range(50):  # a process may fork while we kill: repeat until the cgroup is empty
            pids = [int(pid) for pid in _read(self.path / "cgroup.procs").split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        self.kill()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # the killed processes are still being reaped


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@functools.cache
def _pids_cgroup_base() -> Path | None:
    """Our own pids cgroup (v1 or v2), if we may create children in it."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, own = line.split(":", 2)
        if "pids" in controllers.split(","):
            base = Path("/sys/fs/cgroup/pids") / own.lstrip("/")
        elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup") / own.lstrip("/")
        else:
            continue
        probe = base / f"supervisor-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        usable = (probe / "pids.max").exists()
        probe.rmdir()
        if usable:
            return base
    return None


def _user_threads() -> int:
    """How many threads the current real uid runs now (RLIMIT_NPROC counts them all, not just ours)."""
    uid, total = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        fields = dict(line.split(":", 1) for line in _read(status).splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            total += int(fields.get("Threads", "1"))
    return total


@dataclass(frozen=True)
class _Limits:
    cpu_s: int
    memory_mb: int
    max_file_mb: int
    nproc: int | None
    cgroup_procs: str | None

    def apply(self) -> None:
        """Runs in the child between fork and exec, so it must not allocate much or take locks."""
        if self.cgroup_procs:
            fd = os.open(self.cgroup_procs, os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_s, self.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_mb * _MB, self.memory_mb * _MB))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.max_file_mb * _MB, self.max_file_mb * _MB))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.nproc, self.nproc))


class _Capture:
    """Keeps the first and last ``limit / 2`` bytes of a stream, however long it is, in bounded memory."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > 2 * self.half:
            del self.tail[: -self.half]

    def text(self) -> str:
        tail = self.tail[-self.half :] if self.total > 2 * self.half else self.tail
        cut = self.total - len(self.head) - len(tail)
        head, rest = self.head.decode(errors="replace"), tail.decode(errors="replace")
        if cut <= 0:
            return head + rest
        marker = f"[... {cut} bytes of output cut by Supervisor: showing the first and last {self.half} ...]"
        return f"{head}\n{marker}\n{rest}"

    def pump(self, stream: BufferedReader) -> None:
        while chunk := stream.read1(65536):
            self.feed(chunk)


def run_sandboxed(
    command: str,
    cwd: Path,
    *,
    timeout_s: float,
    cpu_s: int = 600,
    memory_mb: int = 4096,
    max_procs: int = 256,
    max_file_mb: int = 256,
    output_limit: int = 20000,
    env_allow: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    isolation: Isolation | None = None,
) -> SandboxResult:
    """Run ``command`` with ``/bin/sh -c`` in ``cwd`` (the workspace), isolated and bounded.

    :param timeout_s: wall-clock limit; on expiry every process of the command is killed.
    :param cpu_s: CPU seconds per process (``RLIMIT_CPU``).
    :param memory_mb: address space per process (``RLIMIT_AS``).
    :param max_procs: processes and threads at once (pids cgroup, else ``RLIMIT_NPROC`` when not root).
    :param max_file_mb: largest file the command may write (``RLIMIT_FSIZE``).
    :param output_limit: bytes of output kept (head and tail).
    :param env_allow: extra variable names to copy from this environment (secrets are dropped anyway).
    :param env: extra variables to set (secrets are dropped anyway).
    :param isolation: force a mode, mainly for tests; by default the strongest available. A mode that does not
        work here falls back to the strongest available, with a warning.
    :raises WorkspaceError: ``cwd`` is not a directory.
    """
    if not cwd.is_dir():
        raise WorkspaceError(f"cannot run {command!r}: the workspace {cwd} is not a directory")
    mode, warnings = _choose(isolation)
    scratch = Path(tempfile.mkdtemp(prefix="supervisor-sandbox-"))
    cgroup = _PidsCgroup.create(max_procs)
    nproc = None if cgroup or os.getuid() == 0 else _user_threads() + max_procs
    if cgroup is None and nproc is None:
        warnings.append("process count NOT bounded: running as root and no pids cgroup can be created here")
    full_env, dropped = sandbox_env(scratch, env_allow, env)
    full_env[RUN_MARKER_ENV] = marker = f"{os.getpid()}-{next(_cgroup_names)}-{time.monotonic_ns()}"
    if dropped:
        warnings.append(f"secret-looking variables not passed to the command: {', '.join(dropped)}")
    limits = _Limits(cpu_s, memory_mb, max_file_mb, nproc, str(cgroup.path / "cgroup.procs") if cgroup else None)
    argv = [*_wrapper(mode, cwd.resolve(), scratch), "/bin/sh", "-c", command]
    try:
        code, timed_out, output, duration = _execute(argv, cwd, full_env, limits, timeout_s, output_limit, cgroup)
    finally:
        if cgroup:
            cgroup.close()
        _kill_marked(marker)
        shutil.rmtree(scratch, ignore_errors=True)
    reason = "timeout" if timed_out else _limit_hit(code, output)
    exit_code = None if code is None or code < 0 else code
    return SandboxResult(exit_code, timed_out, reason, output, duration, mode != "none", mode, warnings)


class SandboxUnavailableError(WorkspaceError):
    """No isolation works here and the operator did not allow running without it; nothing was run."""


def require_isolation(minimum: str | None = None) -> Isolation:
    """The isolation validation commands will get; :class:`SandboxUnavailableError` when it is below the minimum
    (``SUPERVISOR_SANDBOX_MIN``: ``isolated``, the default, or ``none``). Call it before any work is done."""
    minimum = (minimum or os.environ.get(MIN_ISOLATION_ENV) or "isolated").strip().lower()
    if minimum not in ("isolated", "none"):
        raise SandboxUnavailableError(f"{MIN_ISOLATION_ENV}={minimum!r}: expected 'isolated' or 'none'")
    best = available_isolation()
    if best == "none" and minimum == "isolated":
        raise SandboxUnavailableError(
            "no sandbox works on this machine (neither bubblewrap nor unshare with user namespaces), so the "
            "validation command was not run: install bubblewrap (apt-get install bubblewrap) or allow unprivileged "
            f"user namespaces; to run it unsandboxed anyway (a trusted local demo only), set {MIN_ISOLATION_ENV}=none"
        )
    return best


def _choose(requested: Isolation | None) -> tuple[Isolation, list[str]]:
    best = require_isolation()
    warnings = []
    if requested is not None and _works(requested):
        best = requested
    elif requested is not None:
        warnings.append(f"isolation {requested!r} does not work on this machine; used {best!r} instead")
    if best == "none":
        warnings.append(_NO_SANDBOX_WARNING)
    return best, warnings


def _execute(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    limits: _Limits,
    timeout_s: float,
    output_limit: int,
    cgroup: _PidsCgroup | None,
) -> tuple[int | None, bool, str, float]:
    """Start the command, stream its output into a bounded buffer, kill it all on timeout."""
    capture = _Capture(output_limit)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=limits.apply,
    )
    assert isinstance(proc.stdout, BufferedReader)
    reader = threading.Thread(target=capture.pump, args=(proc.stdout,), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_all(proc, cgroup)  # also reaps background processes the command left behind
    reader.join(timeout=5)
    proc.stdout.close()
    return proc.returncode, timed_out, capture.text(), round(time.monotonic() - start, 3)


def _kill_all(proc: subprocess.Popen[bytes], cgroup: _PidsCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cgroup:
        cgroup.kill()
    proc.wait()


def _kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment carries ``marker``: those that left the process group (``setsid``)
    and the cgroup. Isolated commands cannot outlive their PID namespace; this catches the unisolated ones."""
    needle = f"{RUN_MARKER_ENV}={marker}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _limit_hit(code: int | None, output: str) -> str | None:
    """Name the limit that ended the command, from its status and output.

    Signal N shows as -N, or as 128 + N when a shell or bwrap reports it, so both are read as signals.
    """
    if code is None:
        return None
    number = -code if code < 0 else code - 128 if 128 < code <= 192 else 0
    if number == signal.SIGXCPU:
        return "cpu"
    if number == signal.SIGXFSZ or (code and "File too large" in output):
        return "file_size"  # Python ignores SIGXFSZ, so it usually sees EFBIG as an OSError instead
    if code and any(sign in output for sign in _MEMORY_SIGNS):
        return "memory"
    if code < 0 or number in _CRASH_SIGNALS:
        return f"signal {_signal_name(number)}"
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # real-time signals have no name
        return str(number)
