"""The spec layer and the CLI must stay light: no Airflow, no AI SDK, no data-science stack."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("airflow", "anthropic", "openai", "pandas", "sklearn")


def test_importing_the_spec_layer_and_cli_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import supervisor_lib.spec, supervisor_lib.cli\n"
        "from supervisor_lib.spec import load_spec\n"
        "load_spec('tests/fixtures/specs/valid/all_fields.yaml')\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    from tests.unit.spec.conftest import FIXTURES

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=FIXTURES.parents[2], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
