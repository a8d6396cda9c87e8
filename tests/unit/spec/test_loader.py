"""Loading spec files: located errors, the fixtures, directories, dag_id clashes and the cache."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib.spec import SpecError, WorkflowSpec, load_spec, load_specs
from tests.unit.spec.conftest import FIXTURES, WriteSpec

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = sorted(p for p in (FIXTURES / "valid").iterdir() if p.suffix in (".yaml", ".yml"))
EXPECT = re.compile(r"^# expect: (?P<line>\d+|-): (?:\[(?P<path>.+?)\] )?(?P<message>.+)$")


def _expectation(path: Path) -> tuple[int | None, str, str]:
    match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name} must begin with '# expect: <line>: [<path>] <message>'"
    line = None if match["line"] == "-" else int(match["line"])
    return line, match["path"] or "", match["message"]


def test_there_is_an_invalid_fixture_per_problem_class() -> None:
    assert len(INVALID) >= 28


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_yields_exactly_its_located_error(path: Path) -> None:
    line, field, message = _expectation(path)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 1, str(caught.value)
    problem = caught.value.problems[0]
    assert (problem.line, problem.path) == (line, field), str(caught.value)
    assert message in problem.message
    assert problem.file == str(path)


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_fixture_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.source_path == str(path)
    assert spec.spec_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.topological_order()[0] in {t.id for t in spec.tasks if not t.depends_on}


def test_error_renders_file_line_path_and_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parents[2])
    with pytest.raises(SpecError) as caught:
        load_spec(FIXTURES / "invalid" / "unknown_provider.yaml")
    assert str(caught.value) == (
        "tests/fixtures/specs/invalid/unknown_provider.yaml:9: [tasks[2].provider] "
        "unknown provider 'antropic' (did you mean 'anthropic'?)"
    )
    assert (caught.value.line, caught.value.path) == (9, "tasks[2].provider")


def test_file_level_errors_have_no_path() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(FIXTURES / "invalid" / "yaml_syntax.yaml")
    assert str(caught.value).endswith(
        ":6: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence started at line 5)"
    )


def test_every_problem_of_a_file_is_reported_together(write_spec: WriteSpec) -> None:
    path = write_spec(
        "schedul: '@daily'\n"
        "tasks:\n"
        "  - id: a\n"
        "    type: code_analysis\n"
        "    budget_usd: -1\n"
        "    depends_on: [b]\n"
        "  - id: b\n"
        "    type: bugfix\n"
        "    depends_on: [a]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    got = [(p.line, p.path) for p in caught.value.problems]
    assert got == [(1, "schedul"), (5, "tasks[0].budget_usd"), (6, "tasks[0].depends_on"), (8, "tasks[1].type")]
    assert "dependency cycle: a -> b -> a" in caught.value.problems[2].message


def test_dag_id_defaults_to_the_file_stem(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec("tasks: [{id: a, type: code_analysis}]\n", "weekly_report.yaml"))
    assert spec.dag_id == "weekly_report"


def test_a_file_name_that_is_no_dag_id_says_so(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec("tasks: [{id: a, type: code_analysis}]\n", "weekly report.yaml"))
    assert caught.value.path == "dag_id"
    assert caught.value.line is None
    assert "taken from the file name" in caught.value.message


def test_problems_carry_the_dag_id(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec("dag_id: nightly\ntasks: [{id: a, type: nope}]\n"))
    assert caught.value.problems[0].dag_id == "nightly"


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes("description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(tmp_path / "latin1.yaml")


def test_unsafe_yaml_tags_are_refused(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(write_spec("dag_id: !!python/object/apply:os.system ['true']\ntasks: []\n"))


def test_spec_error_pickles() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(FIXTURES / "invalid" / "cycle.yaml")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.problems == caught.value.problems
    assert str(copy) == str(caught.value)


# --- directories ----------------------------------------------------------------------------------------------------


def test_load_specs_reports_each_bad_file_and_keeps_the_good(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("tasks: [{id: a, type: code_analysis}]\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "also_good.yml").write_text("tasks: [{id: a, type: llm, prompt: hi}]\n")
    (tmp_path / "bad_one.yaml").write_text("tasks: [{id: a, type: nope}]\n")
    (tmp_path / "bad_two.yaml").write_text("tasks: [\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "ignored.yaml").write_text("not: [valid\n")
    (tmp_path / "notes.txt").write_text("ignored")
    specs, errors = load_specs(tmp_path)
    assert sorted(s.dag_id for s in specs) == ["also_good", "good"]
    assert sorted(Path(k).name for k in errors) == ["bad_one.yaml", "bad_two.yaml"]
    assert all(isinstance(e, SpecError) for e in errors.values())


def test_dag_id_clash_is_reported_on_the_later_file() -> None:
    specs, errors = load_specs(FIXTURES / "clash")
    assert [s.dag_id for s in specs] == ["payments_nightly"]
    assert specs[0].source_path is not None and specs[0].source_path.endswith("a_payments.yaml")
    (key, error), *_ = errors.items()
    assert key.endswith("b_payments_copy.yaml") and len(errors) == 1
    assert (error.line, error.path) == (2, "dag_id")
    assert "already used by" in error.message and "a_payments.yaml" in error.message


def test_load_specs_takes_files_and_directories_and_reports_missing_paths(tmp_path: Path) -> None:
    specs, errors = load_specs([FIXTURES / "valid" / "minimal.yaml", FIXTURES / "clash", tmp_path / "nope"])
    assert [s.dag_id for s in specs] == ["payments_nightly", "minimal"]
    assert {Path(k).name for k in errors} == {"b_payments_copy.yaml", "nope"}


# --- cache ----------------------------------------------------------------------------------------------------------


def test_an_unchanged_file_comes_from_the_cache(write_spec: WriteSpec) -> None:
    path = write_spec("tasks: [{id: a, type: code_analysis}]\n")
    assert load_spec(path) is load_spec(path)


def test_an_edit_with_the_same_size_and_mtime_is_caught_by_the_hash(write_spec: WriteSpec) -> None:
    path = write_spec("tasks: [{id: a, type: code_analysis}]\n")
    first = load_spec(path)
    stat = os.stat(path)
    path.write_text("tasks: [{id: b, type: code_analysis}]\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_spec(path).tasks[0].id == "b"
    assert load_spec(path) is not first


def test_invalid_files_are_cached_too_and_raise_a_fresh_error(write_spec: WriteSpec) -> None:
    path = write_spec("tasks: [{id: a, type: nope}]\n")
    with pytest.raises(SpecError) as first:
        load_spec(path)
    with pytest.raises(SpecError) as second:
        load_spec(path)
    assert first.value is not second.value
    assert first.value.problems == second.value.problems


def _median_ms(run: Callable[[int], object], times: int) -> float:
    samples = []
    for i in range(times):
        start = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def test_load_times_of_a_twenty_task_spec(tmp_path: Path) -> None:
    source = (FIXTURES / "valid" / "twenty_tasks.yaml").read_bytes()
    load_spec(FIXTURES / "valid" / "twenty_tasks.yaml")  # imports jinja2, jsonschema, croniter once
    copies = []
    for i in range(30):
        copies.append(tmp_path / f"copy_{i}.yaml")
        copies[-1].write_bytes(source)
    cold = _median_ms(lambda i: load_spec(copies[i]), 30)
    warm = _median_ms(lambda i: load_spec(copies[0]), 200)
    assert len(load_spec(copies[0]).tasks) == 20
    # Targets are 0.5 ms warm and ~3 ms cold; the bounds leave room for a busy CI machine.
    assert warm < 0.5
    assert cold < 15


def test_spec_equality_ignores_provenance(tmp_path: Path) -> None:
    text = (FIXTURES / "valid" / "minimal.yaml").read_text()
    (tmp_path / "minimal.yaml").write_text(text + "\n# a comment changes the hash, not the spec\n")
    here, there = load_spec(FIXTURES / "valid" / "minimal.yaml"), load_spec(tmp_path / "minimal.yaml")
    assert here.spec_hash != there.spec_hash
    assert here == there
    assert isinstance(here, WorkflowSpec)


def test_a_symlink_under_another_name_gets_its_own_dag_id(write_spec: WriteSpec) -> None:
    target = write_spec("tasks: [{id: a, type: code_analysis}]\n", "original.yaml")
    link = target.with_name("alias.yaml")
    link.symlink_to(target)
    assert load_spec(target).dag_id == "original"
    assert load_spec(link).dag_id == "alias"
    assert load_spec(link).source_path == str(link)


def test_an_alias_bomb_is_refused_fast_and_hides_no_other_spec(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_bytes((FIXTURES / "invalid" / "alias_bomb.yaml").read_bytes())
    (tmp_path / "good.yaml").write_text("tasks:\n  - {id: a, type: llm, prompt: hi}\n")
    started = time.monotonic()
    specs, errors = load_specs(tmp_path)
    assert time.monotonic() - started < 1.0
    assert [s.dag_id for s in specs] == ["good"] and list(errors) == [str(tmp_path / "bomb.yaml")]


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("tasks: []\n# " + "x" * 2_000_000 + "\n")
    with pytest.raises(SpecError, match=r"the file is 2,000,013 bytes; a spec may have at most 1,048,576: split it"):
        load_spec(path)


def test_any_failure_while_loading_becomes_that_files_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor_lib.spec import loader

    def broken(data: bytes, file: str, sha256: str) -> Any:
        raise KeyError("a bug somewhere")

    monkeypatch.setattr(loader, "_parse", broken)
    monkeypatch.setattr(loader.disk_cache, "load", lambda *args: None)
    path = tmp_path / "x.yaml"
    path.write_text("tasks: []\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{path}: could not load the spec: KeyError: 'a bug somewhere'"
