"""airflow_settings.yaml → Airflow connections, pools and variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor_lib.local.settings import SettingsError, apply_settings, expand_env, load_settings

ROOT = Path(__file__).resolve().parents[3]


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
        "pools": 1,
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
