"""Translate an Astro-format ``airflow_settings.yaml`` into Airflow connections, pools and variables.

The file is the single source of local settings (the Astro CLI reads the same format), so nobody maintains a
second copy. Loading and validation are pure; :func:`apply_settings` is the only part that touches Airflow.

String values may reference the environment explicitly as ``${NAME}`` or ``${NAME:-default}``; nothing else
is expanded, so a literal ``$`` elsewhere stays as written. A reference to an unset variable with no default
is an error that names the file, the entry and the variable.

Pools are sized from the provider catalogue (``include/catalog.yaml``, see :mod:`supervisor_lib.routing.catalog`):
a pool entry without ``pool_slot`` takes the ``pool_slots`` of the provider whose ``pool`` it names, and every
catalogued provider pool the file does not list is created too, since operators queue in their provider's pool
by default and Airflow never schedules a task whose pool does not exist.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supervisor_lib.routing.catalog import Catalog, CatalogError, load_catalog

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_CONN_KEYS = {
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_extra",
    "conn_description",
    "conn_uri",
}
_POOL_KEYS = {"pool_name", "pool_slot", "pool_description", "include_deferred"}
_VAR_KEYS = {"variable_name", "variable_value", "variable_description"}


class SettingsError(ValueError):
    """``airflow_settings.yaml`` is invalid; the message names the file, the entry and what to change."""


@dataclass(frozen=True)
class ConnectionSetting:
    """One connection, in Airflow's terms."""

    conn_id: str
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class PoolSetting:
    """One pool."""

    name: str
    slots: int
    description: str = ""
    include_deferred: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything ``airflow_settings.yaml`` declares."""

    connections: list[ConnectionSetting]
    pools: list[PoolSetting]
    variables: dict[str, str]


def expand_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Expand ``${NAME}`` / ``${NAME:-default}`` in strings (recursively in dicts and lists)."""
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def _sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise SettingsError(f"{where}: environment variable {name} is not set (set it, or write ${{{name}:-default}})")

    return _ENV_REF.sub(_sub, value)


def load_settings(path: str | Path, env: Mapping[str, str] | None = None, catalog: Catalog | None = None) -> Settings:
    """Load and validate ``airflow_settings.yaml``; raise :class:`SettingsError` saying where a problem is.

    A pool entry without ``pool_slot`` is sized from the catalogue; an explicit ``pool_slot`` wins over it. The
    catalogue's provider pools the file does not list are added (``include_deferred``: a deferred call holds its
    slot while the triggerer waits on the model).

    :param env: what ``${NAME}`` references expand from; default the process environment.
    :param catalog: the provider catalogue; default :func:`~supervisor_lib.routing.catalog.load_catalog` (the file,
        with the override ``$SUPERVISOR_CATALOG`` of the process environment names; never an Airflow Variable).
    """
    path = Path(path)
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: invalid YAML: {exc}") from exc
    section = raw.get("airflow") if isinstance(raw, dict) else None
    if section is not None and not isinstance(section, dict):
        raise SettingsError(f"{path}: 'airflow' must be a mapping with connections, pools and variables")
    section = section or {}
    where = f"{path}: airflow"
    return Settings(
        connections=[_connection(c, env, f"{where}.connections[{i}]") for i, c in _items(section, "connections", path)],
        pools=_pools(section, path, catalog if catalog is not None else _catalog(path)),
        variables=dict(_variable(v, env, f"{where}.variables[{i}]") for i, v in _items(section, "variables", path)),
    )


def _catalog(path: Path) -> Catalog:
    try:
        return load_catalog()
    except CatalogError as exc:
        raise SettingsError(f"{path}: pools are sized from the provider catalogue, which is invalid: {exc}") from exc


def _items(section: dict[str, Any], key: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    entries = section.get(key) or []
    if not isinstance(entries, list):
        raise SettingsError(f"{path}: airflow.{key} must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SettingsError(f"{path}: airflow.{key}[{i}] must be a mapping")
    return list(enumerate(entries))


def _check_keys(entry: dict[str, Any], allowed: set[str], required: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    missing = [key for key in required if entry.get(key) in (None, "")]
    if missing:
        raise SettingsError(f"{where}: missing {', '.join(missing)}")


def _connection(entry: dict[str, Any], env: Mapping[str, str], where: str) -> ConnectionSetting:
    _check_keys(entry, _CONN_KEYS, ("conn_id", "conn_type"), where)
    if entry.get("conn_uri"):
        raise SettingsError(f"{where}: conn_uri is not supported; write conn_type, conn_host, ... instead")
    entry = expand_env(entry, env, where)
    extra = entry.get("conn_extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{where}.conn_extra: not valid JSON ({exc.msg})") from exc
    if not isinstance(extra, dict):
        raise SettingsError(f"{where}.conn_extra: must be a mapping")
    port = entry.get("conn_port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}.conn_port: {port!r} is not a port number") from exc
    return ConnectionSetting(
        conn_id=str(entry["conn_id"]),
        conn_type=str(entry["conn_type"]),
        host=entry.get("conn_host") or None,
        schema=entry.get("conn_schema") or None,
        login=entry.get("conn_login") or None,
        password=entry.get("conn_password") or None,
        port=port,
        extra=extra,
        description=entry.get("conn_description") or None,
    )


def _pools(section: dict[str, Any], path: Path, catalog: Catalog) -> list[PoolSetting]:
    """The file's pools, then every catalogued provider pool it does not list."""
    sizes = {provider.pool: provider.pool_slots for provider in catalog.providers.values()}
    where = f"{path}: airflow.pools"
    pools = [_pool(p, f"{where}[{i}]", sizes, catalog.source) for i, p in _items(section, "pools", path)]
    listed = {pool.name for pool in pools}
    for provider in catalog.providers.values():
        if provider.pool not in listed:
            listed.add(provider.pool)
            description = f"Concurrent {provider.name} calls (sized from {catalog.source})"
            pools.append(PoolSetting(provider.pool, provider.pool_slots, description, include_deferred=True))
    return pools


def _pool(entry: dict[str, Any], where: str, sizes: Mapping[str, int], source: str) -> PoolSetting:
    _check_keys(entry, _POOL_KEYS, ("pool_name",), where)
    name = str(entry["pool_name"])
    slots = entry.get("pool_slot")
    if slots is None:
        if name not in sizes:
            raise SettingsError(
                f"{where}: no pool_slot, and no provider in {source} has pool {name!r} (catalogued pools: "
                f"{', '.join(sorted(sizes)) or 'none'}); give pool_slot, or make it a provider's pool in the catalogue"
            )
        slots = sizes[name]
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 0:
        raise SettingsError(f"{where}.pool_slot: must be a non-negative integer, got {slots!r}")
    return PoolSetting(
        name=name,
        slots=slots,
        description=str(entry.get("pool_description") or ""),
        include_deferred=bool(entry.get("include_deferred", False)),
    )


def _variable(entry: dict[str, Any], env: Mapping[str, str], where: str) -> tuple[str, str]:
    _check_keys(entry, _VAR_KEYS, ("variable_name",), where)
    value = expand_env(entry.get("variable_value"), env, f"{where}.variable_value")
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return str(entry["variable_name"]), "" if value is None else str(value)


def apply_settings(settings: Settings) -> dict[str, int]:
    """Create or update the connections, pools and variables in the Airflow metadata DB (idempotent)."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for spec in settings.connections:
            session.query(Connection).filter(Connection.conn_id == spec.conn_id).delete()
            session.add(
                Connection(
                    conn_id=spec.conn_id,
                    conn_type=spec.conn_type,
                    host=spec.host,
                    schema=spec.schema,
                    login=spec.login,
                    password=spec.password,
                    port=spec.port,
                    extra=json.dumps(spec.extra) if spec.extra else None,
                    description=spec.description,
                )
            )
        for pool in settings.pools:
            Pool.create_or_update_pool(
                pool.name, pool.slots, pool.description, include_deferred=pool.include_deferred, session=session
            )
    for name, value in settings.variables.items():
        Variable.set(name, value)
    return {
        "connections": len(settings.connections),
        "pools": len(settings.pools),
        "variables": len(settings.variables),
    }
