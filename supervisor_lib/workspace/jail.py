"""What a sandboxed command sees: one mount plan, applied by bubblewrap or, without it, by our own jail.

The plan is an allowlist. The command sees the system's programs and libraries (``/usr`` and the merged ``/bin``,
``/lib``...), ``/etc`` with everything only root may read hidden (password hashes, keys), the Python it runs
with, the workspace (writable) and a scratch directory that is its ``HOME`` and ``/tmp``. Nothing else: no
``/home``, ``/root``, ``/run`` or ``/var`` — so no UNIX sockets of local services (a PostgreSQL superuser
socket, Docker), no Airflow home, no DAGs, no stores — and no ``/sys``. The network is a fresh namespace with
only a loopback of its own.

:func:`bwrap_args` turns the plan into bubblewrap arguments. :func:`unshare_argv` runs this module inside new
user, mount, network, PID, IPC and UTS namespaces (util-linux ``unshare``): :func:`enter` builds the same tree on
a tmpfs, ``pivot_root``\\ s into it (the host's tree is then out of reach, not merely hidden), drops every
capability and executes the command. Either way the command runs as root of a user namespace of its own, with no
capability over anything outside it.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

#: extra read-only paths the command may see (``:``-separated), e.g. a toolchain outside ``/usr``
EXTRA_READ_ONLY_ENV = "SUPERVISOR_SANDBOX_READ_ONLY"
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
Kind = Literal["ro", "rw", "tmpfs", "proc", "dev", "symlink", "hide_file", "hide_dir"]


@dataclass(frozen=True)
class Mount:
    """One entry of the plan: ``source`` is a host path (``ro``, ``rw``), a link target (``symlink``) or unused."""

    kind: Kind
    target: str
    source: str = ""


def plan(workspace: Path, scratch: Path, extra_read_only: Iterable[str] = ()) -> list[Mount]:
    """The mounts, parents before children."""
    mounts: list[Mount] = []
    for path in _SYSTEM:
        if os.path.islink(path):
            mounts.append(Mount("symlink", path, os.readlink(path)))
        elif os.path.isdir(path):
            mounts.append(Mount("ro", path, path))
    mounts += [Mount("hide_dir" if is_dir else "hide_file", path) for path, is_dir in _private_under("/etc")]
    # the private /tmp before the toolchain: a checkout (its virtualenv) under /tmp stays visible on top of it
    mounts += [Mount("dev", "/dev"), Mount("proc", "/proc"), Mount("tmpfs", "/tmp"), Mount("tmpfs", "/var/tmp")]
    mounts += [Mount("ro", path, path) for path in _toolchain(extra_read_only)]
    mounts += [Mount("rw", str(scratch), str(scratch)), Mount("rw", str(workspace), str(workspace))]
    if (workspace / ".git").is_file():  # the worktree's link to the cache repo: the command must not repoint it
        mounts.append(Mount("ro", str(workspace / ".git"), str(workspace / ".git")))
    return mounts


@functools.cache
def _private_under(root: str) -> tuple[tuple[str, bool], ...]:
    """Files and folders under ``root`` that others may not read (``/etc/shadow``, private keys): hidden."""
    found: list[tuple[str, bool]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in list(dirs):
            path = os.path.join(folder, name)
            if not os.path.islink(path) and not _world_readable(path):
                found.append((path, True))
                dirs.remove(name)  # hidden as a whole
        found += [(os.path.join(folder, name), False) for name in files if not _readable_file(folder, name)]
    return tuple(found)


def _world_readable(path: str) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return True
    return bool(mode & stat.S_IROTH) and (not stat.S_ISDIR(mode) or bool(mode & stat.S_IXOTH))


def _readable_file(folder: str, name: str) -> bool:
    path = os.path.join(folder, name)
    return os.path.islink(path) or _world_readable(path)


def _toolchain(extra: Iterable[str]) -> list[str]:
    """The Python the command runs with (this interpreter, its base, virtualenvs on ``PATH``) and ``extra``, where
    they are not under the system folders already shown."""
    found: set[str] = set()
    for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        found.add(os.path.realpath(prefix))
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and os.path.isdir(entry):
            real = os.path.realpath(entry)
            parent = os.path.dirname(real)
            found.add(parent if os.path.exists(os.path.join(parent, "pyvenv.cfg")) else real)
    found.update(os.path.realpath(p) for p in [*extra, *os.environ.get(EXTRA_READ_ONLY_ENV, "").split(":")] if p)
    system = tuple(p + "/" for p in _SYSTEM)
    return sorted(p for p in found if os.path.isdir(p) and not (p + "/").startswith(system) and p != "/")


# -- bubblewrap --------------------------------------------------------------------------------------------------
def bwrap_args(mounts: list[Mount], workspace: Path) -> list[str]:
    """The bubblewrap command line (up to ``--``) that builds ``mounts``."""
    args = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for mount in mounts:
        args += _bwrap_mount(mount)
    return [*args, "--chdir", str(workspace), "--"]


def _bwrap_mount(mount: Mount) -> list[str]:
    match mount.kind:
        case "ro":
            return ["--ro-bind", mount.source, mount.target]
        case "rw":
            return ["--bind", mount.source, mount.target]
        case "symlink":
            return ["--symlink", mount.source, mount.target]
        case "hide_file":
            return ["--ro-bind", "/dev/null", mount.target]
        case "hide_dir":
            return ["--tmpfs", mount.target, "--remount-ro", mount.target]
        case "dev":
            return ["--dev", mount.target]
        case "proc":
            return ["--proc", mount.target]
        case _:
            return ["--tmpfs", mount.target]


# -- our own jail (util-linux unshare + this module) --------------------------------------------------------------
def unshare_argv(mounts: list[Mount], workspace: Path) -> list[str]:
    """The command line (up to the command itself) that runs :func:`enter` in new namespaces."""
    spec = json.dumps({"mounts": [asdict(m) for m in mounts], "workspace": str(workspace)})
    namespaces = ["--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
    # the file itself, not ``-m``: it needs only the standard library, so nothing of the package is imported
    return ["unshare", *namespaces, sys.executable, "-I", "-S", str(Path(__file__).resolve()), spec, "--"]


_libc = ctypes.CDLL(None, use_errno=True)
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
_MNT_DETACH, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _SYS_PIVOT_ROOT = 2, 38, 24, 155


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"sandbox: {what}: {os.strerror(error)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, what: str) -> None:
    enc = os.fsencode
    _check(_libc.mount(enc(source), enc(target), enc(fstype) if fstype else None, flags, None), what)


def _place(root: str, mount: Mount) -> str:
    """Create the mount point of ``mount`` under ``root`` (a folder, or a file for a file source)."""
    target = root + mount.target
    is_file = mount.kind == "hide_file" or (mount.kind in ("ro", "rw") and os.path.isfile(mount.source))
    os.makedirs(os.path.dirname(target) if is_file else target, mode=0o755, exist_ok=True)
    if is_file and not os.path.exists(target):
        Path(target).touch()
    return target


def _apply(root: str, mount: Mount) -> None:
    if mount.kind == "symlink":
        os.makedirs(os.path.dirname(root + mount.target), exist_ok=True)
        os.symlink(mount.source, root + mount.target)
        return
    target = _place(root, mount)
    if mount.kind in ("ro", "rw", "hide_file"):
        source = "/dev/null" if mount.kind == "hide_file" else mount.source
        _mount(source, target, None, _MS_BIND | _MS_REC, f"bind {source}")
        if mount.kind != "rw":
            _mount("", target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID, f"read-only {target}")
    elif mount.kind == "dev":
        _mount("tmpfs", target, "tmpfs", _MS_NOSUID, "tmpfs /dev")
        for name in _DEVICES:
            if os.path.exists(f"/dev/{name}"):
                Path(f"{target}/{name}").touch()
                _mount(f"/dev/{name}", f"{target}/{name}", None, _MS_BIND, f"/dev/{name}")
    elif mount.kind == "proc":
        _mount("proc", target, "proc", _MS_NOSUID | _MS_NODEV, "proc")
    else:  # tmpfs, hide_dir
        _mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"tmpfs {target}")
        if mount.kind == "hide_dir":
            _mount("", target, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, f"read-only {target}")


def enter(mounts: list[Mount], workspace: str, argv: list[str]) -> None:
    """Inside fresh namespaces (as their root): build the tree, switch to it, drop every capability, exec ``argv``."""
    _mount("", "/", None, _MS_REC | _MS_PRIVATE, "make mounts private")
    root = "/tmp/.supervisor-jail-root"  # on the host's /tmp, but only in this mount namespace
    os.makedirs(root, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "tmpfs root")
    for mount in mounts:
        _apply(root, mount)
    os.makedirs(root + "/.old", exist_ok=True)
    _check(_libc.syscall(_SYS_PIVOT_ROOT, os.fsencode(root), os.fsencode(root + "/.old")), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", _MNT_DETACH), "detach the host's tree")
    os.rmdir("/.old")
    _mount("", "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "read-only root")
    os.chdir(workspace)
    for cap in range(64):  # an empty bounding set: the command and its children never regain a capability
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: past the last
            break
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.execv("/usr/bin/setpriv", ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--", *argv])


def main(args: list[str]) -> None:
    spec, argv = json.loads(args[0]), args[2:]  # args[1] is "--"
    enter([Mount(**m) for m in spec["mounts"]], spec["workspace"], argv)


if __name__ == "__main__":  # pragma: no cover - runs inside the namespaces unshare made
    main(sys.argv[1:])
