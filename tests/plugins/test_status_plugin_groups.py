"""The DR status plugin with several groups in the deployment (``$BIZTALK_DR_CONFIG`` a folder): the page lists
every group (worst first, each linking to its full page), ``status.json`` is ``{"groups": [...]}``, the metrics
hold every group's series, a run's records are read in its own group's records folder, and a group whose file
never validated shows its problems (file:line) without hiding the others. Without Airflow's authentication every
endpoint still answers 401."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest
from fastapi.testclient import TestClient

from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.standby_state import run_records_dir
from sqlserver_standin.launcher import render_group_config
from tests.biztalk_dr.test_standby_status import report
from tests.biztalk_dr.test_status_view import record, validation_report
from tests.conftest import ROOT

TEMPLATE = ROOT / "include" / "config" / "standin_group.yaml"


def _group(folder, root, key: str):
    """Group ``key``'s file in ``folder`` (named GROUP-KEY, its sites under ``root/key``), loaded."""
    path = render_group_config(TEMPLATE, root / key, folder / f"{key}.yaml")
    path.write_text(path.read_text(encoding="utf-8").replace("DEMO-BTS", f"GROUP-{key.upper()}"), encoding="utf-8")
    return load_config(path)


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """east: WARN (a 40-minute window), its failover records; west: OK with a passed validation; typo.yaml: a
    file that never validated (line 3)."""
    folder = tmp_path / "groups"
    east, west = _group(folder, tmp_path, "east"), _group(folder, tmp_path, "west")
    now = dt.datetime.now(dt.UTC)
    record(east, report(east, minutes_after_newest=40), at=now, run="dr_log_shipping__east/scheduled__1")
    record(west, report(west, minutes_after_newest=5), at=now, run="dr_log_shipping__west/scheduled__1")
    validation_report(west, "scheduled__v1")
    (run_records_dir(east.sites.standby.landing_dir, "failover", "manual__f1") / "timeline.md").write_text(
        "# DRY RUN east\n")
    (folder / "typo.yaml").write_text("group:\n  name: X\n  mark_prefixx: BTS\n", encoding="utf-8")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(folder))
    return {"east": east, "west": west, "typo": folder / "typo.yaml"}


@pytest.fixture(scope="module")
def plugin():
    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager()
    spec = importlib.util.spec_from_file_location("biztalk_dr_status", ROOT / "plugins" / "biztalk_dr_status.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(plugin):
    """A client past Airflow's access check (its own test, below and in test_status_plugin.py, holds it): the
    app's one dependency answered as for a user allowed to read DAGs, for this test only."""
    app = plugin.build_app()
    (access,) = app.router.dependencies
    app.dependency_overrides[access.dependency] = lambda: None
    yield TestClient(app)
    app.dependency_overrides.clear()


def test_the_page_lists_every_group_worst_first_and_a_broken_file_with_its_line(deployment, client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.text
    rows = [page.index(f'data-group="{k}"') for k in ("typo", "east", "west")]
    assert rows == sorted(rows)  # worst first: the group without DAGs, then WARN, then OK
    assert '<tr class="level-critical" data-group="typo" data-level="critical">' in page and "FILE BROKEN" in page
    assert f"{deployment['typo']}:3" in page and "none of its DAGs is loaded" in page
    assert '<tr class="level-warn" data-group="east" data-level="warn">' in page
    assert '<tr class="level-ok" data-group="west" data-level="ok">' in page
    assert '<a href="./?group=east" target="_self"><b>GROUP-EAST</b></a>' in page
    assert "1 critical, 1 warn, 1 ok" in page


def test_a_groups_full_page_links_its_own_dags_and_records(deployment, client):
    page = client.get("/", params={"group": "east"}).text
    assert "DR status of GROUP-EAST" in page and "GROUP-WEST" not in page
    assert '<a href="../dags/dr_failover__east">dr_failover__east</a>' in page
    assert '<a href="../dags/dr_log_shipping__east/runs">dr_log_shipping__east</a>' in page  # the advice's runs
    assert 'href="status.json?group=east"' in page and 'href="./" target="_self">all groups' in page
    assert "../dags/dr_log_shipping/" not in page
    west = client.get("/", params={"group": "west"}).text
    assert 'href="records/validation/scheduled__v1/report.md?group=west"' in west
    assert client.get("/", params={"group": "nope"}).status_code == 404
    assert "FILE BROKEN" in client.get("/", params={"group": "typo"}).text


def test_status_json_holds_every_group(deployment, client):
    groups = {g["key"]: g for g in client.get("/status.json").json()["groups"]}
    assert (groups["east"]["group"], groups["east"]["health"], groups["east"]["window"]["level"]) == (
        "GROUP-EAST", "warn", "warn")
    assert (groups["west"]["health"], groups["west"]["validation"]["passed"]) == ("ok", True)
    assert groups["typo"]["health"] == "critical" and groups["typo"]["group"] is None
    assert any(p.startswith(f"{deployment['typo']}:3") for p in groups["typo"]["config_problems"])
    assert client.get("/status.json", params={"group": "west"}).json()["group"] == "GROUP-WEST"


def test_the_metrics_hold_every_groups_series_and_the_broken_file(deployment, client):
    metrics = client.get("/metrics").text
    assert 'biztalk_dr_health{group="GROUP-EAST"} 1.0' in metrics
    assert 'biztalk_dr_health{group="GROUP-WEST"} 0.0' in metrics
    [east_loss] = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith('biztalk_dr_data_loss_seconds{database="DemoOrders",group="GROUP-EAST"}')]
    assert 2400 <= east_loss < 2400 + 120  # 40 minutes when recorded, re-measured when asked
    assert 'biztalk_dr_last_validation_success{database="DemoOrders",group="GROUP-WEST"} 1.0' in metrics
    assert f'biztalk_dr_group_config_problems{{file="{deployment["typo"]}",group_key="typo"}}' in metrics
    assert 'group_key="east"} 0.0' in metrics


def test_a_runs_records_are_those_of_its_dags_group(deployment, client):
    east = client.get("/runs/dr_failover__east/manual__f1").text
    assert 'href="../../../records/failover/manual__f1/timeline.md?group=east"' in east
    assert "wrote no report" in client.get("/runs/dr_failover__west/manual__f1").text  # west has none
    assert client.get("/records/failover/manual__f1/timeline.md", params={"group": "east"}).text == "# DRY RUN east\n"
    assert client.get("/records/failover/manual__f1/timeline.md", params={"group": "west"}).status_code == 404
    assert client.get("/records/failover/manual__f1/timeline.md").status_code == 404  # which group?
    assert client.get("/records/failover/../timeline.md", params={"group": "east"}).status_code == 404
    assert client.get("/runs/dr_failover__nope/manual__f1").status_code == 404
    assert client.get("/runs/dr_failover__typo/manual__f1").status_code == 503


def test_a_file_broken_after_it_validated_warns_on_its_group(deployment, client):
    client.get("/")  # its valid version is kept
    path = deployment["typo"].parent / "west.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "retension: {}\n", encoding="utf-8")  # a typo
    west = {g["key"]: g for g in client.get("/status.json").json()["groups"]}["west"]
    assert west["group"] == "GROUP-WEST" and west["health"] == "warn" and west["config_problems"]
    assert "the DAGs run on its last valid version" in west["reasons"][-1]["reason"]


def test_a_deployment_naming_no_usable_groups_says_why(tmp_path, monkeypatch, client):
    monkeypatch.setenv("BIZTALK_DR_CONFIG", f"{tmp_path / 'empty'}:{tmp_path / 'gone.yaml'}")
    (tmp_path / "empty").mkdir()
    for path in ("/", "/status.json", "/metrics"):
        response = client.get(path)
        assert response.status_code == 503 and "holds no *.yaml group file" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/", "/?group=east", "/status.json", "/metrics", "/runs/dr_failover__east/r1",
                                  "/records/failover/manual__f1/timeline.md?group=east"])
def test_no_endpoint_answers_without_authentication_with_several_groups(deployment, plugin, path):
    anonymous = TestClient(plugin.build_app())
    assert anonymous.get(path).status_code == 401
    assert anonymous.get(path, headers={"Authorization": "Bearer forged"}).status_code in (401, 403)
