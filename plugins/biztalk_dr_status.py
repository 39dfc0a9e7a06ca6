"""The DR status view in the Airflow UI: a FastAPI app mounted by Airflow's plugin manager at ``/biztalk-dr``,
shown in the UI's navigation (Browse > DR status) and as a tab of every task instance (the run's records: the
failover timeline, the validation report, SampleUpdateInfo.xml).

- ``/biztalk-dr/`` — the page (server-rendered HTML and SVG; nothing loaded from anywhere else);
- ``/biztalk-dr/status.json`` — the same content for monitoring;
- ``/biztalk-dr/metrics`` — Prometheus text (``prometheus_client``): ``biztalk_dr_data_loss_seconds``,
  ``biztalk_dr_restore_lag_seconds``, ``biztalk_dr_last_validation_success`` per database, and the group's
  ``biztalk_dr_health`` and ``biztalk_dr_status_age_seconds``;
- ``/biztalk-dr/runs/{dag_id}/{run_id}`` and ``/biztalk-dr/records/{kind}/{run}/{file}`` — a run's records.

Every endpoint depends on Airflow's own ``requires_access_dag("GET")``: the auth manager decides (a request
without a valid token or session cookie gets 401/403). Everything shown comes from ``biztalk_dr.status_view``
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
    from biztalk_dr.config import load_config
    from biztalk_dr.status_view import dr_view

    return dr_view(load_config())


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
    def page():  # noqa: ANN202 - see build_app
        from biztalk_dr.status_page import render_page
        from biztalk_dr.status_view import HISTORY_DAYS, redact

        return HTMLResponse(redact(render_page(_view(), days=HISTORY_DAYS)))

    @app.get("/status.json")
    def status_json():  # noqa: ANN202 - see build_app
        import json

        from biztalk_dr.status_view import redact

        return JSONResponse(json.loads(redact(json.dumps(_view().as_json(), default=str))))

    @app.get("/metrics")
    def metrics():  # noqa: ANN202 - see build_app
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

        from biztalk_dr.status_view import metric_values

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
        values = metric_values(_view())
        for name, per_database in values.databases.items():
            for database, value in per_database.items():
                gauges[name].labels(values.group, database).set(math.inf if value is None else value)
        health.labels(values.group).set(values.health)
        if values.status_age_seconds is not None:
            age.labels(values.group).set(values.status_age_seconds)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_records(dag_id: str, run_id: str):  # noqa: ANN202 - see build_app
        from biztalk_dr.config import load_config
        from biztalk_dr.status_page import render_run_records
        from biztalk_dr.status_view import RECORD_FILES, records_of_run

        kind = _RUN_KINDS.get(dag_id)
        folder, files = records_of_run(load_config(), kind, run_id) if kind else ("", [])
        return HTMLResponse(render_run_records(dag_id, run_id, kind, folder, [f for f in files
                                                                              if f in RECORD_FILES.get(kind or "", ())]))

    @app.get("/records/{kind}/{folder}/{name}")
    def record(kind: str, folder: str, name: str):  # noqa: ANN202 - see build_app
        from biztalk_dr.config import load_config
        from biztalk_dr.status_view import RECORD_FILES, record_path, redact

        if name not in RECORD_FILES.get(kind, ()) or not _FOLDER.fullmatch(folder) or folder in (".", ".."):
            raise HTTPException(status_code=404, detail="no such record")
        path = record_path(load_config(), kind, folder, name)
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
