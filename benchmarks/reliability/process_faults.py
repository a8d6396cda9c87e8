"""Processes killed mid-call: the tests that kill them, run and reported here.

These faults need real processes (a Celery worker, a triggerer, a task process) killed with SIGKILL while a model
call is in flight, so they live in the test suite, where they also run on every change; this part runs them in a
subprocess and reports each outcome:

* ``tests/integration/test_celery_faults.py``: Celery with two workers and two triggerers on Redis and PostgreSQL;
  the process running a sync call (a worker) or a deferred call (a triggerer) is SIGKILLed while the provider holds
  the request. The call completes on the other one, there is one analytics row per request that reached the
  provider (the lost attempt recorded as ``AttemptLost``), and the budget is charged once, for the answer.
* ``tests/integration/test_scheduler_restart.py``: the scheduler SIGKILLed with its LocalExecutor workers and task
  processes while a call is in flight, and started again by ``make run``'s launcher. A sync call's task is taken
  over and run again (one ``AttemptLost`` row, the budget charged once); a deferred call carries on in the
  triggerer (one request, one row).
* ``tests/unit/store/test_intents.py``: a process SIGKILLed mid-call, sync and deferred, leaves an intent that the
  next try (or the trigger's re-run, or the scan) records as exactly one lost attempt.
* ``tests/unit/store/test_recorder.py``: rows spooled by a process that died are flushed by another; threads
  spooling at once write whole lines; recording never raises, even when the spool itself fails.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.reliability import Section, timed

ROOT = Path(__file__).resolve().parents[2]
TESTS = (
    "tests/integration/test_celery_faults.py",
    "tests/integration/test_scheduler_restart.py",
    "tests/unit/store/test_intents.py",
    "tests/unit/store/test_recorder.py::test_rows_spooled_by_a_process_that_died_are_flushed_by_another",
    "tests/unit/store/test_recorder.py::test_threads_spooling_at_once_write_whole_lines",
    "tests/unit/store/test_recorder.py::test_record_never_raises_even_when_the_spool_fails",
)


def run(quick: bool) -> Section:
    """Run the process-fault tests (``quick`` changes nothing: make test runs them itself)."""
    section = Section(key="process_faults", title="Processes killed mid-call")
    with timed(section), tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", *TESTS]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
        cases = _cases(report) if report.exists() else []
    section.headers = ["test", "outcome", "time"]
    section.rows = [[name, outcome, f"{seconds:.1f} s"] for name, outcome, seconds in cases]
    for name, outcome, _ in cases:
        section.check(outcome == "passed", f"{name}: {outcome}")
    section.check(bool(cases), f"the tests did not run: {done.stdout[-500:]}{done.stderr[-500:]}")
    section.summary = (
        f"{len(cases)} tests, {sum(o == 'passed' for _, o, _ in cases)} passed.\n\n" + (__doc__.split("\n\n", 1)[1])
    )
    return section


def _cases(report: Path) -> list[tuple[str, str, float]]:
    """(test, outcome, seconds) from a JUnit XML report."""
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = f"skipped: {child.get('message', '')}"
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        out.append((name, outcome, float(case.get("time", 0))))
    return out
