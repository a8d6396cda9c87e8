"""Notifications through Airflow notifiers: instances built from spec declarations and alert configurations
(:mod:`~supervisor_lib.notify.factory`), and a webhook notifier for HTTP endpoints that no installed provider
serves (:mod:`~supervisor_lib.notify.webhook`)."""
