"""The DR status view in the Airflow UI: a FastAPI app mounted by Airflow's plugin manager at ``/biztalk-dr``,
shown in the UI's navigation (Browse > DR status) and as a tab of every task instance (the run's records: the
failover timeline, the validation report, SampleUpdateInfo.xml).

- ``/biztalk-dr/`` — the page (server-rendered HTML and SVG; nothing loaded from anywhere else);
- ``/biztalk-dr/status.json`` — the same content for monitoring;
- ``/biztalk-dr/metrics`` — Prometheus text (``prometheus_client``): ``biztalk_dr_data_loss_seconds``,
  ``biztalk_dr_restore_lag_seconds``, ``biztalk_dr_last_validation_success`` per database, and the group's
  ``biztalk_dr_health`` and ``biztalk_dr_status_age_seconds``;
- ``/biztalk-dr/runs/{dag_id}/{run_id}`` and ``/biztalk-dr/records/{kind}/{run}/{file}`` — a run's records.

With several groups (``$BIZTALK_DR_CONFIG`` names a folder or a list: ``biztalk_dr.edge.groups``) the page lists every
group, worst first, and ``?group=KEY`` is one group's full page; ``status.json`` is ``{"groups": [...]}`` (one
group's with ``?group=KEY``); the metrics hold every group's series and ``biztalk_dr_group_config_problems``;
a run's group comes from its DAG id, and its records (``?group=KEY``) are read inside that group's records folder.
A group whose file never validated shows its problems (file:line) in its row; the other groups are unaffected.

Every endpoint depends on Airflow's own ``requires_access_dag("GET")``: the auth manager decides (a request
without a valid token or session cookie gets 401/403). Everything shown comes from ``biztalk_dr.ops.status_view``
(the records the DAGs write at the standby site); no connection is read, and every text passes ``redact``.
"""

from __future__ import annotations

import functools
import math
import re

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/biztalk-dr"
_RUN_KINDS = {"dr_failover": "failover", "dr_restore_validation": "validation"}
_FOLDER = re.compile(r"[A-Za-z0-9_.-]+")


def _view():  # noqa: ANN202 - status_view.DrView
    from biztalk_dr.ops.config_files import load_config
    from biztalk_dr.ops.status_view import dr_view

    return dr_view(load_config())


def _several():  # noqa: ANN202 - list[groups.GroupFile] | None
    """The deployment's group files when it has several (named by a folder or a list); None: one group. 503
    with the problem when $BIZTALK_DR_CONFIG names no usable set of groups (no DAG loads then either)."""
    from fastapi import HTTPException

    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.edge.groups import group_files
    from biztalk_dr.ops.status_view import redact

    try:
        files = group_files()
    except ConfigError as exc:
        raise HTTPException(status_code=503, detail=redact(str(exc))) from None
    return None if len(files) == 1 and files[0].key is None else files


def _group_view(gf):  # noqa: ANN001, ANN202 - groups.GroupFile -> status_view.GroupView
    """One group's view, as its DAGs run: its file, or its last valid version (the file's problems said), or
    only the problems when no version of it ever validated."""
    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.ops import config_fallback
    from biztalk_dr.ops.status_view import group_view

    try:
        cfg = gf.load()
    except ConfigError as exc:
        return group_view(gf.key, str(gf.path), None, [str(p) for p in exc.problems])
    fallback = config_fallback.current_fallback(gf.path)
    return group_view(gf.key, str(gf.path), cfg, [str(p) for p in fallback.problems] if fallback else [])


def _load(gf):  # noqa: ANN001, ANN202 - groups.GroupFile -> GroupConfig (503 with its problems when none)
    from fastapi import HTTPException

    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.ops.status_view import redact

    try:
        return gf.load()
    except ConfigError as exc:
        raise HTTPException(status_code=503, detail=redact(f"group {gf.key}: its file does not validate and no "
                                                           f"valid version of it was ever seen: {exc}")) from None


def _group_file(files, key):  # noqa: ANN001, ANN202 - the GroupFile of ``key`` (404 when none)
    from fastapi import HTTPException

    for gf in files:
        if gf.key == key:
            return gf
    raise HTTPException(status_code=404, detail=f"no group {key!r} in this deployment"
                                                f" (groups: {', '.join(str(f.key) for f in files)})")


@functools.cache
def build_app():  # noqa: ANN201 - fastapi.FastAPI, imported here: the plugin module is loaded by every task too
    """The app, built the first time the API server asks for it (the scheduler and the workers load this module
    for the listener plugin beside it, and never need FastAPI or the API's security module). The route functions
    carry no return annotation: under ``from __future__ import annotations`` FastAPI would have to resolve names
    local to this function."""
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

    app = FastAPI(title="biztalk-dr: DR status", dependencies=[Depends(requires_access_dag("GET"))],
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page(group: str | None = None):  # noqa: ANN202 - see build_app
        import datetime as dt

        from biztalk_dr.ops.status_page import render_overview, render_page
        from biztalk_dr.ops.status_view import HISTORY_DAYS, redact

        if (files := _several()) is None:
            return HTMLResponse(redact(render_page(_view(), days=HISTORY_DAYS)))
        if group is None:
            return HTMLResponse(redact(render_overview([_group_view(gf) for gf in files], dt.datetime.now(dt.UTC))))
        one = _group_view(_group_file(files, group))
        if one.view is None:  # its file never validated: its row says why
            return HTMLResponse(redact(render_overview([one], dt.datetime.now(dt.UTC))))
        return HTMLResponse(redact(render_page(one.view, days=HISTORY_DAYS, key=one.key)))

    @app.get("/status.json")
    def status_json(group: str | None = None):  # noqa: ANN202 - see build_app
        import json

        from biztalk_dr.ops.status_view import redact

        if (files := _several()) is None:
            content = _view().as_json()
        elif group is None:
            content = {"groups": [_group_view(gf).as_json() for gf in files]}
        else:
            content = _group_view(_group_file(files, group)).as_json()
        return JSONResponse(json.loads(redact(json.dumps(content, default=str))))

    @app.get("/metrics")
    def metrics():  # noqa: ANN202 - see build_app
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

        from biztalk_dr.ops.status_view import metric_values

        registry = CollectorRegistry()
        gauges = {
            "data_loss_seconds": Gauge("biztalk_dr_data_loss_seconds", "what a failover now would lose, in seconds "
                                       "(+Inf: no mark the database can reach)", ["group", "database"], registry=registry),
            "restore_lag_seconds": Gauge("biztalk_dr_restore_lag_seconds", "age of the last set restored on the standby",
                                         ["group", "database"], registry=registry),
            "last_validation_success": Gauge("biztalk_dr_last_validation_success", "1: the last restore validation "
                                             "restored and checked the database; 0: it failed",
                                             ["group", "database"], registry=registry),
        }
        health = Gauge("biztalk_dr_health", "0 ok, 1 warn, 2 critical", ["group"], registry=registry)
        age = Gauge("biztalk_dr_status_age_seconds", "age of the status recorded at the standby site", ["group"],
                    registry=registry)
        if (files := _several()) is None:
            views = [_view()]
        else:
            problems = Gauge("biztalk_dr_group_config_problems", "problems in the group's file (0: it validates; "
                             "with a valid version its DAGs run on that, without one its DAGs are not loaded and it "
                             "has no other series)", ["group_key", "file"], registry=registry)
            group_views = [_group_view(gf) for gf in files]
            for g in group_views:
                problems.labels(g.key, g.file).set(len(g.problems))
            views = [g.view for g in group_views if g.view is not None]
        for values in map(metric_values, views):
            for name, per_database in values.databases.items():
                for database, value in per_database.items():
                    gauges[name].labels(values.group, database).set(math.inf if value is None else value)
            health.labels(values.group).set(values.health)
            if values.status_age_seconds is not None:
                age.labels(values.group).set(values.status_age_seconds)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_records(dag_id: str, run_id: str):  # noqa: ANN202 - see build_app
        from biztalk_dr.domain.errors import ConfigError
        from biztalk_dr.edge.groups import KEY_SEPARATOR, group_of_dag_id
        from biztalk_dr.ops.config_files import load_config
        from biztalk_dr.ops.status_page import render_run_records
        from biztalk_dr.ops.status_view import RECORD_FILES, records_of_run

        key, base = None, dag_id
        if (several := _several()) is not None:  # the run's group: the key its DAG id ends with
            try:
                gf = group_of_dag_id(dag_id, several)
            except ConfigError:
                raise HTTPException(status_code=404, detail=f"DAG {dag_id!r} is of no group here") from None
            key, base = gf.key, dag_id.removesuffix(f"{KEY_SEPARATOR}{gf.key}")
        kind = _RUN_KINDS.get(base)
        cfg = (load_config() if key is None else _load(gf)) if kind else None
        folder, files = records_of_run(cfg, kind, run_id) if kind else ("", [])
        return HTMLResponse(render_run_records(dag_id, run_id, kind, folder, [f for f in files
                                                                              if f in RECORD_FILES.get(kind or "", ())],
                                               key))

    @app.get("/records/{kind}/{folder}/{name}")
    def record(kind: str, folder: str, name: str, group: str | None = None):  # noqa: ANN202 - see build_app
        from biztalk_dr.ops.config_files import load_config
        from biztalk_dr.ops.status_view import RECORD_FILES, record_path, redact

        if name not in RECORD_FILES.get(kind, ()) or not _FOLDER.fullmatch(folder) or folder in (".", ".."):
            raise HTTPException(status_code=404, detail="no such record")
        if (several := _several()) is None:
            cfg = load_config()
        elif group is None:
            raise HTTPException(status_code=404, detail="several groups here: say which one (?group=KEY)")
        else:
            cfg = _load(_group_file(several, group))  # its records folder, and only it
        path = record_path(cfg, kind, folder, name)
        if path is None:
            raise HTTPException(status_code=404, detail="no such record")
        text = redact(path.read_text(encoding="utf-8"))
        media = {"md": "text/markdown", "json": "application/json", "xml": "application/xml"}[name.rsplit(".", 1)[1]]
        return PlainTextResponse(text, media_type=f"{media}; charset=utf-8")
    return app


class BizTalkDrStatusPlugin(AirflowPlugin):
    name = "biztalk_dr_status"
    external_views = [
        {"name": "DR status", "href": f"{URL_PREFIX}/", "destination": "nav", "category": "browse",
         "url_route": "biztalk-dr-status"},
        {"name": "DR records", "href": f"{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}", "destination": "task_instance",
         "url_route": "biztalk-dr-records"},
    ]

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        return [{"app": build_app(), "url_prefix": URL_PREFIX, "name": "biztalk-dr DR status"}]
