"""An auth manager that restricts DAGs, for the plugin's auth-matrix test: Airflow's SimpleAuthManager, except that
the users named in :data:`ONLY` may read just the DAGs listed for them (as a real deployment's FAB or Keycloak
roles would say)."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

#: user -> the only DAGs they may read
ONLY: dict[str, frozenset[str]] = {"alice": frozenset({"dag_a"})}


class RestrictedAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method: Any, user: SimpleAuthManagerUser, access_entity: Any = None,
                          details: Any = None) -> bool:  # fmt: skip
        allowed = ONLY.get(user.get_name())
        if allowed is None:
            return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        # no DAG named means "every DAG", which these users may not read
        return method == "GET" and details is not None and details.id in allowed

    def get_authorized_dag_ids(self, *, user: SimpleAuthManagerUser, method: Any = "GET", session: Any = None
                               ) -> set[str]:  # fmt: skip
        allowed = ONLY.get(user.get_name())
        if allowed is None:
            return super().get_authorized_dag_ids(user=user, method=method)
        return set(allowed) if method == "GET" else set()
