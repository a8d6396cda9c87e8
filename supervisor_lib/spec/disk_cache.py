"""On-disk cache of validated specs: an unchanged spec file skips YAML parsing and validation in a new process.

The DAG processor parses every DAG file in a fresh process, so the loader's in-process cache never survives from
one parse to the next; this cache does. An entry is the pickled ``WorkflowSpec`` (with its tasks' effective
settings already merged), named after a hash of everything its validation read: the spec file's path and bytes,
the code (every source and data file of ``supervisor_lib``, by size and mtime as Python's bytecode cache checks
them; pydantic's and Python's versions) and the data files outside the spec that validation reads (the routing
catalogue, see :func:`data_files`). Changing any of them simply misses. Entries are written atomically (a private
temp file, then ``os.replace``), so concurrent writers and readers never see half a file; an entry that is
truncated, corrupt or not what its name promises is ignored and the spec validated again. Every failure here is a
miss: the cache can make loading faster, never break it. Specs that use a plugin's task type or provider are not
stored (:func:`supervisor_lib.spec.plugins.uses_plugins`).

Where: ``$SUPERVISOR_SPEC_CACHE_DIR`` (``off`` or empty disables the cache), else
``$AIRFLOW_HOME/supervisor_spec_cache``, else ``~/airflow/supervisor_spec_cache`` (Airflow's own default home).
Entries are pickles, so the directory is used only when the current user owns it and no one else may write to it;
the cache creates it with mode 0700. Each spec file has a sub-directory holding one entry: storing a new entry
removes the older ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor_lib.spec.models import WorkflowSpec

log = logging.getLogger(__name__)

ENV_DIR = "SUPERVISOR_SPEC_CACHE_DIR"
#: bump when the entry layout changes
FORMAT = 1
_MAGIC = b"supervisor-spec-cache\n"
_DIGEST = hashlib.sha256().digest_size
_OFF = ("", "off", "none", "false", "0")


def cache_dir() -> Path | None:
    """The cache directory from the environment, or ``None`` when the cache is turned off."""
    explicit = os.environ.get(ENV_DIR)
    if explicit is not None:
        return None if explicit.strip().lower() in _OFF else Path(explicit).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "supervisor_spec_cache"


def entry_name(path: str, sha256: str) -> str:
    """The entry for the file at ``path`` whose bytes hash to ``sha256``, given the code and data as they are now.

    Take it *before* validating and hand it to :func:`store`: a data file edited meanwhile then misses next time.
    """
    return _entry_path(path, sha256)


def load(path: str, sha256: str, entry: str | None = None) -> WorkflowSpec | None:
    """The cached spec of the file at ``path`` whose bytes hash to ``sha256``, or ``None`` (a miss)."""
    directory = _usable_dir(create=False)
    if directory is None:
        return None
    try:
        with open(directory / (entry or _entry_path(path, sha256)), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return _decode(data, path, sha256)


def store(path: str, sha256: str, spec: WorkflowSpec, entry: str | None = None) -> None:
    """Cache a spec just validated from the file at ``path`` (under ``entry``, see :func:`entry_name`); never raises."""
    from supervisor_lib.spec.plugins import uses_plugins

    directory = _usable_dir(create=True)
    if directory is None or uses_plugins(spec):
        return
    try:
        spec.effective_tasks  # noqa: B018 - merge the defaults now, so a cache hit need not
        payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:  # e.g. a value pickle cannot handle: the spec just stays uncached
        log.debug("spec cache: cannot pickle the spec of %s: %s", path, err)
        return
    target = directory / (entry or _entry_path(path, sha256))
    temp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        os.makedirs(target.parent, mode=0o700, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(temp, target)  # atomic: readers see the old entry or the whole new one
    except OSError as err:
        log.debug("spec cache: cannot write %s: %s", target, err)
        _remove(temp)
        return
    _prune(target)


def _decode(data: bytes, path: str, sha256: str) -> WorkflowSpec | None:
    """The spec in an entry's bytes, or ``None`` unless it is whole, intact and for this very file."""
    from supervisor_lib.spec.models import WorkflowSpec

    header = len(_MAGIC) + _DIGEST
    payload = data[header:]
    if not data.startswith(_MAGIC) or data[len(_MAGIC) : header] != hashlib.sha256(payload).digest():
        return None
    try:
        spec = pickle.loads(payload)
    except Exception:  # intact bytes from other code (a digest collision is not a concern): a miss
        return None
    if not isinstance(spec, WorkflowSpec) or (spec.source_path, spec.spec_hash) != (path, sha256):
        return None
    return spec


def _entry_path(path: str, sha256: str) -> str:
    """``<hash of the path>/<hash of path, content, code and data>.pickle``, relative to the cache directory."""
    where = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    key = "\0".join((code_version(), _stamps(data_files()), path, sha256))
    return f"{where}/{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:40]}.pickle"


_PACKAGE = Path(__file__).resolve().parents[1]  # supervisor_lib
_CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json")
#: folders under supervisor_lib that hold no code validation runs: the UI's source, its npm packages, its bundle
_NOT_CODE = frozenset({"node_modules", "ui", "static"})


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the code that validates specs: every source and data file of ``supervisor_lib`` (path, size and
    mtime), pydantic's and Python's versions. Computed once per process (a few hundred ``stat`` calls)."""
    import pydantic
    import pydantic_core

    files = []
    for folder, dirs, names in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")) and d not in _NOT_CODE)
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(_CODE_SUFFIXES)]
    versions = f"{FORMAT}\0{pydantic.VERSION}\0{pydantic_core.__version__}\0{sys.version}"
    return hashlib.sha256(f"{versions}\0{_stamps(files)}".encode("utf-8", "surrogateescape")).hexdigest()


def data_files() -> list[str]:
    """The files besides the spec that validation may read, so that editing them invalidates the cache.

    Today the routing catalogue, which ``provider: auto`` tasks are checked against (see
    :mod:`supervisor_lib.routing.catalog`): ``$AIRFLOW_HOME/include/catalog.yaml``, the project's
    ``include/catalog.yaml`` and the file ``$SUPERVISOR_CATALOG`` names. A check that reads another file must add it.
    """
    home, override = os.environ.get("AIRFLOW_HOME"), os.environ.get("SUPERVISOR_CATALOG")
    files = [os.path.join(home, "include", "catalog.yaml")] if home else []
    files.append(str(_PACKAGE.parent / "include" / "catalog.yaml"))
    return files + ([os.path.expanduser(override)] if override else [])


def _stamps(files: list[str]) -> str:
    """``path:size:mtime`` of each file (``path:-`` when missing): how Python's bytecode cache tells a change."""
    stamps = []
    for file in files:
        try:
            stat = os.stat(file)
            stamps.append(f"{file}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            stamps.append(f"{file}:-")
    return "\n".join(stamps)


def _usable_dir(*, create: bool) -> Path | None:
    directory = cache_dir()
    if directory is None:
        return None
    return directory if _trusted(str(directory), create) else None


_trust: dict[str, bool] = {}


def _trusted(directory: str, create: bool) -> bool:
    """Whether entries may be read from (and written to) ``directory``: ours, and writable by no one else.

    Decided once per directory and process; a directory that does not exist yet is created (mode 0700) on the
    first store, and is not remembered as untrusted before that.
    """
    known = _trust.get(directory)
    if known is not None:
        return known
    if create:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as err:
            log.debug("spec cache: cannot create %s: %s", directory, err)
            _trust[directory] = False
            return False
    try:
        stat = os.stat(directory)
    except OSError:
        return False  # not created yet: a miss, asked again next time
    trusted = not hasattr(os, "geteuid") or (stat.st_uid == os.geteuid() and not stat.st_mode & 0o022)
    if not trusted:
        log.warning(
            "spec cache: not using %s: it must belong to this user and be writable by no one else (chmod go-w), "
            "or set %s to another directory",
            directory,
            ENV_DIR,
        )
    _trust[directory] = trusted
    return trusted


def _prune(entry: Path) -> None:
    """Remove the older entries of the same spec file (other content or code versions)."""
    try:
        names = [n for n in os.listdir(entry.parent) if n != entry.name and n.endswith(".pickle")]
    except OSError:
        return
    for name in names:
        _remove(entry.parent / name)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
