"""The spec format's JSON Schema, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from supervisor_lib import extensions
from supervisor_lib.spec.models import WorkflowSpec
from supervisor_lib.spec.plugins import WITH

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (Draft 2020-12), with a title and description on every field.

    ``dag_id`` is optional in a file (it defaults to the file name), although ``WorkflowSpec`` built in Python
    needs one. The schema checks shapes and types; cross-field rules (cycles, unknown upstreams, which fields
    apply to which task type) are checked by ``supervisor validate``. The task types of installed plugins are in
    it, each with its ``with:`` settings; a plugin that fails to load is left out (and logged once).
    """
    schema = WorkflowSpec.model_json_schema(by_alias=True)
    schema["required"] = [name for name in schema.get("required", []) if name != "dag_id"]
    task = schema["$defs"]["TaskSpec"]
    # Inherited settings come first in pydantic's order; an editor should offer id and type first.
    task["properties"] = {key: task["properties"][key] for key in ("id", "type")} | task["properties"]
    _add_plugin_task_types(schema)
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "Supervisor workflow spec"}


def _add_plugin_task_types(schema: dict[str, Any]) -> None:
    """Name every installed plugin task type and provider in their enums, and check a plugin task's ``with:``
    against its fields."""
    defs = schema["$defs"]
    task_types = _loadable(extensions.TASK_TYPES, defs["TaskType"]["enum"])
    defs["TaskType"]["enum"] += [plugin.name for plugin in task_types]
    defs["Provider"]["enum"] += [plugin.name for plugin in _loadable(extensions.PROVIDERS, defs["Provider"]["enum"])]
    rules = [_with_rule(plugin, defs) for plugin in task_types if isinstance(plugin, extensions.TaskTypePlugin)]
    if rules:
        defs["TaskSpec"]["allOf"] = rules


def _loadable(group: str, builtins: list[str]) -> list[extensions.Plugin]:
    """The group's plugins that load (a broken one is logged once by :func:`extensions.load`, and left out)."""
    found = []
    for name in extensions.names(group):
        try:
            plugin = extensions.load(group, name)
        except extensions.PluginError:
            continue
        if plugin is not None and name not in builtins:
            found.append(plugin)
    return found


def _with_rule(plugin: extensions.TaskTypePlugin, defs: dict[str, Any]) -> dict[str, Any]:
    """``if type is <plugin> then with: <its fields' schema>``; the fields' own definitions join ``$defs`` under
    the plugin's name, so two plugins' models of the same name never clash."""
    if plugin.fields is None:
        fragment: dict[str, Any] = {"type": "null"}
    else:
        fragment = plugin.fields.model_json_schema(ref_template=f"#/$defs/{plugin.name}.{{model}}")
        defs.update({f"{plugin.name}.{key}": value for key, value in fragment.pop("$defs", {}).items()})
    condition = {"properties": {"type": {"const": plugin.name}}, "required": ["type"]}
    description = plugin.description or f"The {plugin.name} task type (a plugin)."
    return {"if": condition, "then": {"properties": {WITH: fragment}}, "description": description}
