"""The Supervisor plugin's FastAPI app, mounted by Airflow's API server at ``/supervisor``: the JSON (and CSV) the
views read, and the views' bundle.

Every data route is behind Airflow's own auth (the ``_token`` cookie the UI sets, or an ``Authorization: Bearer``
token): no token is a 401, a bad one a 403. What a route shows is limited to the DAGs the user may read
(``get_auth_manager().get_authorized_dag_ids``); the routes of one DAG, run or task instance check that DAG with
``requires_access_dag``. There is no OpenAPI or docs route. The routes are thin: the questions are answered in
:mod:`supervisor_lib.analytics`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag, requires_access_view
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from supervisor_lib.analytics import findings, operations, queries, spend
from supervisor_lib.analytics.experiments import experiment_report
from supervisor_lib.analytics.filters import FilterError, Filters
from supervisor_lib.plugin.stores import StorePool
from supervisor_lib.plugin.transcripts import task_transcript
from supervisor_lib.store.db import Store
from supervisor_lib.store.targets import StoreError

STATIC = FilePath(__file__).resolve().parent / "static"
URL_PREFIX = "/supervisor"
_LIST_KEYS = ("series", "runs", "calls", "models")
#: the longest DAG, run or task id a route accepts (Airflow's own limit is 250)
_ID_LIMIT = 250
#: the largest map index a route accepts (the store's ``map_index`` is a 32-bit ``INTEGER``)
_MAP_INDEX_LIMIT = 2**31 - 1
#: free text a route passes to the store: no NUL (PostgreSQL refuses it in text, which would be a 503)
_NO_NUL = r"^[^\x00]*$"


def readable_dags(user: GetUserDep) -> frozenset[str] | None:
    """The DAGs ``user`` may read; ``None`` when the user may read every DAG (then nothing is filtered, and calls of
    DAGs Airflow no longer knows show too)."""
    manager = get_auth_manager()
    if manager.is_authorized_dag(method="GET", user=user):  # no DAG named: access to all DAGs
        return None
    return frozenset(manager.get_authorized_dag_ids(user=user, method="GET"))


Readable = Annotated[frozenset[str] | None, Depends(readable_dags)]


def _sane_ids(request: Request, user: GetUserDep) -> None:
    """400 for a path id the store could not take (NUL, too long), after the token is checked but before the DAG's
    access check, whose lookup of the DAG's team in Airflow's DB would fail on such an id (a 500 on PostgreSQL)."""
    for name, value in request.path_params.items():  # ids from the path reach SQL as parameters: keep them sane
        text = str(value)
        if "\x00" in text or len(text) > _ID_LIMIT:
            raise HTTPException(status_code=400, detail=f"{name}: at most {_ID_LIMIT} characters, no NUL")


_VIEW = [Depends(requires_access_view(AccessView.WEBSITE))]
_RUN = [Depends(_sane_ids), Depends(requires_access_dag("GET", DagAccessEntity.RUN))]
_TASK = [Depends(_sane_ids), Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))]


def _filters(
    readable: Readable,
    start: str | None = None,
    end: str | None = None,
    dag_id: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    team: str | None = None,
    tag: str | None = None,
) -> Filters:
    try:
        parsed = Filters.parse(start=start, end=end, dag_id=dag_id, provider=provider, model=model, team=team, tag=tag)
    except FilterError as err:
        raise HTTPException(status_code=400, detail=str(err)) from None
    return parsed.allowing(readable)


FiltersDep = Annotated[Filters, Depends(_filters)]
Format = Annotated[str, Query(pattern="^(json|csv)$")]


def _answer(data: Any, fmt: str, name: str) -> Response:
    """JSON, or the same rows as CSV (a download named ``supervisor-<name>.csv``)."""
    if fmt == "json":
        return JSONResponse(data)
    rows = _table(data)
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))  # the first row's order, then any others
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    headers = {"Content-Disposition": f'attachment; filename="supervisor-{name}.csv"'}
    return Response(buffer.getvalue(), media_type="text/csv", headers=headers)


def _table(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "times" in data:  # a time series: one row per time, a column per series
        return [{"time": t, **{s["name"]: s["values"][i] for s in data["series"]}} for i, t in enumerate(data["times"])]
    for key in _LIST_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), list):
            return list(data[key])
    return [_flat(data)] if isinstance(data, dict) else []


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _cell(value: Any) -> Any:
    return value if isinstance(value, str | int | float) or value is None else str(value)


def create_app(stores: StorePool | None = None) -> FastAPI:
    """The plugin's app; ``stores`` answers queries (default: the ``supervisor_analytics`` store). Tests may swap
    ``app.state.stores``."""
    app = FastAPI(title="Supervisor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stores = stores or StorePool()
    app.include_router(router, prefix="/api")
    app.add_exception_handler(StoreError, _store_down)
    app.add_exception_handler(RequestValidationError, _invalid)
    if STATIC.is_dir():  # the views' bundle: code only, no data, so it needs no token (like Airflow's own assets)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _store(request: Request, user: GetUserDep) -> Store:
    _sane_ids(request, user)
    return request.app.state.stores.get()


def _store_down(request: Request, exc: Exception) -> Response:
    """The store is down or refused: 503 with the store's own (scrubbed) reason, never a bare 500."""
    return JSONResponse({"detail": f"the analytics store is unavailable: {exc}"}, status_code=503)


def _invalid(request: Request, exc: Exception) -> Response:
    """422 naming each bad parameter and why, without the value sent back: FastAPI's own answer echoes it, and a value
    JSON cannot carry back (``NaN``, a lone surrogate) made that answer a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"type": _text(e.get("type")), "loc": [p if isinstance(p, int) else _text(p) for p in e.get("loc", ())],
               "msg": _text(e.get("msg"))} for e in errors]  # fmt: skip
    return JSONResponse({"detail": detail}, status_code=422)


def _text(value: Any) -> str:
    return str(value).encode("utf-8", errors="replace").decode("utf-8")


StoreDep = Annotated[Store, Depends(_store)]
router = APIRouter()


@router.get("/overview", dependencies=_VIEW)
def overview(store: StoreDep, filters: FiltersDep, format: Format = "json") -> Response:
    """The KPI tiles."""
    return _answer(queries.overview(store, filters), format, "overview")


@router.get("/series", dependencies=_VIEW)
def series(store: StoreDep, filters: FiltersDep, metric: str = "cost", group_by: str = "provider",
           format: Format = "json") -> Response:  # fmt: skip
    """One metric over time, a series per group."""
    return _answer(_checked(lambda: queries.series(store, filters, metric, group_by)), format, "series")


@router.get("/top", dependencies=_VIEW)
def top(store: StoreDep, filters: FiltersDep, by: str = "dag", limit: int = 10, format: Format = "json") -> Response:
    """The costliest DAGs, tasks, runs or models."""
    return _answer(_checked(lambda: queries.top(store, filters, by, limit)), format, f"top-{by}")


@router.get("/errors", dependencies=_VIEW)
def errors(store: StoreDep, filters: FiltersDep, format: Format = "json") -> Response:
    """Failed and rejected calls by provider, model and error type."""
    return _answer(queries.errors(store, filters), format, "errors")


@router.get("/providers", dependencies=_VIEW)
def providers(store: StoreDep, readable: Readable, format: Format = "json") -> Response:
    """Provider health: error rates, latency, breakers, recent failovers."""
    return _answer(operations.providers(store, readable), format, "providers")


@router.get("/budgets", dependencies=_VIEW)
def budgets(store: StoreDep, readable: Readable, format: Format = "json") -> Response:
    """Open budget windows with their forecast."""
    return _answer(operations.budgets(store, readable), format, "budgets")


@router.get("/forecast", dependencies=_VIEW)
def forecast(store: StoreDep, filters: FiltersDep, format: Format = "json") -> Response:
    """Spend this month so far and projected to the month's end, with a band, for the filters' scope (their time
    range is not used: the forecast reads its own history)."""
    answer = spend.spend_forecast(store, filters)
    return _answer(answer if format == "json" else [*answer["history"], *answer["days"]], format, "forecast")


@router.get("/decisions", dependencies=_VIEW)
def decisions(store: StoreDep, readable: Readable, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              format: Format = "json") -> Response:  # fmt: skip
    """Recent routing decisions with their reasons."""
    return _answer(queries.decisions(store, dag_ids=readable, limit=limit), format, "decisions")


@router.get("/facets", dependencies=_VIEW)
def facets(store: StoreDep, filters: FiltersDep) -> Response:
    """The values the filter menus offer in the range."""
    return JSONResponse(queries.facets(store, filters))


@router.get("/stamp", dependencies=_VIEW)
def stamp(store: StoreDep, readable: Readable) -> Response:
    """What open pages poll (every few seconds): it changes when there is something new to show."""
    return JSONResponse({"stamp": queries.stamp(store, readable)})


@router.get("/tile", dependencies=_VIEW)
def tile(store: StoreDep, readable: Readable) -> Response:
    """The Home page tile: spend today and yesterday, failed calls today, open anomalies of the last 7 days."""
    now = datetime.now(UTC)
    week = findings.open_count(store, readable, now - timedelta(days=7))
    return JSONResponse({**queries.tile(store, readable, now), "open_anomalies": week})


@router.get("/experiments", dependencies=_VIEW)
def experiments(
    store: StoreDep, readable: Readable,
    experiment: Annotated[str | None, Query(max_length=250, pattern=_NO_NUL)] = None,
    format: Format = "json",
) -> Response:  # fmt: skip
    """One model experiment (default: the newest) over the DAGs the user may read: per-arm pass rate, cost, tokens,
    latency and iterations with intervals, the comparisons with the baseline arm and the verdict; CSV: one row per
    arm."""
    report = experiment_report(store, experiment, dag_ids=readable)
    return _answer(report if format == "json" else [_flat(arm) for arm in report["arms"]], format, "experiment")


@router.get("/dags/{dag_id}", dependencies=_RUN)
def dag(store: StoreDep, dag_id: str, filters: FiltersDep, format: Format = "json") -> Response:
    """One DAG's runs, tasks and models."""
    return _answer(queries.dag_runs(store, filters, dag_id), format, f"dag-{dag_id}")


@router.get("/dags/{dag_id}/runs/{run_id}", dependencies=_RUN)
def run(store: StoreDep, dag_id: str, run_id: str, format: Format = "json") -> Response:
    """One run's calls, per task, and its routing decisions."""
    return _answer(queries.run_calls(store, dag_id, run_id), format, "run")


@router.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{map_index}", dependencies=_TASK)
def transcript(store: StoreDep, dag_id: str, run_id: str, task_id: str,
               map_index: Annotated[int, Path(ge=-1, le=_MAP_INDEX_LIMIT)]) -> Response:  # fmt: skip
    """One task instance's transcript and artifacts."""
    return JSONResponse(task_transcript(store, dag_id, run_id, task_id, map_index))


@router.get("/anomalies", dependencies=_VIEW)
def anomalies(
    store: StoreDep,
    filters: FiltersDep,
    status: Literal["open", "acknowledged"] | None = None,
    kind: Annotated[str | None, Query(max_length=40, pattern=_NO_NUL)] = None,
    run_id: Annotated[str | None, Query(max_length=250, pattern=_NO_NUL)] = None,
    task_id: Annotated[str | None, Query(max_length=250, pattern=_NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    format: Format = "json",
) -> Response:
    """The anomaly scan's findings in the range, newest first (a restricted user: only their DAGs')."""
    found = findings.listed(store, filters.start, filters.end, dag_ids=filters.dag_ids, status=status, kind=kind,
                            dag_id=filters.dag_id, run_id=run_id, task_id=task_id, limit=limit)  # fmt: skip
    return _answer(found, format, "anomalies")


@router.post("/anomalies/{finding_id}/status", dependencies=_VIEW)
def anomaly_status(
    store: StoreDep, user: GetUserDep, readable: Readable, finding_id: str,
    status: Annotated[Literal["open", "acknowledged"], Body(embed=True)] = "acknowledged",
) -> Response:  # fmt: skip
    """Acknowledge (or reopen) a finding: needs edit access to its DAG (to every DAG for a provider's). A finding the
    user may not see (another DAG's, or a provider's for a user limited to some DAGs) is a 404 like a missing one."""
    finding = findings.get(store, finding_id)
    if finding is None or not _visible(finding["dag_id"], readable):
        raise HTTPException(status_code=404, detail=f"finding_id: no finding {finding_id[:40]!r}")
    _may_edit(user, finding["dag_id"])
    findings.set_status(store, finding_id, status, user.get_name(), datetime.now(UTC))
    return JSONResponse(findings.get(store, finding_id) or finding)


@router.get("/anomalies/mutes", dependencies=_VIEW)
def anomaly_mutes(store: StoreDep, readable: Readable) -> Response:
    """The mutes in force; a user limited to some DAGs sees the mutes of those DAGs (and their tasks) and the ones
    not about a DAG, never another DAG's."""
    shown = [m for m in findings.mutes(store, datetime.now(UTC)) if _visible(_mute_dag(m["mute_key"]), readable, True)]
    return JSONResponse(shown)


@router.post("/anomalies/mutes", dependencies=_VIEW)
def mute_anomalies(
    store: StoreDep, user: GetUserDep,
    kind: Annotated[str, Body(max_length=40)],
    scope: Annotated[str, Body(max_length=300, pattern=r"^(\*|dag:[^\x00]+|task:[^\x00]+|provider:[^\x00]+)$")],
    days: Annotated[float | None, Body(gt=0, le=3650)] = 7,
) -> Response:  # fmt: skip
    """Silence a kind of finding (``*``: every kind) for a task, DAG or provider, or everywhere, for ``days``
    (``null``: until unmuted). A DAG's or task's needs edit access to that DAG, the others to every DAG."""
    if kind != "*" and kind not in findings.KINDS:
        raise HTTPException(status_code=400, detail=f"kind: one of *, {', '.join(findings.KINDS)}")
    key = findings.mute_key(kind, scope)
    _may_edit(user, _mute_dag(key))
    until = findings.mute(store, key, user.get_name(), datetime.now(UTC), days)
    return JSONResponse({"mute_key": key, "until": until.isoformat() if until else None})


@router.delete("/anomalies/mutes/{mute_key:path}", dependencies=_VIEW)
def unmute_anomalies(store: StoreDep, user: GetUserDep, mute_key: str) -> Response:
    """End a mute."""
    _may_edit(user, _mute_dag(mute_key))
    if not findings.unmute(store, mute_key):
        raise HTTPException(status_code=404, detail=f"mute_key: no mute {mute_key[:60]!r}")
    return Response(status_code=204)


def _mute_dag(mute_key: str) -> str | None:
    """The DAG a mute is about (``kind|dag:<id>`` or ``kind|task:<dag>.<task>``); ``None`` for the others."""
    scope = mute_key.split("|", 1)[-1]
    return scope.split(":", 1)[1].split(".", 1)[0] if scope.startswith(("dag:", "task:")) else None


def _visible(dag_id: str | None, readable: frozenset[str] | None, undirected: bool = False) -> bool:
    """Whether a user who may read ``readable`` (``None``: every DAG) sees a thing about ``dag_id``; a thing about
    no DAG shows to them only when ``undirected``."""
    if readable is None:
        return True
    return undirected if dag_id is None else dag_id in readable


def _may_edit(user: Any, dag_id: str | None) -> None:
    """403 unless ``user`` may edit ``dag_id`` (every DAG when ``None``)."""
    details = DagDetails(id=dag_id) if dag_id else None
    if not get_auth_manager().is_authorized_dag(method="PUT", user=user, details=details):
        what = f"DAG {dag_id!r}" if dag_id else "every DAG"
        raise HTTPException(status_code=403, detail=f"changing this needs edit access to {what}")


def _checked(answer: Callable[[], Any]) -> Any:
    try:
        return answer()
    except FilterError as err:
        raise HTTPException(status_code=400, detail=str(err)) from None
