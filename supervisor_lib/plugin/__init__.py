"""The Supervisor plugin: a FastAPI app (:mod:`.app`) Airflow's API server mounts at ``/supervisor``, and the React
views (``ui/``, built into ``static/``) Airflow's UI shows in its nav, DAG, run, task-instance and Home pages.
``plugins/supervisor_plugin.py`` and the ``airflow.plugins`` entry point only wire :mod:`.airflow_plugin`."""
