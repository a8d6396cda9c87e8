"""The spec/REST bad-input fuzzer at make-test size: every guarantee holds, and the fuzzer itself does its job."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability import Section, spec_fuzz
from benchmarks.reliability.spec_fuzz import KINDS, SIZES, Mutant, check_mutant

pytestmark = pytest.mark.slow  # the reliability suite's parts (make unit skips them)

MINIMAL = "tasks:\n  - id: summarize\n    type: llm\n    prompt: Summarize the README.\n"


@pytest.fixture(scope="module")
def section() -> Section:
    return spec_fuzz.run(quick=True)


def _spec_rows(section: Section) -> dict[str, list[object]]:
    return {str(row[0]): row for row in section.rows if not str(row[0]).startswith("rest:")}


def test_every_guarantee_holds(section: Section) -> None:
    assert section.failures == []
    assert section.key == "spec_fuzz" and section.summary and section.seconds < 120


def test_every_mutation_kind_was_tried_and_ended_one_way_or_the_other(section: Section) -> None:
    rows = _spec_rows(section)
    assert list(rows) == list(KINDS)
    assert sum(int(str(row[1])) for row in rows.values()) == SIZES[True][0]
    for kind, (_, mutants, loaded, refused, slowest_ms, broken) in rows.items():
        assert int(str(mutants)) >= 10, kind
        assert int(str(loaded)) + int(str(refused)) == int(str(mutants)), kind
        assert float(str(slowest_ms)) <= spec_fuzz.MAX_PARSE_SECONDS * 1000 and broken == 0, kind
    assert sum(int(str(row[3])) for row in rows.values()) > SIZES[True][0] // 2  # mostly bad, as meant


def test_rest_rows_cover_every_group_of_bad_conf(section: Section) -> None:
    rest = {str(row[0]): row for row in section.rows if str(row[0]).startswith("rest:")}
    assert {"rest: good conf", "rest: wrong type", "rest: missing required", "rest: huge value",
            "rest: out of range", "rest: injection in a ref"} <= set(rest)  # fmt: skip
    assert rest["rest: good conf"][2] == rest["rest: good conf"][1]  # every good conf accepted
    assert rest["rest: wrong type"][3] == rest["rest: wrong type"][1]  # every wrong type refused, naming it


def test_mutants_are_deterministic(tmp_path: Path) -> None:
    first, again = spec_fuzz.mutants(40, tmp_path / "canary"), spec_fuzz.mutants(40, tmp_path / "canary")
    assert first == again
    assert {mutant.kind for mutant in first} == set(KINDS)


def test_a_known_bad_mutant_yields_exactly_one_located_error(tmp_path: Path) -> None:
    data = (MINIMAL + "    modle: claude-haiku-4-5\n").encode()
    outcome = check_mutant(Mutant(0, "unknown key", "spec.yaml", data), tmp_path)
    assert outcome.broken == [] and not outcome.loaded
    [problem] = outcome.problems
    assert (problem.line, problem.path) == (5, "tasks[0].modle")
    assert problem.render() == f"{outcome.path}:5: [tasks[0].modle] unknown key 'modle' (did you mean 'model'?)"


def test_a_valid_mutant_builds_its_dag(tmp_path: Path) -> None:
    outcome = check_mutant(Mutant(1, "missing key", "weekly.yaml", MINIMAL.encode()), tmp_path)
    assert outcome.loaded and outcome.dag_id == "weekly" and outcome.broken == []


def test_a_python_tag_never_runs(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    data = f"description: !!python/object/apply:os.system ['touch {canary}']\n{MINIMAL}".encode()
    outcome = check_mutant(Mutant(2, "!!python tag", "spec.yaml", data), tmp_path)
    assert outcome.broken == [] and len(outcome.problems) == 1 and outcome.problems[0].line == 1
    assert not canary.exists()


def test_the_fuzzer_reports_a_broken_guarantee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor_lib.spec import loader

    def crash(data: bytes, file: str, sha256: str) -> object:
        raise KeyError("a bug")

    monkeypatch.setattr(loader, "_parse", crash)
    monkeypatch.setattr(loader.disk_cache, "load", lambda *args: None)
    outcome = check_mutant(Mutant(3, "wrong type", "spec.yaml", MINIMAL.encode()), tmp_path)
    assert any("safety net" in line for line in outcome.broken)


def test_rest_refuses_a_bad_conf_naming_the_field_and_creates_no_run() -> None:
    api = spec_fuzz.RestApi()
    good = api.trigger(spec_fuzz.GOOD_CONF)
    assert (good.status, good.runs) == (200, 1)
    bad = api.trigger({**spec_fuzz.GOOD_CONF, "task_type": "rewrite"})
    assert (bad.status, bad.runs) == (400, 0)
    assert bad.message.startswith("Invalid input for param task_type: 'rewrite' is not one of")
