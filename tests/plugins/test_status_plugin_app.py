"""The DR status plugin's declarations and its app without a server: what Airflow's plugin manager mounts, and
that no endpoint answers a request without Airflow's authentication."""

from __future__ import annotations

import importlib.util

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def plugin():
    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager()  # as the API server does before mounting plugins: the configured (simple) auth manager
    spec = importlib.util.spec_from_file_location("biztalk_dr_status", ROOT / "plugins" / "biztalk_dr_status.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plugin_mounts_its_app_and_shows_in_the_navigation_and_on_task_pages(plugin):
    instance = plugin.BizTalkDrStatusPlugin()
    (app,) = instance.fastapi_apps
    assert app["url_prefix"] == "/biztalk-dr" and app["app"] is plugin.build_app()
    views = {v["destination"]: v for v in instance.external_views}
    assert views["nav"]["href"] == "/biztalk-dr/" and views["nav"]["category"] == "browse"
    assert views["task_instance"]["href"] == "/biztalk-dr/runs/{DAG_ID}/{RUN_ID}"


@pytest.mark.parametrize("path", ["/", "/status.json", "/metrics", "/runs/dr_failover/r1",
                                  "/records/failover/r1/timeline.md", "/records/failover/r1/SampleUpdateInfo.xml"])
def test_no_endpoint_answers_without_authentication(plugin, path):
    client = TestClient(plugin.build_app())
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer forged"}).status_code in (401, 403)
    assert client.get(path, cookies={"_token": "forged"}).status_code in (401, 403)
