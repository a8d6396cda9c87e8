"""airflow_settings.yaml → Airflow connections, pools and variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib.local.settings import SettingsError, apply_settings, expand_env, load_settings
from supervisor_lib.model_facts import load_prices
from supervisor_lib.routing.catalog import Catalog, load_catalog, parse_catalog

ROOT = Path(__file__).resolve().parents[3]


def _catalog(**pools: int) -> Catalog:
    """A catalogue whose providers (named like their pools) have these pool sizes, and no models."""
    providers = {name: {"pool": name, "pool_slots": slots} for name, slots in pools.items()}
    return parse_catalog({"tiers": ["standard"], "providers": providers}, "cat.yaml", load_prices())


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(text)
    return path


def test_project_settings_load_with_and_without_keys() -> None:
    offline = load_settings(ROOT / "airflow_settings.yaml", env={})
    conns = {c.conn_id: c for c in offline.connections}
    assert conns["anthropic_default"].conn_type == "anthropic"
    assert conns["anthropic_default"].host == "https://api.anthropic.com"
    assert conns["anthropic_default"].password is None
    assert conns["openai_default"].extra["default_model"]
    assert {p.name for p in offline.pools} >= {"anthropic", "openai"}

    keyed = load_settings(
        ROOT / "airflow_settings.yaml", env={"ANTHROPIC_API_KEY": "k1", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    conns = {c.conn_id: c for c in keyed.connections}
    assert conns["anthropic_default"].password == "k1"
    assert conns["openai_default"].host == "http://127.0.0.1:9/v1"


def test_project_pools_are_sized_from_the_catalogue() -> None:
    catalog = load_catalog()
    pools = {pool.name: pool for pool in load_settings(ROOT / "airflow_settings.yaml", env={}).pools}
    assert set(pools) == {provider.pool for provider in catalog.providers.values()}
    for provider in catalog.providers.values():
        assert pools[provider.pool].slots == provider.pool_slots, provider
        assert pools[provider.pool].include_deferred, "a deferred call must keep holding its pool slot"


def test_an_explicit_pool_slot_wins_and_unlisted_catalogue_pools_are_added(tmp_path: Path) -> None:
    text = "airflow:\n  pools:\n    - {pool_name: anthropic, pool_slot: 2}\n"
    text += "    - {pool_name: openai, pool_description: o}\n"
    pools = load_settings(_write(tmp_path, text), env={}, catalog=_catalog(anthropic=8, openai=6, mistral=3)).pools
    assert [(p.name, p.slots, p.description, p.include_deferred) for p in pools] == [
        ("anthropic", 2, "", False),
        ("openai", 6, "o", False),
        ("mistral", 3, "Concurrent mistral calls (sized from cat.yaml)", True),
    ]
    assert [p.name for p in load_settings(_write(tmp_path, "{}\n"), env={}, catalog=_catalog(a=1)).pools] == ["a"]


def test_a_pool_without_slot_that_no_provider_names_says_where(tmp_path: Path) -> None:
    path = _write(tmp_path, "airflow:\n  pools:\n    - {pool_name: openai}\n    - {pool_name: mine}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(path, env={}, catalog=_catalog(openai=8))
    assert str(raised.value) == (
        f"{path}: airflow.pools[1]: no pool_slot, and no provider in cat.yaml has pool 'mine' (catalogued pools: "
        "openai); give pool_slot, or make it a provider's pool in the catalogue"
    )


def test_an_unreadable_catalogue_is_a_settings_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match=r"sized from the provider catalogue, which is invalid: .*missing\.yaml"):
        load_settings(ROOT / "airflow_settings.yaml", env={})


def test_password_is_not_in_repr() -> None:
    settings = load_settings(ROOT / "airflow_settings.yaml", env={"ANTHROPIC_API_KEY": "sk-canary-123"})
    assert "sk-canary-123" not in repr(settings)


def test_env_expansion_forms() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert expand_env("x${A}y", env, "w") == "x1y"
    assert expand_env("${EMPTY:-d}", env, "w") == "d"
    assert expand_env("${MISSING:-}", env, "w") == ""
    assert expand_env("$A and $$ stay", env, "w") == "$A and $$ stay"
    assert expand_env({"k": ["${A}"]}, env, "w") == {"k": ["1"]}


def test_unset_variable_names_the_entry(tmp_path: Path) -> None:
    path = _write(tmp_path, "airflow:\n  connections:\n    - {conn_id: c, conn_type: http, conn_password: '${NOPE}'}\n")
    with pytest.raises(SettingsError, match=r"airflow\.connections\[0\]\.conn_password: environment variable NOPE"):
        load_settings(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("airflow:\n  connections:\n    - {conn_id: c}\n", r"connections\[0\]: missing conn_type"),
        ("airflow:\n  connections:\n    - {conn_id: c, conn_type: x, host: y}\n", r"unknown key\(s\) host"),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: -1}\n", r"pools\[0\]\.pool_slot: must be a non-negative"),
        ("airflow:\n  variables: {a: 1}\n", r"airflow\.variables must be a list"),
        ("airflow:\n  connections:\n    - {conn_id: c, conn_type: x, conn_port: abc}\n", r"conn_port: 'abc' is not"),
        ("airflow: [\n", r"invalid YAML"),
    ],
)
def test_invalid_settings_say_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(_write(tmp_path, text), env={})


@pytest.mark.slow
def test_apply_is_idempotent_and_updates(airflow_db: object, tmp_path: Path) -> None:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    text = (
        "airflow:\n  connections:\n    - {conn_id: t_conn, conn_type: openai, conn_host: '${H}', conn_password: pw,"
        " conn_extra: {default_model: m}}\n  pools:\n    - {pool_name: t_pool, pool_slot: 3}\n"
        "  variables:\n    - {variable_name: t_var, variable_value: '${V}'}\n"
    )
    path = _write(tmp_path, text)
    assert apply_settings(load_settings(path, env={"H": "http://a", "V": "one"})) == {
        "connections": 1,
        "pools": 1 + len(load_catalog().providers),  # t_pool, and the catalogue's provider pools
        "variables": 1,
    }
    apply_settings(load_settings(path, env={"H": "http://b", "V": "two"}))
    with create_session() as session:
        conns = session.query(Connection).filter(Connection.conn_id == "t_conn").all()
        assert len(conns) == 1
        assert conns[0].host == "http://b" and conns[0].password == "pw"
        assert conns[0].extra_dejson == {"default_model": "m"}
        assert session.query(Pool).filter(Pool.pool == "t_pool").one().slots == 3
    assert Variable.get("t_var") == "two"


@pytest.mark.slow
def test_a_catalogue_override_resizes_the_applied_pool(
    airflow_db: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models import Pool
    from airflow.utils.session import create_session

    path = _write(tmp_path, "airflow:\n  pools:\n    - {pool_name: openai, include_deferred: true}\n")
    override = tmp_path / "catalog.yaml"
    monkeypatch.setenv("SUPERVISOR_CATALOG", str(override))
    for slots in (3, 12):  # different lengths: the catalogue re-reads a file whose size or mtime changed
        override.write_text(f"providers:\n  openai: {{pool_slots: {slots}}}\n")
        apply_settings(load_settings(path, env={}))
        with create_session() as session:
            pool = session.query(Pool).filter(Pool.pool == "openai").one()
            assert (pool.slots, pool.include_deferred) == (slots, True)
            anthropic = session.query(Pool).filter(Pool.pool == "anthropic").one()  # not in the file: added
            assert anthropic.include_deferred and anthropic.slots == load_catalog().providers["anthropic"].pool_slots
    monkeypatch.delenv("SUPERVISOR_CATALOG")
    apply_settings(load_settings(path, env={}))  # the shared test DB keeps the shipped sizes
