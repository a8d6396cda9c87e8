"""The on-disk spec cache: hits in a new process, misses on any change, and never breaks loading."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.spec import SpecError, WorkflowSpec, clear_cache, disk_cache, load_spec, loader
from tests.unit.spec.conftest import FIXTURES, WriteSpec

SPEC = "tasks:\n  - {id: a, type: llm, prompt: hello}\n  - {id: b, type: code_analysis, depends_on: a}\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory for the test (it does not exist yet: the first store creates it)."""
    directory = tmp_path / "spec-cache"
    monkeypatch.setenv(disk_cache.ENV_DIR, str(directory))
    return directory


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*.pickle")) if directory.is_dir() else []


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the loader validates from here on (a cache hit validates nothing)."""
    parse, files = loader._parse, []

    def recorded(data: bytes, file: str, sha256: str) -> Any:
        files.append(file)
        return parse(data, file, sha256)

    monkeypatch.setattr(loader, "_parse", recorded)
    return files


def test_a_second_load_in_a_new_process_comes_from_disk(
    cache: Path, write_spec: WriteSpec, validations: list[str]
) -> None:
    path = write_spec(SPEC)
    first = load_spec(path)
    assert len(_entries(cache)) == 1
    clear_cache()  # what a new process starts with
    again = load_spec(path)
    assert validations == [str(path)]  # the first load only
    assert again == first and again is not first
    assert (again.source_path, again.spec_hash, again.dag_id) == (first.source_path, first.spec_hash, "spec")
    assert again.effective_tasks == first.effective_tasks


def test_a_real_new_process_reads_the_entry(cache: Path) -> None:
    path = FIXTURES / "valid" / "twenty_tasks.yaml"
    code = (
        "import sys\nfrom supervisor_lib.spec import load_spec, loader\n"
        "loader._parse = None  # a call would fail: only the cache can answer\n"
        f"spec = load_spec({str(path)!r})\nprint(len(spec.tasks), 'airflow' in sys.modules)\n"
    )
    load_spec(path)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20", "False"]


def test_a_changed_file_misses_and_replaces_its_old_entry(cache: Path, write_spec: WriteSpec) -> None:
    path = write_spec(SPEC)
    load_spec(path)
    (old,) = _entries(cache)
    path.write_text(SPEC.replace("hello", "hello again"))
    clear_cache()
    assert load_spec(path).task("a").prompt == "hello again"
    (new,) = _entries(cache)
    assert new != old


def test_other_code_misses(
    cache: Path, write_spec: WriteSpec, validations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(SPEC)
    load_spec(path)
    clear_cache()
    monkeypatch.setattr(disk_cache, "code_version", lambda: "another version of supervisor_lib")
    load_spec(path)
    assert len(validations) == 2
    assert len(_entries(cache)) == 1  # the entry of the old code was replaced


def test_an_edited_catalogue_misses(
    cache: Path, write_spec: WriteSpec, validations: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``provider: auto`` tasks are validated against the routing catalogue: editing it must revalidate."""
    override = tmp_path / "catalog-override.yaml"
    override.write_text("{}\n")
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(override))
    path = write_spec(SPEC)  # task a: provider auto (the built-in default)
    load_spec(path)
    override.write_text("{}\n# edited\n")
    clear_cache()
    load_spec(path)
    assert len(validations) == 2


def test_each_path_has_its_own_entry(cache: Path, write_spec: WriteSpec) -> None:
    one, two = write_spec(SPEC, "one.yaml"), write_spec(SPEC, "two.yaml")
    assert (load_spec(one).dag_id, load_spec(two).dag_id) == ("one", "two")
    clear_cache()
    assert (load_spec(one).dag_id, load_spec(two).dag_id) == ("one", "two")
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: b"not a cache entry at all",
    ],
    ids=["empty", "truncated", "bit-flip", "garbage"],
)
def test_a_corrupt_entry_is_ignored_and_rewritten(
    cache: Path, write_spec: WriteSpec, damage: Callable[[bytes], bytes]
) -> None:
    path = write_spec(SPEC)
    first = load_spec(path)
    (entry,) = _entries(cache)
    entry.write_bytes(damage(entry.read_bytes()))
    clear_cache()
    assert load_spec(path) == first
    assert disk_cache.load(str(path), first.spec_hash or "") == first  # rewritten whole


def test_an_intact_entry_for_another_file_is_refused(cache: Path, write_spec: WriteSpec) -> None:
    one, two = write_spec(SPEC, "one.yaml"), write_spec(SPEC, "two.yaml")
    spec_one, spec_two = load_spec(one), load_spec(two)
    entry_one = cache / disk_cache.entry_name(str(one), spec_one.spec_hash or "")
    entry_two = cache / disk_cache.entry_name(str(two), spec_two.spec_hash or "")
    entry_two.write_bytes(entry_one.read_bytes())
    assert disk_cache.load(str(two), spec_two.spec_hash or "") is None
    clear_cache()
    assert load_spec(two).dag_id == "two"


def test_invalid_specs_are_not_cached(cache: Path, write_spec: WriteSpec) -> None:
    path = write_spec("tasks: [{id: a, type: nope}]\n")
    with pytest.raises(SpecError):
        load_spec(path)
    assert _entries(cache) == []


def test_a_cache_dir_that_cannot_be_created_still_loads(
    tmp_path: Path, write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(disk_cache.ENV_DIR, str(tmp_path / "a-file" / "cache"))  # even root cannot mkdir there
    path = write_spec(SPEC)
    assert len(load_spec(path).tasks) == 2
    clear_cache()
    assert len(load_spec(path).tasks) == 2


def test_a_failing_write_still_loads_and_leaves_nothing_behind(
    cache: Path, write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(disk_cache.os, "replace", refuse)  # e.g. a full disk or a read-only mount
    path = write_spec(SPEC)
    assert len(load_spec(path).tasks) == 2
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_a_directory_others_may_write_to_is_not_used(
    cache: Path, write_spec: WriteSpec, caplog: pytest.LogCaptureFixture
) -> None:
    cache.mkdir()
    cache.chmod(0o777)  # anyone could plant a pickle there
    path = write_spec(SPEC)
    with caplog.at_level(logging.WARNING, logger=disk_cache.__name__):
        assert len(load_spec(path).tasks) == 2
    assert _entries(cache) == []
    assert "writable by no one else" in caplog.text


def test_the_cache_creates_its_directory_private(cache: Path, write_spec: WriteSpec) -> None:
    load_spec(write_spec(SPEC))
    assert all(stat.S_IMODE(d.stat().st_mode) & 0o077 == 0 for d in [cache, *(e.parent for e in _entries(cache))])
    assert all(stat.S_IMODE(entry.stat().st_mode) == 0o600 for entry in _entries(cache))


@pytest.mark.parametrize("value", ["off", "OFF", ""])
def test_the_cache_can_be_turned_off(value: str, write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk_cache.ENV_DIR, value)
    assert disk_cache.cache_dir() is None
    assert len(load_spec(write_spec(SPEC)).tasks) == 2


def test_the_default_directory_follows_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(disk_cache.ENV_DIR, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert disk_cache.cache_dir() == tmp_path / "supervisor_spec_cache"
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert disk_cache.cache_dir() == tmp_path / "home" / "airflow" / "supervisor_spec_cache"


def test_concurrent_writers_and_readers_see_whole_entries(cache: Path, write_spec: WriteSpec) -> None:
    path = write_spec(SPEC)
    spec = load_spec(path)
    sha256, seen, errors = spec.spec_hash or "", [], []

    def work() -> None:
        try:
            for _ in range(25):
                disk_cache.store(str(path), sha256, spec)
                seen.append(disk_cache.load(str(path), sha256))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(isinstance(s, WorkflowSpec) and s == spec for s in seen)  # every read found a whole entry
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == _entries(cache)  # no temp file left behind
