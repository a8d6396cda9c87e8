"""Defects the spec fuzzer (benchmarks/reliability/spec_fuzz.py) found: each a bad file that must end in located
errors, quickly, or in a DAG that builds."""

from __future__ import annotations

import time

import pytest

from supervisor_lib.build import build_dag
from supervisor_lib.spec import SpecError, SpecProblem, load_spec
from tests.unit.spec.conftest import WriteSpec

#: far above what these take now (~0.3 s) and far below what they took before the fixes (7-22 s): a busy
#: machine running the whole suite must not fail them (the 1 s guarantee is the fuzzer's, benchmarks/reliability)
SLOW_S = 5.0

TASK = "tasks:\n  - id: a\n    type: llm\n    prompt: hi\n"


def _problems(path: object) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)  # type: ignore[arg-type]
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("dagrun_timeout_s: .inf\n" + TASK, 1, "dagrun_timeout_s"),
        ("dagrun_timeout_s: 1.0e+15\n" + TASK, 1, "dagrun_timeout_s"),
        (TASK + "    retry_delay_s: .inf\n", 5, "tasks[0].retry_delay_s"),
        ("tasks:\n  - {id: a, type: human_approval, subject: s, timeout_s: 1.0e+15}\n", 2, "tasks[0].timeout_s"),
    ],
)
def test_durations_that_would_overflow_the_dag_are_refused(write_spec: WriteSpec, text: str, line: int,
                                                           field: str) -> None:  # fmt: skip
    # built, they raised OverflowError from timedelta or Airflow
    [problem] = _problems(write_spec(text))
    assert (problem.line, problem.path) == (line, field)
    assert problem.message.startswith("must be at most 315360000")


def test_ten_years_is_still_a_duration(write_spec: WriteSpec) -> None:
    assert build_dag(load_spec(write_spec("dagrun_timeout_s: 315360000\n" + TASK))).dagrun_timeout is not None


def test_a_time_zone_too_long_for_a_file_name_is_an_unknown_time_zone(write_spec: WriteSpec) -> None:
    # was "could not load the spec: OSError: [Errno 36] File name too long", without a line or field
    [problem] = _problems(write_spec(f"timezone: {'A' * 300}\n{TASK}"))
    assert (problem.line, problem.path) == (1, "timezone")
    assert problem.message.startswith("unknown timezone 'AAA")


@pytest.mark.parametrize("unit", ["{{", "{", "{{ x }", "{%", "{#"])
def test_a_template_of_unclosed_braces_is_refused_within_a_second(write_spec: WriteSpec, unit: str) -> None:
    # a lazy regex per unclosed "{{" made this quadratic: 12 to 22 s for 40 kB; Jinja's recursion was not located
    path = write_spec(f"tasks:\n  - id: a\n    type: llm\n    prompt: '{unit * (100_000 // len(unit))}'\n")
    started = time.perf_counter()
    [problem] = _problems(path)
    assert time.perf_counter() - started < SLOW_S
    assert (problem.line, problem.path) == (4, "tasks[0].prompt")
    assert problem.message.startswith("template does not compile")


def test_tags_between_text_are_still_read(write_spec: WriteSpec) -> None:
    prompt = "On {{ params.branch }}, {% if ds %}{{ ds }}{% endif %} {# c #}"
    text = f"tasks:\n  - id: a\n    type: llm\n    prompt: '{prompt}'\n"
    assert load_spec(write_spec(text)).tasks[0].prompt.startswith("On {{ params.branch }}")
    [problem] = _problems(write_spec(text.replace("params.branch", "parms.branch")))
    assert "unknown template variable 'parms'" in problem.message


def test_thousands_of_unknown_keys_are_located_fast(write_spec: WriteSpec) -> None:
    # each problem's line was found by a linear scan of the mapping (quadratic), and each unknown key got a
    # did-you-mean (a second per 10,000): 7 s for 5,000 keys; now the first 1,000 are listed, then how many more
    path = write_spec("".join(f"unknown_{i}: {i}\n" for i in range(10_000)) + TASK)
    started = time.perf_counter()
    problems = _problems(path)
    assert time.perf_counter() - started < SLOW_S
    assert len(problems) == 1_001
    assert (problems[0].line, problems[0].path) == (1, "")
    assert problems[0].message == "9,000 more problems not listed (only the first 1,000 are): fix those first"
    assert (problems[-1].line, problems[-1].path, problems[-1].message) == (
        1_000,
        "unknown_999",
        "unknown key 'unknown_999'",
    )


def test_a_value_nested_hundreds_deep_is_refused_where_it_is(write_spec: WriteSpec) -> None:
    # 900 levels pass YAML and validation, then building the DAG raised RecursionError (copying the Param)
    nested = "{a: " * 900 + "1" + "}" * 900
    [problem] = _problems(write_spec(f"params:\n  deep:\n    default: {nested}\n{TASK}"))
    assert (problem.line, problem.path) == (3, "params.deep")
    assert problem.message == "nested more than 64 levels deep: flatten it"
    assert load_spec(write_spec(f"params:\n  ok: {{default: {'[' * 60 + ']' * 60}}}\n{TASK}")).params["ok"]


def test_a_scheduled_workflow_needs_a_default_for_every_param(write_spec: WriteSpec) -> None:
    # built, Airflow's DAG raised "not allowed to define a Schedule, as there are required params": and
    # load_dags() with it, so every spec of the folder was lost
    text = f"schedule: '@daily'\nparams:\n  version: {{type: string}}\n  ok: {{type: string, default: x}}\n{TASK}"
    [problem] = _problems(write_spec(text))
    assert (problem.line, problem.path) == (3, "params.version")
    assert problem.message.startswith("needs a default: the workflow has a schedule")
    assert build_dag(load_spec(write_spec(text.replace("'@daily'", "null")))).params["ok"] == "x"


def test_a_param_default_is_checked_against_its_format_as_airflow_does(write_spec: WriteSpec) -> None:
    # Airflow's Param checks formats: a scheduled DAG's constructor refused this default
    text = f"schedule: '@daily'\nparams:\n  when: {{type: string, format: date, default: 'not a date'}}\n{TASK}"
    [problem] = _problems(write_spec(text))
    assert (problem.line, problem.path) == (3, "params.when")
    assert "does not match its own schema: 'not a date' is not a 'date'" in problem.message


def test_a_byte_that_is_not_utf8_is_located(write_spec: WriteSpec) -> None:
    path = write_spec(TASK)
    path.write_bytes(TASK.encode() + b"    description: caf\xe9\n")
    [problem] = _problems(path)
    assert (problem.line, problem.path) == (5, "")
    assert problem.message == "the file is not UTF-8 text (invalid continuation byte)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 5_000, "invalid int '...': Exceeds the limit (4300 digits)"),
        ("!!float x", "invalid float 'x': could not convert string to float: 'x'"),
    ],
)
def test_a_value_yaml_cannot_construct_is_located(write_spec: WriteSpec, value: str, message: str) -> None:
    # was "invalid YAML value: ..." without a line
    [problem] = _problems(write_spec(f"{TASK}    retries: {value}\n"))
    assert problem.line == 5 and problem.message.startswith(f"invalid YAML: {message}")


def test_a_yaml_error_at_the_end_of_a_file_without_a_final_newline_is_on_its_last_line(write_spec: WriteSpec) -> None:
    # libyaml marks the end of the stream one line past the last one
    [problem] = _problems(write_spec("tasks:\n  - id: a\n    type: llm\n    prompt: hi\n  nope"))
    assert problem.line == 5 and problem.message.startswith("invalid YAML")


def test_a_value_with_line_breaks_renders_as_one_line(write_spec: WriteSpec) -> None:
    [problem] = _problems(write_spec('schedule: "0 0 * * *\\n0 1 * * *\\r"\n' + TASK))
    assert problem.message.startswith("invalid cron expression '0 0 * * *\n0 1 * * *\r'")  # the value, as given
    assert "\n" not in problem.render() and "\r" not in problem.render()
    assert "'0 0 * * *\\n0 1 * * *\\r'" in problem.render()
    assert SpecProblem(path="a\x00b", message="tab\tstays").render() == "[a\\x00b] tab\tstays"
