"""The example plugin (examples/supervisor-openai-compatible), installed as a real distribution: the spec layer,
``supervisor validate|schema``, the price table and the router know its task type and provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor_lib import extensions
from supervisor_lib.model_facts import load_prices
from supervisor_lib.routing.catalog import parse_catalog
from supervisor_lib.routing.policy import RouteRequest, static_plan
from supervisor_lib.spec import json_schema, load_specs
from supervisor_lib.spec.plugins import PluginTaskType, plugin_settings
from tests.support.plugins import EXAMPLE
from tests.unit.routing.conftest import CATALOG

pytestmark = pytest.mark.usefixtures("example_plugin")
SPECS = EXAMPLE / "specs"
BAD = """\
dag_id: bad_changelog
tasks:
  - id: notes
    type: changelog
    provider: openai_compatible
    model: llama-3.1-8b-instruct
    with:
      version: "2.0"
      audince: users
      max_words: 5
  - id: plain
    type: llm
    prompt: hi
    with: {version: "1"}
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``supervisor ARGS`` in a new process that reports whether it imported Airflow or an SDK."""
    code = ("import sys, runpy; sys.argv = ['supervisor', *sys.argv[1:]]\n"
            "try: runpy.run_module('supervisor_lib.cli', run_name='__main__')\n"
            "except SystemExit as exit: code = exit.code\n"
            "heavy = sorted(m for m in ('airflow', 'openai', 'anthropic') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)")  # fmt: skip
    env = {**os.environ, "SUPERVISOR_SPEC_CACHE_DIR": "off"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_validate_knows_the_plugin_task_type_and_provider_without_importing_airflow(tmp_path: Path) -> None:
    result = _cli("validate", str(SPECS), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 1 spec(s), 2 task(s) valid" in result.stdout and "warning" not in result.stdout
    assert "HEAVY []" in result.stderr


def test_plugin_fields_are_checked_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    result = _cli("validate", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    text = result.stdout
    assert "bad.yaml:9: [tasks[0].with.audince] unknown key 'audince' (did you mean 'audience'?)" in text
    assert "bad.yaml:7: [tasks[0].with.changes] missing required key 'changes'" in text
    assert "bad.yaml:10: [tasks[0].with.max_words] must be at least 20, got 5" in text
    assert "bad.yaml:14: [tasks[1].with] 'with' applies only to task types from plugins; llm is built in" in text


def test_the_json_schema_has_the_plugin_type_and_its_fields() -> None:
    from jsonschema import Draft202012Validator

    schema = json_schema()
    assert "changelog" in schema["$defs"]["TaskType"]["enum"] and "llm" in schema["$defs"]["TaskType"]["enum"]
    assert "openai_compatible" in schema["$defs"]["Provider"]["enum"]
    validator = Draft202012Validator(schema)
    import yaml

    spec = yaml.safe_load((SPECS / "release_notes.yaml").read_text())
    assert list(validator.iter_errors(spec)) == []
    spec["tasks"][0]["with"]["audience"] = "everyone"
    errors = [error.message for error in validator.iter_errors(spec)]
    assert any("'everyone' is not one of ['users', 'developers', 'operators']" in e for e in errors), errors


def test_the_schema_command_prints_it(tmp_path: Path) -> None:
    result = _cli("schema", cwd=tmp_path)
    assert result.returncode == 0 and "HEAVY []" in result.stderr
    rules = json.loads(result.stdout)["$defs"]["TaskSpec"]["allOf"]
    assert [rule["if"]["properties"]["type"]["const"] for rule in rules] == ["changelog"]
    assert rules[0]["then"]["properties"]["with"]["required"] == ["changes", "version"]


def test_a_loaded_spec_carries_the_plugin_type_and_settings() -> None:
    specs, errors = load_specs(SPECS)
    assert not errors
    task = specs[0].effective("changelog")
    assert isinstance(task.type, PluginTaskType) and task.type.calls_model and not task.writes
    settings: Any = plugin_settings(task)
    assert (settings.audience, settings.sections, settings.max_words) == ("operators", ("Added", "Fixed"), 300)


def test_the_plugin_prices_join_the_table_once_it_is_loaded() -> None:
    extensions.clear()
    assert "llama-3.1-8b-instruct" not in load_prices().models  # nothing named the provider yet
    assert extensions.provider("openai_compatible") is not None
    price = load_prices().models["llama-3.1-8b-instruct"]
    assert (price.provider, price.input, price.output) == ("openai_compatible", 0.02, 0.05)
    assert load_prices().models["gpt-5"].provider == "openai", "the built-in prices stay"


def _catalog(with_plugin: bool) -> Any:
    providers = dict(CATALOG["providers"])
    if with_plugin:
        providers["openai_compatible"] = {"pool": "local_llm", "pool_slots": 2, "conn_id": "local_llm"}
    return parse_catalog({**CATALOG, "providers": providers}, "test catalogue", load_prices())


def test_the_router_picks_the_plugin_models_once_the_catalogue_lists_the_provider() -> None:
    request = RouteRequest(task_type="changelog", capabilities=frozenset({"structured_output"}), tier="economy")
    without = static_plan(_catalog(with_plugin=False), request)
    assert "llama-3.1-8b-instruct" not in [c.model for c in without.candidates], "installing never reroutes"
    catalog = _catalog(with_plugin=True)
    chosen = static_plan(catalog, request).chosen
    assert chosen is not None and (chosen.model, chosen.provider) == ("llama-3.1-8b-instruct", "openai_compatible")
    assert chosen.pool == "local_llm" and catalog.models[chosen.model].price is not None
    code = RouteRequest(task_type="bug_fix", capabilities=frozenset({"code_edit"}), tier="standard")
    assert "qwen2.5-coder-32b-instruct" in [c.model for c in static_plan(catalog, code).candidates]


def test_specs_using_a_plugin_are_not_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor_lib.spec import clear_cache

    monkeypatch.setenv("SUPERVISOR_SPEC_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    load_specs([SPECS, Path(__file__).parents[3] / "tests" / "fixtures" / "specs" / "valid"])
    cached = list((tmp_path / "cache").rglob("*.pickle"))
    assert cached, "the built-in specs are cached"
    assert not any(b"openai_compatible" in path.read_bytes() for path in cached)
