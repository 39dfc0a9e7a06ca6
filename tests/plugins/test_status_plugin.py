"""The DR status plugin as an operator meets it: a real ``airflow api-server`` with this project's plugins folder
(as ``make run`` starts it: simple auth manager, user admin, the group's connections in its environment) on a free
port, the records of a group in a WARN state at the standby site. Anonymous requests are refused by Airflow's
auth manager; a logged-in user sees the page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright), its rows and colours; screenshots go to ``docs/screenshots/``
with BIZTALK_DR_UPDATE_SCREENSHOTS=1 (else to the test's temporary folder). Nothing shown reveals the password of
a connection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from biztalk_dr.ops import status_history
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.standby_state import run_records_dir, state_dir
from biztalk_dr.ops.status_page import COLOURS
from sqlserver_standin.launcher import render_group_config
from tests.biztalk_dr.test_standby_status import report
from tests.conftest import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
# the README's screenshots are rewritten only when asked (BIZTALK_DR_UPDATE_SCREENSHOTS=1): a test run leaves the
# tracked files as they are
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
BIN = Path(sys.executable).parent
PASSWORD = "conn-secret-" + secrets.token_hex(6)  # a connection's password: must appear nowhere
# the module's server (db migrate, api-server start) is set up inside its first test's time
pytestmark = pytest.mark.timeout(900)
ENDPOINTS = ("/biztalk-dr/", "/biztalk-dr/status.json", "/biztalk-dr/metrics", "/biztalk-dr/runs/dr_failover/r1",
             "/biztalk-dr/records/failover/r1/timeline.md")


def _rgb(hex_colour: str) -> str:
    return "rgb({}, {}, {})".format(*(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)))


def seed_warn_group(root: Path) -> Path:
    """A group whose records at the standby site say WARN: measured a moment ago with a 40-minute window (warn at
    30, critical at 60), a week of history, a passed validation and a dry-run failover."""
    config = render_group_config(ROOT / "include" / "config" / "standin_group.yaml", root, root / "group.yaml")
    cfg = load_config(config)
    now = dt.datetime.now(dt.UTC)
    folder = state_dir(cfg.sites.standby.landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    status = dataclasses.replace(report(cfg, minutes_after_newest=40), written_at=now.isoformat(timespec="seconds"),
                                 run="dr_log_shipping/scheduled__seeded")
    (folder / "status.json").write_text(json.dumps(status.as_json()))
    for step in range(7 * 48, 0, -1):  # every 30 min for a week: mostly 5-15 min, an afternoon over warn
        minutes = 10 + 5 * math.sin(step / 7) + (30 if 100 < step < 110 else 0)
        status_history.append(folder, status_history.Point(
            (now - dt.timedelta(minutes=30 * step)).isoformat(timespec="seconds"),
            "warn" if minutes >= 30 else "ok", round(minutes * 60), "BTS_x"))
    validation = run_records_dir(cfg.sites.standby.landing_dir, "validation", "scheduled__seeded")
    (validation / "report.json").write_text(json.dumps({
        "run_id": "scheduled__seeded", "passed": True, "mark": "BTS_3", "set_id": 3, "group_restore_seconds": 42.5,
        "objective_minutes": 60, "objective_exceeded": False,
        "databases": [{"database": d.name, "ok": True} for d in cfg.databases]}))
    (validation / "report.md").write_text("# Restore validation of DEMO-BTS — PASSED\n")
    failover = run_records_dir(cfg.sites.standby.landing_dir, "failover", "manual__seeded")
    (failover / "timeline.json").write_text(json.dumps({"run_id": "manual__seeded", "dry_run": True, "mode": "disaster",
                                                        "mark": "BTS_3", "recovery_seconds": 61.0, "steps": []}))
    (failover / "timeline.md").write_text("# DRY RUN — failover timeline of DEMO-BTS\n")
    (failover / "SampleUpdateInfo.xml").write_text("<UpdateInfo/>\n")
    return config


class ApiServer:
    """``airflow api-server`` in a process group of its own, stopped the way airflow3.md says (SIGINT, then KILL)."""

    def __init__(self, home: Path, config: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        home.mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        conn = {"conn_type": "odbc", "host": "127.0.0.1", "port": 1, "login": "sa", "password": PASSWORD,
                "extra": {"driver": "FreeTDS"}}
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "AIRFLOW_HOME": str(home),
                    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__AUTH_MANAGER":
                        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                    "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(self.port),
                    "AIRFLOW__API__BASE_URL": self.url, "AIRFLOW__API__WORKERS": "1",
                    "BIZTALK_DR_CONFIG": str(config), "BIZTALK_DR_STATE_DIR": str(home / "state"),
                    "AIRFLOW_CONN_BIZTALK_PRIMARY": json.dumps(conn), "AIRFLOW_CONN_BIZTALK_STANDBY": json.dumps(conn)}
        self.log = home / "api-server.log"
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, check=True, capture_output=True,
                       timeout=240)
        self.proc = subprocess.Popen([str(BIN / "airflow"), "api-server", "--port", str(self.port)], env=self.env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, within: float = 180) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"airflow api-server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5):
                    return
            except OSError:
                time.sleep(0.5)  # polling a server that is starting; no assertion depends on this pause
        pytest.fail(f"airflow api-server not healthy within {within} s:\n{self.log.read_text()[-3000:]}")

    def get(self, path: str, token: str | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("content-type", ""), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("content-type", ""), exc.read().decode()

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password}).encode()
        request = urllib.request.Request(f"{self.url}/auth/token", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dr-status")
    server = ApiServer(root / "airflow", seed_warn_group(root / "group"))
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def test_anonymous_requests_are_refused_by_airflows_auth_manager(api_server):
    for path in ENDPOINTS:
        code, _, body = api_server.get(path)
        assert code in (401, 403), (path, code, body[:200])
        assert "DEMO-BTS" not in body
    code, _, _ = api_server.get("/biztalk-dr/status.json", token="not-a-token")
    assert code in (401, 403)


def test_status_json_and_metrics_for_monitoring_with_a_token(api_server):
    token = api_server.token()
    code, kind, body = api_server.get("/biztalk-dr/status.json", token)
    assert code == 200 and kind.startswith("application/json")
    view = json.loads(body)
    assert view["group"] == "DEMO-BTS" and view["health"] == "warn" and view["window"]["level"] == "warn"
    assert [d["name"] for d in view["status"]["databases"]][:2] == ["BizTalkMgmtDb", "BizTalkMsgBoxDb"]
    code, kind, metrics = api_server.get("/biztalk-dr/metrics", token)
    assert code == 200 and kind.startswith("text/plain")
    line = next(x for x in metrics.splitlines()
                if x.startswith('biztalk_dr_data_loss_seconds{database="BizTalkMgmtDb",group="DEMO-BTS"}'))
    assert 2400 <= float(line.split()[-1]) < 2400 + 600
    assert 'biztalk_dr_last_validation_success{database="DemoOrders",group="DEMO-BTS"} 1.0' in metrics
    assert "biztalk_dr_restore_lag_seconds{" in metrics and "biztalk_dr_health{group=\"DEMO-BTS\"} 1.0" in metrics
    code, kind, timeline = api_server.get("/biztalk-dr/records/failover/manual__seeded/timeline.md", token)
    assert code == 200 and timeline.startswith("# DRY RUN")
    assert api_server.get("/biztalk-dr/records/failover/manual__seeded/..%2F..%2Fstatus.json", token)[0] == 404
    for path in ENDPOINTS:
        assert PASSWORD not in api_server.get(path, token)[2]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): "
                                                  "apt-get install -y chromium (.ci/run does)")
def test_a_logged_in_operator_sees_the_warn_state_in_chromium(api_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    screenshots = DOCS_SCREENSHOTS if os.environ.get("BIZTALK_DR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    screenshots.mkdir(parents=True, exist_ok=True)
    cfg_databases = [d.name for d in load_config(api_server.env["BIZTALK_DR_CONFIG"]).databases]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)  # a loaded 2-core machine; every wait below is on an element
            page.goto(f"{api_server.url}/auth/login?next={api_server.url}/")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(api_server.password)
            page.locator("button[type=submit]").click()
            expect(page.get_by_role("heading", name="Welcome")).to_be_visible()  # Airflow's home page, logged in
            page.get_by_role("button", name="Browse").click()  # the plugin's entry in Airflow's navigation
            entry = page.get_by_text("DR status", exact=True)
            expect(entry).to_be_visible()
            entry.click()
            # a route of the UI (no page load to wait for); once the iframe has loaded, the UI appends the iframe's
            # own path (/plugin/biztalk-dr-status/biztalk-dr/): either is the plugin's page
            expect(page).to_have_url(re.compile(r"/plugin/biztalk-dr-status(/.*)?$"))
            frame = page.frame_locator("iframe")
            expect(frame.locator("#databases tbody tr")).to_have_count(len(cfg_databases))
            expect(frame.locator("h1 .badge")).to_have_text("WARN")
            page.screenshot(path=str(screenshots / "dr-status-in-airflow.png"))

            page.goto(f"{api_server.url}/biztalk-dr/")
            rows = page.locator("#databases tbody tr")
            expect(rows).to_have_count(len(cfg_databases))
            assert rows.evaluate_all("rs => rs.map(r => r.dataset.database)") == cfg_databases
            expect(page.locator("h1 .badge")).to_have_text("WARN")
            for row in rows.all():
                expect(row).to_have_attribute("data-level", "warn")
                expect(row).to_have_css("background-color", _rgb(COLOURS["warn"][1]))
                expect(row.locator("td[data-cell=state]")).to_have_text("RESTORING")
                expect(row.locator("td[data-cell=window] .badge")).to_have_css("color", _rgb(COLOURS["warn"][0]))
            expect(page.locator("#summary")).to_contain_text("minute(s) of work would be lost")
            expect(page.locator("ul.reasons li").first).to_contain_text("What to do:")
            expect(page.locator("svg#history polyline")).to_be_attached()
            expect(page.locator("#validation")).to_contain_text("PASSED")
            expect(page.locator("#failover")).to_contain_text("DRY RUN")
            assert PASSWORD not in page.content()
            page.screenshot(path=str(screenshots / "dr-status-warn.png"), full_page=True)
        finally:
            browser.close()
