"""The reliability suite's plugin API part at ``make test`` size: every route of the plugin's app refuses requests
without a valid token and users who may not, and answers bad input with a 2xx or a 4xx, never a 5xx, in under a
second, leaving the store as it was (``benchmarks/reliability/plugin_api.py``).

The part runs the matrix in a child process with its own Airflow home and databases; this test then checks what it
covered against the routes and parameters of the plugin's app as this process builds it, so a route or parameter
added to the app and missed by the matrix fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.reliability.plugin_api import (
    CONTROLS,
    DENIALS,
    FUZZ,
    RANGE,
    RESTRICTED_FUZZ,
    STATIC,
    UNKNOWN,
    ApiSection,
    Route,
    route_keys,
    routes_of,
    run,
)

pytestmark = pytest.mark.slow  # the reliability suite's parts (make unit skips them)

#: the refusals every API route gets (the others depend on the route: another DAG's id, a change)
EVERY_ROUTE = (*DENIALS[:6], DENIALS[8], CONTROLS[0], UNKNOWN)


@pytest.fixture(scope="module")
def section() -> Iterator[ApiSection]:
    result = run(quick=True)
    assert isinstance(result, ApiSection)
    yield result


@pytest.fixture(scope="module")
def app_routes() -> list[Route]:
    """The plugin's API routes as the app declares them (built here, not by the matrix)."""
    from supervisor_lib.plugin.app import create_app

    return routes_of(create_app())


def test_no_guarantee_is_broken(section: ApiSection) -> None:
    assert section.failures == []
    assert section.stores and section.rows and section.seconds > 0


def test_every_route_of_the_app_was_asked(section: ApiSection, app_routes: list[Route]) -> None:
    from supervisor_lib.plugin.app import create_app

    every = route_keys(create_app())
    assert set(section.routes) == set(every) and "GET /static/{path}" in every
    api = {route.key for route in app_routes}
    assert api == set(every) - {"GET /static/{path}"} and len(api) >= 19
    for kind in EVERY_ROUTE:
        assert set(section.coverage[kind]) == api, kind
    assert section.coverage[STATIC[0]] == section.coverage[STATIC[1]] == ["GET /static/{path}"]


def test_routes_about_a_dag_or_a_change_were_asked_by_users_who_may_not(
    section: ApiSection, app_routes: list[Route]
) -> None:
    about_a_dag = {r.key for r in app_routes if {p.name for p in r.params if p.where != "query"} - {"status", "days"}}
    changes = {r.key for r in app_routes if r.method != "GET"}
    assert about_a_dag and set(section.coverage[DENIALS[6]]) == about_a_dag
    assert changes and set(section.coverage[DENIALS[7]]) == changes
    reads = {r.key for r in app_routes if r.method == "GET"}
    assert set(section.coverage[CONTROLS[1]]) == reads


def test_every_parameter_of_every_route_was_fuzzed(section: ApiSection, app_routes: list[Route]) -> None:
    for route in app_routes:
        for param in route.params:
            assert param.name in section.fuzzed.get(route.key, []), (route.key, param.name)
    for kind in FUZZ:
        assert set(section.coverage[kind]) == {r.key for r in app_routes if r.params}, kind
    ranged = {r.key for r in app_routes if {"start", "end"} <= {p.name for p in r.params}}
    assert ranged and set(section.coverage[RANGE]) == ranged


def test_the_counts_per_kind(section: ApiSection, app_routes: list[Route]) -> None:
    counts, api, stores = section.counts, len(app_routes), len(section.stores)
    assert all(tally["5xx"] == 0 and tally["other"] == 0 and tally["broken"] == 0 for tally in counts.values())
    for kind, variants in zip(DENIALS[:6], (1, 2, 2, 2, 2, 1), strict=True):  # quick: two variants of each, in turn
        assert counts[kind]["sent"] == counts[kind]["4xx"] == variants * api * stores, kind
    for kind in DENIALS:
        assert counts[kind]["2xx"] == 0 and counts[kind]["4xx"] == counts[kind]["sent"] > 0, kind
    reads = [route for route in app_routes if route.method == "GET"]
    filtered = [route for route in reads if "dag_id" in {p.name for p in route.params if p.where == "query"}]
    assert counts[CONTROLS[0]]["sent"] == counts[CONTROLS[0]]["2xx"] == (api + len(reads)) * stores  # token, cookie
    assert counts[CONTROLS[1]]["sent"] == counts[CONTROLS[1]]["2xx"] == (len(reads) + len(filtered)) * stores
    pairs = sum(len(route.params) for route in app_routes) * stores
    for kind in FUZZ:  # quick: one value of each kind per parameter (a few cannot go everywhere: a list in a path)
        assert pairs * 0.9 <= counts[kind]["sent"] <= pairs, kind
    assert counts[RESTRICTED_FUZZ]["sent"] == 2 * pairs
    assert counts[RANGE]["4xx"] > 0 and counts[RANGE]["2xx"] > 0  # refused, and the widest allowed answered
    assert counts[UNKNOWN]["sent"] == 2 * api * stores
    assert all(tally["slowest_ms"] < 1000 for tally in counts.values())
    assert len(section.rows) == len(counts) and section.headers[:3] == ["requests", "routes", "sent"]
