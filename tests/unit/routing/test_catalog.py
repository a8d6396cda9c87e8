"""The provider catalogue: the shipped file, overrides (file, Variable at run time only), errors, pools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from supervisor_lib.execution import variables
from supervisor_lib.execution.variables import runtime_catalog
from supervisor_lib.model_facts import load_prices
from supervisor_lib.routing.catalog import (
    CatalogError,
    default_catalog_path,
    load_catalog,
    merge,
    parse_catalog,
)
from supervisor_lib.routing.pools import default_pool
from tests.unit.routing.conftest import CATALOG

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_catalogue_is_complete() -> None:
    catalog = load_catalog(ROOT / "include" / "catalog.yaml")
    assert set(catalog.providers) == {"anthropic", "openai"}
    for model in catalog.models.values():
        assert model.price is not None, f"{model.name} has no price in models.yaml"
        assert not model.price.deprecated, f"{model.name} is deprecated: leave it out of the catalogue"
        if "long_context" in model.capabilities:
            assert model.context_window >= 200_000, model.name
    assert catalog.required("bug_fix") == {"code_edit", "structured_output"}
    assert catalog.required("unknown_type", ["vision"]) == {"vision"}


def test_airflow_settings_leaves_the_provider_pool_sizes_to_the_catalogue() -> None:
    """The pools are sized by the catalogue alone (tests/unit/local/test_settings.py checks what gets applied)."""
    settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())
    pools = {pool["pool_name"]: pool for pool in settings["airflow"]["pools"]}
    for provider in load_catalog(ROOT / "include" / "catalog.yaml").providers.values():
        assert "pool_slot" not in pools.get(provider.pool, {}), f"size {provider.pool} in include/catalog.yaml"


def test_the_provider_pool_follows_the_file_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [default_pool(name) for name in ("anthropic", "openai", "mistral")] == ["anthropic", "openai", None]
    override = tmp_path / "mine.yaml"
    override.write_text("providers:\n  openai: {pool: openai_slow}\n")
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(override))
    monkeypatch.setenv("AIRFLOW_VAR_SUPERVISOR_CATALOG", "providers: {anthropic: {pool: from_variable}}")
    assert (default_pool("openai"), default_pool("anthropic")) == ("openai_slow", "anthropic")  # no Variable


def test_an_override_file_is_merged_key_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "mine.yaml"
    override.write_text(
        "models:\n  gpt-5: null\n  gpt-5-mini: {tier: premium}\nproviders:\n  openai: {pool_slots: 2}\n"
    )
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(override))
    catalog = load_catalog(ROOT / "include" / "catalog.yaml")
    assert "gpt-5" not in catalog.models and catalog.models["gpt-5-mini"].tier == "premium"
    assert catalog.models["gpt-5-mini"].capabilities  # the rest of the entry is kept
    assert catalog.providers["openai"].pool_slots == 2 and catalog.providers["openai"].pool == "openai"
    assert catalog.source.endswith(f"+ $SUPERVISOR_CATALOG ({override})")


def test_the_variable_is_read_only_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_SUPERVISOR_CATALOG", "models: {claude-opus-4-6: null}")
    base = ROOT / "include" / "catalog.yaml"
    assert "claude-opus-4-6" in load_catalog(base).models  # parse time: no Variable
    runtime = runtime_catalog()
    assert "claude-opus-4-6" not in runtime.models and "Variable supervisor_catalog" in runtime.source


def test_the_variable_may_name_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "catalog-override.yaml"
    path.write_text("routing: {default_tier: premium}\n")
    monkeypatch.setenv("AIRFLOW_VAR_SUPERVISOR_CATALOG", str(path))
    assert runtime_catalog().settings.default_tier == "premium"


def test_the_deployed_catalogue_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_catalog_path() == ROOT / "include" / "catalog.yaml"
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "catalog.yaml").write_text("tiers: [only]\n")
    assert default_catalog_path() == tmp_path / "include" / "catalog.yaml"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"tiers": []}, "tiers: give at least one tier"),
        ({"models": {"gpt-5": {**CATALOG["models"]["gpt-5"], "tier": "gold"}}}, r"models\.gpt-5\.tier: 'gold'"),
        ({"models": {"gpt-5": {**CATALOG["models"]["gpt-5"], "capabilities": ["telepathy"]}}},
         r"models\.gpt-5\.capabilities: unknown capabilities \['telepathy'\]"),
        ({"models": {"gpt-5": {**CATALOG["models"]["gpt-5"], "provider": "anthropic"}}},
         "the price table lists it under 'openai'"),
        ({"models": {"gpt-5": {**CATALOG["models"]["gpt-5"], "provider": "mistral"}}}, "is not under providers"),
        ({"models": {"gpt-5": {**CATALOG["models"]["gpt-5"], "context": 5}}}, r"unknown key\(s\) \['context'\]"),
        ({"providers": {"openai": {"pool_slots": 0}}}, r"providers\.openai\.pool_slots: expected a whole number"),
        ({"task_types": {"bug_fix": ["code_edit", "typing"]}}, r"task_types\.bug_fix: unknown capabilities"),
        ({"routing": {"health": {"window_s": 10}}}, "must be longer than"),
        ({"routing": {"default_tier": "gold"}}, "default_tier: 'gold'"),
    ],
)  # fmt: skip
def test_errors_name_the_source_and_the_key(change: dict[str, object], error: str) -> None:
    with pytest.raises(CatalogError, match=error) as raised:
        parse_catalog(merge(CATALOG, change), "my.yaml", load_prices())
    assert str(raised.value).startswith("my.yaml: ")


def test_invalid_yaml_and_a_missing_override_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(CatalogError, match=r"bad\.yaml: invalid YAML"):
        load_catalog(bad)
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(tmp_path / "missing.yaml"))
    with pytest.raises(CatalogError, match=r"\$SUPERVISOR_CATALOG names .*missing.yaml, which cannot be read"):
        load_catalog(ROOT / "include" / "catalog.yaml")


def test_the_policy_modules_import_no_airflow() -> None:
    code = (
        "import sys; import supervisor_lib.routing.policy, supervisor_lib.routing.budgets, "
        "supervisor_lib.routing.forecast, supervisor_lib.routing.health, supervisor_lib.routing.catalog; "
        "bad = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_concurrent_reads_of_a_variable_share_one_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    lookups: list[str] = []

    def slow_read(name: str) -> tuple[str, str]:
        lookups.append(name)
        time.sleep(0.2)
        return f"Variable {name}", f"value {len(lookups)}"

    monkeypatch.setattr(variables, "_read_variable", slow_read)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(variables.variable_override("v"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lookups == ["v"] and results == [("Variable v", "value 1")] * 8
    assert variables.variable_override("v") == ("Variable v", "value 2")  # a later read looks again
