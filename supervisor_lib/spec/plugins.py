"""The spec's open names: task types and providers are built in or come from plugins (:mod:`supervisor_lib.extensions`).

Built-in names resolve to their enum member with a dictionary lookup: a spec that uses only them never looks at
entry points. Any other name is looked up among the installed plugins, and only that one is loaded. An unknown name
is reported like any spec error (``unknown task type 'x' (did you mean 'y'?)``, at its file and line); a broken
plugin is reported at the task that names it, with its package name, and never hides another task or spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from supervisor_lib import extensions
from supervisor_lib.spec.translate import findings_from_error
from supervisor_lib.spec.validate import Finding, describe, did_you_mean, fail

#: what ``with:`` settings are called in messages and the JSON Schema
WITH = "with"


class PluginTaskType(str):
    """The ``type`` of a task whose type comes from a plugin: a plain string with the built-in types' properties."""

    __slots__ = ()

    @property
    def writes_code(self) -> bool:
        """Plugin task types do not change code through the supervised coding loop."""
        return False

    @property
    def calls_model(self) -> bool:
        """As the plugin declares (``True`` unless it says otherwise)."""
        return self.plugin.calls_model

    @property
    def plugin(self) -> extensions.TaskTypePlugin:
        """The plugin's declaration (loaded once per process)."""
        plugin = extensions.task_type(str(self))
        if plugin is None:
            raise extensions.PluginError(f"no installed package declares the task type {str(self)!r} any more")
        return plugin


def check_task_type(value: Any, builtins: type[Any]) -> Any:
    """A built-in task type (a member of ``builtins``), or a :class:`PluginTaskType` of an installed plugin."""
    found = _check(value, builtins, "task type", extensions.TASK_TYPES, extensions.task_type)
    return found if isinstance(found, builtins) else PluginTaskType(found)


def check_provider(value: Any, builtins: type[Any]) -> Any:
    """A built-in provider (a member of ``builtins``, ``auto`` included), or the name of an installed plugin's."""
    return _check(value, builtins, "provider", extensions.PROVIDERS, extensions.provider)


def _check(value: Any, builtins: type[Any], what: str, group: str, lookup: Callable[[str], object]) -> Any:
    """A member of ``builtins``, or ``value`` itself when an installed plugin of ``group`` declares it."""
    if not isinstance(value, str):
        fail(f"expected a {what} ({', '.join(_known(builtins, group))}), got {describe(value)}")
    if value in builtins._value2member_map_:
        return builtins(value)
    try:
        found = lookup(value)
    except extensions.PluginError as exc:
        fail(str(exc))
    if found is None:
        fail(_unknown(what, value, _known(builtins, group)))
    return value


def _known(builtins: type[Any], group: str) -> list[str]:
    own = [str(member) for member in builtins]
    return own + [name for name in extensions.names(group) if name not in own]


def _unknown(label: str, value: str, known: list[str]) -> str:
    hint = did_you_mean(value, known) or f" (expected one of: {', '.join(known)})"
    return f"unknown {label} '{value}'{hint}"


def with_findings(task: Any) -> list[Finding]:
    """Problems of a task's ``with:`` settings: given to a built-in type, or not what its plugin's fields accept."""
    settings = task.with_
    if not isinstance(task.type, PluginTaskType):
        if settings is None:
            return []
        return [Finding((WITH,), f"'{WITH}' applies only to task types from plugins; {task.type} is built in")]
    fields = task.type.plugin.fields
    if fields is None:
        return [] if settings is None else [Finding((WITH,), f"the {task.type} task type takes no '{WITH}' settings")]
    try:
        fields.model_validate(settings or {})
    except ValidationError as err:
        return [Finding((WITH, *f.loc), f.message) for f in findings_from_error(err, fields)]
    return []


def plugin_settings(task: Any) -> BaseModel | None:
    """The ``with:`` settings of a (validated) plugin task as its plugin's model (for builders)."""
    fields = task.type.plugin.fields
    return None if fields is None else fields.model_validate(task.with_ or {})


def uses_plugins(spec: Any) -> bool:
    """Whether a spec names a plugin's task type or provider (such specs are not cached on disk: a plugin's
    upgrade would not invalidate them, and listing the installed plugins on every parse would cost every spec)."""
    from supervisor_lib.spec.models import Provider

    settings = [spec.defaults, *spec.tasks, *(task.reviewer for task in spec.tasks if task.reviewer is not None)]
    return any(isinstance(task.type, PluginTaskType) for task in spec.tasks) or any(
        item.provider is not None and not isinstance(item.provider, Provider) for item in settings
    )
