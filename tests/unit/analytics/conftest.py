"""The analytics questions run on both stores: the store fixtures are the store tests' own."""

from tests.unit.store.conftest import pg_url, store, store_url  # noqa: F401 - fixtures used by name
