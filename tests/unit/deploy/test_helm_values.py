"""The Helm values in deploy/helm/ against the official Airflow chart they are written for.

No helm binary and no cluster here: the values are merged over the chart's own defaults the way Helm coalesces
them (maps key by key, lists and scalars replaced, ``null`` deletes the key) and the result is validated against
the chart's ``values.schema.json``, both vendored from one pinned chart version (deploy/helm/chart-schema/). Then
what the schema cannot know: that every component runs our image, that connections come from Secrets under the
names supervisor_lib reads, and that what the values point at exists in the Dockerfile.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import supervisor_lib.local.settings as settings_module
from supervisor_lib.providers.anthropic import AnthropicHook
from supervisor_lib.providers.openai import OpenAIHook
from supervisor_lib.routing.catalog import load_catalog
from supervisor_lib.store.db import DEFAULT_CONN_ID as ANALYTICS_CONN_ID
from supervisor_lib.workspace.sandbox import MIN_ISOLATION_ENV, is_secret_name

ROOT = Path(__file__).resolve().parents[3]
HELM = ROOT / "deploy" / "helm"
CHART = HELM / "chart-schema"
DOCS = ROOT / "docs" / "kubernetes.md"
VALUES_FILES = ("values.yaml", "values-celery.yaml")
#: each way to install, as the -f files given to helm in that order
VARIANTS = {"kubernetes": ("values.yaml",), "celery": ("values.yaml", "values-celery.yaml")}
EXECUTORS = {"kubernetes": "KubernetesExecutor", "celery": "CeleryExecutor"}
#: the connections every pod needs, named by the code that reads them
CONN_IDS = (AnthropicHook.default_conn_name, OpenAIHook.default_conn_name, ANALYTICS_CONN_ID)


def helm_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base`` as Helm coalesces values: maps merge key by key, anything else (lists too) is
    replaced, and a ``null`` removes the key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@functools.cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_schema())


@functools.cache
def _defaults() -> dict[str, Any]:
    return _yaml(CHART / "values.yaml")


def values(variant: str) -> dict[str, Any]:
    """The values Helm would render ``variant`` with: the chart's defaults, then each -f file."""
    merged = _defaults()
    for name in VARIANTS[variant]:
        merged = helm_merge(merged, _yaml(HELM / name))
    return merged


def _errors(document: Mapping[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message[:300]}"
        for error in _validator().iter_errors(document)
    ]


def _chart_version() -> str:
    version = _yaml(CHART / "Chart.yaml")["version"]
    assert isinstance(version, str)
    return version


def _locked_airflow() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return str(next(p["version"] for p in lock["package"] if p["name"] == "apache-airflow"))


def _dockerfile_copies() -> dict[str, str]:
    """Source → destination of the Dockerfile's COPY instructions (continuations joined, options dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    copies = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("COPY "):
            parts = [p for p in shlex.split(line.strip())[1:] if not p.startswith("--")]
            copies.update({source: parts[-1] for source in parts[:-1]})
    return copies


# -- the vendored chart ----------------------------------------------------------------------------------------
def test_vendored_chart_is_one_pinned_version() -> None:
    chart = _yaml(CHART / "Chart.yaml")
    assert chart["name"] == "airflow" and "official Helm chart" in chart["description"]
    version = _chart_version()
    readme = (CHART / "README.md").read_text()
    assert f"**{version}**" in readme, "the README names the chart version it vendored"
    assert re.search(r"\b[0-9a-f]{40}\b", readme), "the README names the source commit"
    assert "Apache License" in (CHART / "LICENSE").read_text() and (CHART / "NOTICE").is_file()
    # the install commands use the version the values are validated against
    for path in [*(HELM / name for name in VALUES_FILES), DOCS]:
        pinned = set(re.findall(r"--version (\S+)", path.read_text()))
        assert pinned == {version}, f"{path.name} installs chart {pinned}, the schema is {version}'s"


def test_schema_works_offline() -> None:
    """Every ``$ref`` points inside the file (the Kubernetes definitions are embedded), so nothing is fetched."""
    jsonschema.Draft7Validator.check_schema(_schema())
    refs = re.findall(r'"\$ref":\s*"([^"]*)"', (CHART / "values.schema.json").read_text())
    assert refs and all(ref.startswith("#/") for ref in refs), {r for r in refs if not r.startswith("#/")}


def test_chart_defaults_pass_their_own_schema() -> None:
    assert _errors(_defaults()) == []


def test_helm_merge_is_helms() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"d": 1}}
    merged = helm_merge(base, {"a": {"y": [3]}, "b": None, "c": {"e": 2}})
    assert merged == {"a": {"x": 1, "y": [3]}, "c": {"d": 1, "e": 2}}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"d": 1}}, "the inputs are not changed"


# -- the schema accepts our values, and rejects broken ones -----------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_values_pass_the_chart_schema(variant: str) -> None:
    assert _errors(values(variant)) == []


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node and "properties" not in node:
        node = _schema()["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def unknown_keys(value: Any, node: Mapping[str, Any], where: str = "") -> Iterator[str]:
    """Keys of ``value`` the schema ``node`` does not define, at any depth. The schema itself leaves many maps open
    (its root, ``workers.kubernetes``, ``workers.celery``...), where a misspelt setting would be silently ignored."""
    node = _resolve(node)
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from unknown_keys(item, node["items"], f"{where}[{i}]")
    if not isinstance(value, Mapping):
        return
    properties, extra = node.get("properties", {}), node.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            yield from unknown_keys(item, properties[key], f"{where}.{key}")
        elif isinstance(extra, Mapping):
            yield from unknown_keys(item, extra, f"{where}.{key}")
        elif properties or extra is False:
            yield f"{where}.{key}"


@pytest.mark.parametrize("name", VALUES_FILES)
def test_every_key_is_a_chart_value(name: str) -> None:
    unknown = list(unknown_keys(_yaml(HELM / name), _schema()))
    assert not unknown, f"{name}: not values of the chart: {unknown}"


def test_unknown_keys_are_found() -> None:
    assert list(unknown_keys({"workers": {"kubernetes": {"resource": {}}}, "executor": "x"}, _schema())) == [
        ".workers.kubernetes.resource"
    ]
    assert list(unknown_keys({"config": {"any_section": {"any_key": "1"}}}, _schema())) == []


def _broken(variant: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = values(variant)
    change(document)
    return document


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown executor": lambda v: v.update(executor="Bogus"),
    "resources of the wrong type": lambda v: v["triggerer"].update(resources="2Gi"),
    "replicas of the wrong type": lambda v: v["scheduler"].update(replicas="two"),
    "secret without a secret name": lambda v: v["secret"].append({"envName": "AIRFLOW_CONN_X"}),
    "misspelt triggerer setting": lambda v: v["triggerer"].update(resource={}),
    "invalid pull policy": lambda v: v["images"]["airflow"].update(pullPolicy="Sometimes"),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_copy_is_rejected(variant: str, breakage: str) -> None:
    assert _errors(_broken(variant, BREAKAGES[breakage])), f"the schema accepted: {breakage}"


# -- what the values say ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_executor(variant: str) -> None:
    merged = values(variant)
    assert merged["executor"] == EXECUTORS[variant]
    assert merged["config"]["core"]["executor"] == "{{ .Values.executor }}", "airflow.cfg takes it from the value"


def _images(merged: Mapping[str, Any]) -> dict[str, str]:
    """The image of each Airflow container, resolved like the chart's helpers (airflow_image,
    pod_template_image, flower_image, config.kubernetes_executor.worker_container_*)."""
    default = f"{merged['defaultAirflowRepository']}:{merged['defaultAirflowTag']}"
    images = merged["images"]
    resolved = {}
    for component in ("airflow", "pod_template", "flower"):
        repository = images[component].get("repository") or merged["defaultAirflowRepository"]
        tag = images[component].get("tag") or merged["defaultAirflowTag"]
        resolved[component] = f"{repository}:{tag}"
    assert not images["airflow"].get("digest") and not merged.get("defaultAirflowDigest"), "a digest wins over tags"
    executor = merged["config"]["kubernetes_executor"]
    assert "defaultAirflowRepository" in executor["worker_container_repository"], "task pods' image is overridden"
    assert "defaultAirflowTag" in executor["worker_container_tag"]
    resolved["default"] = default
    return resolved


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_component_runs_our_image(variant: str) -> None:
    merged = values(variant)
    images = _images(merged)
    assert len(set(images.values())) == 1, images
    repository, tag = merged["defaultAirflowRepository"], merged["defaultAirflowTag"]
    assert repository and repository != "apache/airflow", "the chart would run the plain Airflow image"
    assert isinstance(tag, str) and tag and tag != "latest"
    assert merged["images"]["useDefaultImageForMigration"] is False, "the migration job needs our package"
    # the chart's Airflow 2/3 switches follow airflowVersion: the Airflow inside the image
    base = re.search(r"^FROM apache/airflow:(\S+?)-python", (ROOT / "Dockerfile").read_text(), re.M)
    assert base and merged["airflowVersion"] == base.group(1) == _locked_airflow()


@pytest.mark.parametrize("variant", VARIANTS)
def test_airflow_3_components(variant: str) -> None:
    merged = values(variant)
    assert merged["apiServer"]["enabled"] is True
    assert merged["dagProcessor"]["enabled"] is True
    assert merged["triggerer"]["enabled"] is True
    assert merged["scheduler"]["enabled"] is True
    assert merged["config"]["operators"]["default_deferrable"] == "True", "model calls wait in the triggerer"


@pytest.mark.parametrize("variant", VARIANTS)
def test_dags_and_plugin_come_from_the_image(variant: str) -> None:
    merged = values(variant)
    assert merged["dags"]["persistence"]["enabled"] is False
    assert merged["dags"]["gitSync"]["enabled"] is False
    assert not merged["dags"].get("mountPath"), "[core] dags_folder must stay <airflowHome>/dags"
    bundles = merged["dagProcessor"]["dagBundleConfigList"]
    assert [b["classpath"] for b in bundles] == ["airflow.dag_processing.bundles.local.LocalDagBundle"]
    assert not bundles[0]["kwargs"].get("path"), "the bundle is the image's DAG folder"
    home = merged["airflowHome"]
    copies = _dockerfile_copies()
    for folder in ("dags/", "plugins/", "include/"):
        assert copies.get(folder, "").rstrip("/") == f"{home}/{folder.rstrip('/')}", f"the image lacks {folder}"
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry_points["airflow.plugins"], "the installed package registers the plugin"


def _secret_refs(merged: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {item["envName"]: item for item in merged["secret"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_connections_come_from_secrets_under_the_names_supervisor_reads(variant: str) -> None:
    merged = values(variant)
    refs = _secret_refs(merged)
    for conn_id in CONN_IDS:
        name = f"AIRFLOW_CONN_{conn_id.upper()}"
        assert name in refs, f"connection {conn_id!r} is not given to the pods ({name})"
        assert refs[name]["secretName"] and refs[name]["secretKey"]
    # the router reaches each catalogued provider through its connection: all of them are given
    for provider in load_catalog().providers.values():
        assert f"AIRFLOW_CONN_{provider.conn_id.upper()}" in refs, provider
    # nothing secret as a plain value
    for item in merged["env"]:
        assert not is_secret_name(item["name"]), f"{item['name']} must come from a Secret (`secret:`), not `env:`"
    for key in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey"):
        assert not merged.get(key), f"{key} is written in the values"
    assert merged["data"]["metadataSecretName"], "the metadata DB's URL comes from a Secret"
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert merged[key], f"{key}: set it, or the chart generates (and may rotate) the secret"
    assert merged["extraSecrets"] == {} and not merged.get("extraEnv")
    assert merged["postgresql"]["enabled"] is False
    assert merged["createUserJob"]["enabled"] is False, "the chart's job writes a password into the values"


_CREDENTIAL_SIGNS = (
    r"sk-[A-Za-z0-9_-]{8,}",  # Anthropic / OpenAI key shapes
    r"://[^/\s:@]+:[^/\s@]+@",  # a URL with a password
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"^[ \t]*(password|pass|secret|token|api_?key)[ \t]*:[ \t]*[^\s#]",  # a credential-looking key with a value
    r'"password"\s*:',
)


@pytest.mark.parametrize("name", VALUES_FILES)
def test_no_credential_is_written_in_the_values(name: str) -> None:
    text = (HELM / name).read_text()
    for sign in _CREDENTIAL_SIGNS:
        found = re.search(sign, text, re.M | re.I)
        assert not found, f"{name}: looks like a credential: {found.group(0) if found else ''}"


def _cpu(value: str | int | float) -> Decimal:
    text = str(value)
    return Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _memory(value: str | int) -> Decimal:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?", str(value))
    assert match, f"unexpected memory quantity {value!r}"
    return Decimal(match.group(1)) * _BINARY.get(match.group(2) or "", 1)


def _resources(merged: Mapping[str, Any], variant: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for component in ("scheduler", "apiServer", "dagProcessor", "triggerer"):
        yield component, merged[component]["resources"]
    if variant == "kubernetes":
        yield "workers.kubernetes", merged["workers"]["kubernetes"]["resources"]
    else:
        yield "workers.celery", merged["workers"]["celery"]["resources"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_components_have_requests_and_limits(variant: str) -> None:
    merged = values(variant)
    for component, resources in _resources(merged, variant):
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        assert set(requests) >= {"cpu", "memory"} and set(limits) >= {"cpu", "memory"}, component
        assert _cpu(requests["cpu"]) <= _cpu(limits["cpu"]), component
        assert _memory(requests["memory"]) <= _memory(limits["memory"]), component
    triggerer = merged["triggerer"]["resources"]
    assert _memory(triggerer["requests"]["memory"]) >= _memory("512Mi"), "deferred calls live in the triggerer"


@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_refuses_to_run_unisolated(variant: str) -> None:
    env = {item["name"]: item["value"] for item in values(variant)["env"]}
    assert env.get(MIN_ISOLATION_ENV) == "isolated"


# -- the pools step of the migration job ------------------------------------------------------------------------
def _pools_script(merged: Mapping[str, Any]) -> tuple[str, str]:
    """(the shell script the migration job runs, the Python it feeds to ``python -``)."""
    args = merged["migrateDatabaseJob"]["args"]
    assert args[:2] == ["bash", "-c"], args
    script = args[2]
    match = re.search(r"<<'PY'\n(.*?)\nPY$", script, re.S)
    assert match, script
    return script, match.group(1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_migration_job_migrates_then_creates_the_provider_pools(
    variant: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script, code = _pools_script(values(variant))
    assert script.index("airflow db migrate") < script.index("python -"), "pools need the migrated DB"
    assert "set -e" in script, "a failed migration must fail the job"
    image_settings = _dockerfile_copies()["airflow_settings.yaml"]
    applied: list[settings_module.Settings] = []
    load_settings = settings_module.load_settings

    def load(path: str, *args: Any, **kwargs: Any) -> settings_module.Settings:
        assert path == image_settings, "the script reads the file the Dockerfile puts in the image"
        return load_settings(ROOT / "airflow_settings.yaml", env={})

    def apply(settings: settings_module.Settings) -> dict[str, int]:
        applied.append(settings)
        return {"pools": len(settings.pools)}

    monkeypatch.setattr(settings_module, "load_settings", load)
    monkeypatch.setattr(settings_module, "apply_settings", apply)
    exec(compile(code, "migrateDatabaseJob", "exec"), {"__name__": "__main__"})
    assert len(applied) == 1 and "supervisor pools:" in capsys.readouterr().out
    assert applied[0].connections == [] and applied[0].variables == {}, "only pools: connections come from Secrets"
    pools = {pool.name for pool in applied[0].pools}
    assert pools >= {provider.pool for provider in load_catalog().providers.values()}


# -- the documentation ------------------------------------------------------------------------------------------
def test_docs_create_the_secrets_with_the_keys_the_values_read() -> None:
    docs = DOCS.read_text()
    wanted: dict[str, set[str]] = {}
    for variant in VARIANTS:
        merged = values(variant)
        for item in merged["secret"]:
            wanted.setdefault(item["secretName"], set()).add(item["secretKey"])
        # the chart's fixed key names for its own secrets
        wanted.setdefault(merged["data"]["metadataSecretName"], set()).add("connection")
        wanted.setdefault(merged["fernetKeySecretName"], set()).add("fernet-key")
        wanted.setdefault(merged["apiSecretKeySecretName"], set()).add("api-secret-key")
        wanted.setdefault(merged["jwtSecretName"], set()).add("jwt-secret")
    commands = re.findall(r"kubectl (?:-n \S+ )?create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", docs)
    created = {name: set(re.findall(r"--from-literal=([A-Za-z0-9_.-]+)=", body)) for name, body in commands}
    assert created == wanted


def test_yaml_in_the_docs_is_valid_values() -> None:
    """The snippets docs/kubernetes.md suggests adding to the values pass the schema too."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert blocks
    for block in blocks:
        snippet = yaml.safe_load(block)
        assert list(unknown_keys(snippet, _schema())) == [], block
        assert _errors(helm_merge(values("kubernetes"), snippet)) == [], block
