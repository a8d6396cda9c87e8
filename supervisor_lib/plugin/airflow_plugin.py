"""The Supervisor ``AirflowPlugin``: the API app at ``/supervisor`` and the views Airflow's UI shows.

Views (one bundle, ``static/supervisor.js``; the bundle sets a component for each name):

- ``Supervisor`` in the sidebar (``/plugin/supervisor``): spend, calls, latency and errors across the readable DAGs;
- a ``Supervisor`` tab on each DAG, DAG run and task instance: that DAG's runs, that run's calls, that task's
  transcript;
- ``Supervisor spend`` on the Home page: spend today and yesterday, and today's errors.

URLs are relative (no leading ``/``), so the UI resolves them against its ``<base href>`` and everything works under
a non-root ``[api] base_url``. Registered through the ``airflow.plugins`` entry point of the installed package, and
from ``plugins/`` in a checkout where the package is not installed.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow.plugins_manager import AirflowPlugin

from supervisor_lib.plugin.app import URL_PREFIX, create_app

NAME = "supervisor"
ENTRY_POINT = "supervisor_lib.plugin.airflow_plugin:SupervisorPlugin"
BUNDLE = f"{URL_PREFIX.lstrip('/')}/static/supervisor.js"
ICON = f"{URL_PREFIX.lstrip('/')}/static/icon.svg"
ICON_DARK = f"{URL_PREFIX.lstrip('/')}/static/icon-dark.svg"
#: the component the sidebar page and the tabs use (it picks its view from the route's DAG, run and task)
VIEW = "Supervisor"
TILE = "Supervisor spend"


def react_apps() -> list[dict[str, object]]:
    """The views, one entry per place in the UI (``url_route`` must be unique across all plugins)."""
    tabs: list[dict[str, object]] = [
        {"name": VIEW, "bundle_url": BUNDLE, "destination": destination, "url_route": f"supervisor-{route}",
         "icon": ICON, "icon_dark_mode": ICON_DARK}
        for destination, route in (("dag", "dag"), ("dag_run", "run"), ("task_instance", "task"))
    ]  # fmt: skip
    return [
        {"name": VIEW, "bundle_url": BUNDLE, "destination": "nav", "url_route": "supervisor", "icon": ICON,
         "icon_dark_mode": ICON_DARK, "nav_top_level": True},
        *tabs,
        {"name": TILE, "bundle_url": BUNDLE, "destination": "dashboard"},
    ]  # fmt: skip


class SupervisorPlugin(AirflowPlugin):
    """Supervisor's analytics inside Airflow's UI."""

    name = NAME
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Supervisor"}]
    react_apps = react_apps()


def registered_by_entry_point() -> bool:
    """Whether the installed package's ``airflow.plugins`` entry point registers the plugin (then ``plugins/``
    must not: Airflow would report the second registration as a plugin import error)."""
    return any(point.value == ENTRY_POINT for point in entry_points(group="airflow.plugins"))
