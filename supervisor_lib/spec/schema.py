"""The spec format's JSON Schema, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from supervisor_lib.spec.models import WorkflowSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (Draft 2020-12), with a title and description on every field.

    ``dag_id`` is optional in a file (it defaults to the file name), although ``WorkflowSpec`` built in Python
    needs one. The schema checks shapes and types; cross-field rules (cycles, unknown upstreams, which fields
    apply to which task type) are checked by ``supervisor validate``.
    """
    schema = WorkflowSpec.model_json_schema(by_alias=True)
    schema["required"] = [name for name in schema.get("required", []) if name != "dag_id"]
    task = schema["$defs"]["TaskSpec"]
    # Inherited settings come first in pydantic's order; an editor should offer id and type first.
    task["properties"] = {key: task["properties"][key] for key in ("id", "type")} | task["properties"]
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "Supervisor workflow spec"}
