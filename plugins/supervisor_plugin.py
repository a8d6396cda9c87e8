"""Supervisor's Airflow plugin (analytics API and UI views), defined in ``supervisor_lib.plugin``.

An installed ``supervisor-lib`` registers it through its ``airflow.plugins`` entry point, and then this module adds
nothing (a second registration would show in the UI as a plugin import error). In a checkout where the package is
not installed, Airflow finds it here.
"""

from supervisor_lib.plugin import airflow_plugin

if not airflow_plugin.registered_by_entry_point():
    SupervisorPlugin = airflow_plugin.SupervisorPlugin
