"""Airflow operators: one per AI provider, and the supervised coding operators built on them."""
