"""The DR status page's content (``status_view.dr_view``) from the records the DAGs write at the standby site,
its HTML and chart (``status_page``), its metrics, and that nothing in it reveals a credential."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from biztalk_dr.domain.advice import advice
from biztalk_dr.ops import shipping_jobs, status_history
from biztalk_dr.ops.site_roles import hold_backups, read_roles, write_roles
from biztalk_dr.ops.standby_state import run_records_dir, state_dir
from biztalk_dr.ops.standby_status import Reason
from biztalk_dr.ops.status_page import COLOURS, render_page, render_run_records
from biztalk_dr.ops.status_view import dr_view, metric_values, record_path, records_of_run, redact
from tests.biztalk_dr.test_standby_status import cfg, report  # noqa: F401 - the fixture

NOW = dt.datetime(2026, 11, 25, 2, 10, tzinfo=dt.UTC)


def record(cfg, status, *, at: dt.datetime = NOW, run: str = "dr_log_shipping/scheduled__2026-11-25T02:05"):  # noqa: F811
    """``status`` as dr_log_shipping records it, ``at`` (UTC)."""
    folder = state_dir(cfg.sites.standby.landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = dataclasses.replace(status, written_at=at.isoformat(timespec="seconds"), run=run).as_json()
    (folder / shipping_jobs.STATUS_FILE).write_text(json.dumps(data))
    status_history.append(folder, status_history.Point(at.isoformat(timespec="seconds"), status.health,
                                                       status.data_loss_seconds, status.reachable_mark, run))


def validation_report(cfg, run_id: str, *, failed: str | None = None):  # noqa: F811
    folder = run_records_dir(cfg.sites.standby.landing_dir, "validation", run_id)
    dbs = [{"database": d.name, "ok": d.name != failed} for d in cfg.databases]
    (folder / "report.json").write_text(json.dumps({
        "run_id": run_id, "passed": failed is None, "mark": "BTS_3", "set_id": 3, "group_restore_seconds": 42.5,
        "objective_minutes": 60, "objective_exceeded": False, "databases": dbs}))
    (folder / "report.md").write_text("# Restore validation\n")


def test_a_group_never_measured_says_so_with_what_to_do(cfg):  # noqa: F811
    view = dr_view(cfg, NOW)
    assert view.status is None and view.health == "warn"
    assert [r.advice for r in view.reasons] == [advice("status_not_recorded")]
    page = render_page(view, days=7)
    assert "nothing measured yet" in page and "has not been measured yet" in page
    assert "everything would be lost" not in page  # unknown is not said as a loss


def test_the_window_grows_while_nobody_measures_and_a_stale_record_warns(cfg):  # noqa: F811
    record(cfg, report(cfg, minutes_after_newest=5), at=NOW)  # ok when measured: 5 min
    assert dr_view(cfg, NOW).health == "ok" and dr_view(cfg, NOW).window.minutes == 5
    later = dr_view(cfg, NOW + dt.timedelta(minutes=30))  # the mark is 35 min old now: warn, and the record stale
    assert later.window.level == "warn" and round(later.window.minutes) == 35
    assert [r.advice for r in later.reasons] == [advice("data_loss_window"), advice("status_stale")]
    assert later.health == "warn"


def test_a_warn_state_colours_every_database_row_and_the_summary(cfg):  # noqa: F811
    record(cfg, report(cfg, minutes_after_newest=40))
    view = dr_view(cfg, NOW)
    page = render_page(view, days=7)
    assert view.health == "warn" and page.count('data-level="warn"') >= len(cfg.databases) + 2
    for db in cfg.databases:
        assert f'<tr class="level-warn" data-database="{db.name}" data-level="warn">' in page
    assert COLOURS["warn"][1] in page and "What to do: " + advice("data_loss_window") in page
    assert '<a href="../dags/dr_log_shipping/runs">dr_log_shipping</a>' in page  # the runs the advice names
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="history"' in page and "<polyline" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_a_failed_validation_is_a_problem_and_its_metric_is_zero_for_that_database(cfg):  # noqa: F811
    record(cfg, report(cfg, minutes_after_newest=5))
    validation_report(cfg, "manual__2026-11-25T01:30", failed="BizTalkDTADb")
    view = dr_view(cfg, NOW)
    assert view.health == "warn" and view.validation.failed_databases == ("BizTalkDTADb",)
    assert view.reasons[-1].advice == advice("validation_failed")
    assert 'href="records/validation/manual__2026-11-25T01_30/report.md"' in render_page(view, days=7)
    values = metric_values(view)
    assert values.databases["last_validation_success"] == {d.name: 0.0 for d in cfg.databases} | {}
    assert values.databases["data_loss_seconds"]["BizTalkMgmtDb"] == 300
    assert values.databases["restore_lag_seconds"]["BizTalkMgmtDb"] == 20 * 60


def test_a_passed_validation_sets_every_metric_to_one(cfg):  # noqa: F811
    record(cfg, report(cfg, minutes_after_newest=5))
    validation_report(cfg, "scheduled__2026-11-24T03:00")
    assert set(metric_values(dr_view(cfg, NOW)).databases["last_validation_success"].values()) == {1.0}


def test_after_a_failover_the_page_says_which_site_is_primary_and_the_hold(cfg):  # noqa: F811
    record(cfg, report(cfg, minutes_after_newest=5))
    hold_backups(cfg, "manual__2026-11-25T02:00")
    write_roles(cfg.sites.standby.landing_dir,
                dataclasses.replace(read_roles(cfg.sites.standby.landing_dir), primary_site="standby"))
    folder = run_records_dir(cfg.sites.standby.landing_dir, "failover", "manual__2026-11-25T02:00")
    (folder / "timeline.json").write_text(json.dumps({"run_id": "manual__2026-11-25T02:00", "dry_run": True,
                                                      "mode": "disaster", "mark": "BTS_4", "recovery_seconds": 61.2,
                                                      "steps": [{"step": "assess.assess_standby", "outcome": "ok"}]}))
    (folder / "timeline.md").write_text("# DRY RUN\n")
    (folder / "SampleUpdateInfo.xml").write_text("<UpdateInfo/>")
    view = dr_view(cfg, NOW)
    assert view.primary_site == "standby" and view.hold.run_id == "manual__2026-11-25T02:00"
    assert view.failover.dry_run and view.failover.files == ("timeline.md", "timeline.json", "SampleUpdateInfo.xml")
    page = render_page(view, days=7)
    assert "The standby site is the primary now" in page and "BACKUPS HELD" in page and "DRY RUN" in page
    assert 'href="records/failover/manual__2026-11-25T02_00/SampleUpdateInfo.xml"' in page
    assert records_of_run(cfg, "failover", "manual__2026-11-25T02:00") == (
        "manual__2026-11-25T02_00", ["timeline.md", "timeline.json", "SampleUpdateInfo.xml"])
    assert "SampleUpdateInfo.xml</a>" in render_run_records("dr_failover", "manual__2026-11-25T02:00", "failover",
                                                           "manual__2026-11-25T02_00", ["SampleUpdateInfo.xml"])


def test_only_the_named_record_files_inside_the_records_folder_are_served(cfg, tmp_path):  # noqa: F811
    folder = run_records_dir(cfg.sites.standby.landing_dir, "failover", "r1")
    (folder / "timeline.md").write_text("x")
    assert record_path(cfg, "failover", "r1", "timeline.md") == (folder / "timeline.md").resolve()
    assert record_path(cfg, "failover", "..", "timeline.md") is None
    assert record_path(cfg, "failover", "r1", "../../standby-state.json") is None
    assert record_path(cfg, "status", "r1", "timeline.md") is None


@pytest.mark.parametrize("text", ["DRIVER=FreeTDS;SERVER=x;UID=sa;PWD=s3cr3t!;", "password: 's3cr3t!'",
                                  'login failed, "password"="s3cr3t!"', "Password={s3cr3t!}"])
def test_a_credential_in_a_reason_never_reaches_the_page(cfg, text):  # noqa: F811
    status = report(cfg, minutes_after_newest=5).with_reason(Reason("critical", f"the standby said: {text}"))
    record(cfg, status)
    view = dr_view(cfg, NOW)
    assert "s3cr3t!" not in redact(render_page(view, days=7))
    assert "s3cr3t!" not in redact(json.dumps(view.as_json(), default=str))


def test_the_history_keeps_the_last_days_and_skips_a_damaged_line(tmp_path):
    for minute in range(0, 600, 5):
        status_history.append(tmp_path, status_history.Point(
            (NOW + dt.timedelta(minutes=minute)).isoformat(), "ok", minute * 60, "BTS_1"))
    with open(tmp_path / status_history.HISTORY_FILE, "a") as fh:
        fh.write("{not json\n")
    points = status_history.read(tmp_path, NOW + dt.timedelta(minutes=300))
    assert len(points) == 60 and points[0].data_loss_seconds == 300 * 60
