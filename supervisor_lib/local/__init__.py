"""Local development: apply ``airflow_settings.yaml`` and run Airflow with the project's DAGs (``make run``)."""
