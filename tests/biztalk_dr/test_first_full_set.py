"""A new group is not an incident: its checks wait for the first full set, within the grace, then alert."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from biztalk_dr.domain.backup_sets import group_sets
from biztalk_dr.domain.config import parse_config
from biztalk_dr.domain.errors import ConfigError
from biztalk_dr.ops import first_full_set
from biztalk_dr.ops.backup_freshness import check_backup_schedules
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.failover import StandbyObservation
from biztalk_dr.ops.standby_state import DatabaseState, StandbyState
from biztalk_dr.ops.standby_status import standby_report
from tests.biztalk_dr.test_backup_sets import T0, rows_for
from tests.conftest import EXAMPLE_CONFIG

DBS = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "BizTalkDTADb", "SSODB", "BizTalkRuleEngineDb", "BAMPrimaryImport",
       "ContosoOrders"]


@pytest.fixture(scope="module")
def cfg():
    return load_config(EXAMPLE_CONFIG)  # rpo.first_full_set_grace_minutes: 360 (the default)


def _report(cfg, sets, state, now, *, seen, observed=None):
    left = first_full_set.grace_left(cfg, sets, now=now, seen=seen, now_utc=now)
    observed = observed if observed is not None else {d: StandbyObservation(d, None) for d in DBS}
    return standby_report(cfg, sets, state, now, shipped=lambda r: True, observed=observed, quarantined={},
                          waiting=first_full_set.standby_waiting(cfg, sets, state, left)).as_json()


def test_the_first_seen_record_is_written_once_and_kept(tmp_path):
    first = first_full_set.first_seen(tmp_path, now_utc=T0)
    later = first_full_set.first_seen(tmp_path, now_utc=T0 + dt.timedelta(hours=3))
    assert first == later == T0
    assert json.loads((tmp_path / ".biztalk-dr" / "first-seen.json").read_text()) == {"first_seen": T0.isoformat()}


def test_no_record_that_can_be_written_means_no_grace(tmp_path, cfg):
    (tmp_path / ".biztalk-dr").write_text("a file where the folder should be")
    assert first_full_set.first_seen(tmp_path, now_utc=T0) is None
    assert first_full_set.grace_left(cfg, [], now=T0, seen=None, now_utc=T0) is None


def test_a_new_group_with_nothing_shipped_is_waiting_not_critical(cfg):
    sets = group_sets(rows_for(1, "db", T0, dbs=DBS))  # the first full set, not restored on the standby yet
    report = _report(cfg, sets, StandbyState(), T0 + dt.timedelta(minutes=20), seen=T0 - dt.timedelta(minutes=5))
    assert report["health"] == "waiting"
    assert report["waiting"].startswith("waiting for the first full set: full set 1 (BTS_2026_11_01_01_00_00_000) "
                                        "is not restored on the standby yet")
    assert "335 min of it left" in report["waiting"]
    assert [r["level"] for r in report["reasons"]] == ["waiting"]


def test_past_the_grace_with_still_nothing_restored_is_critical(cfg):
    report = _report(cfg, [], StandbyState(), T0 + dt.timedelta(hours=6, minutes=1), seen=T0)
    assert report["health"] == "critical" and report["waiting"] == ""
    assert report["reasons"][0]["reason"].startswith("no mark every standby database can reach")


def test_old_history_is_not_a_new_group_even_with_a_new_landing_folder(cfg):
    """A wiped landing folder writes a new first-seen record; the primary's history says the group is old."""
    sets = group_sets(rows_for(1, "db", T0, dbs=DBS))
    now = T0 + dt.timedelta(days=2)
    report = _report(cfg, sets, StandbyState(), now, seen=now - dt.timedelta(minutes=1))
    assert report["health"] == "critical"


def test_once_the_standby_restored_anything_the_real_checks_apply(cfg):
    sets = group_sets(rows_for(1, "db", T0, dbs=DBS) + rows_for(2, "lg", T0 + dt.timedelta(minutes=15), dbs=DBS))
    state = StandbyState({d: DatabaseState(last_restored_set=1) for d in DBS[:3]})  # four databases missing
    report = _report(cfg, sets, state, T0 + dt.timedelta(minutes=30), seen=T0)
    assert report["health"] == "critical"


def test_a_problem_a_new_group_does_not_explain_still_alerts(cfg):
    """The standby instance unreachable is not something the first full set will bring."""
    sets = group_sets(rows_for(1, "db", T0, dbs=DBS))
    left = first_full_set.grace_left(cfg, sets, now=T0, seen=T0, now_utc=T0)
    report = standby_report(cfg, sets, StandbyState(), T0, shipped=lambda r: True, observed=None, quarantined={},
                            standby_error="login timeout",
                            waiting=first_full_set.standby_waiting(cfg, sets, StandbyState(), left)).as_json()
    assert report["health"] == "critical"
    assert [r["level"] for r in report["reasons"]] == ["critical", "waiting"]


def test_backup_schedules_wait_for_a_kind_never_taken_but_a_late_one_is_late(cfg):
    full = rows_for(1, "db", T0, dbs=DBS)
    now = T0 + dt.timedelta(minutes=40)
    left = first_full_set.grace_left(cfg, group_sets(full), now=now, seen=T0, now_utc=now)
    checks = {c.kind: c for c in check_backup_schedules(cfg, group_sets(full), now=now, grace_left=left)}
    assert not checks["full"].missed and not checks["full"].waiting
    assert not checks["log"].missed
    assert checks["log"].text().startswith("waiting for the first full set: no complete log backup set in "
                                           "adm_BackupHistory yet (dr_log_backup takes it)")
    after = T0 + dt.timedelta(hours=7)
    none_left = first_full_set.grace_left(cfg, group_sets(full), now=after, seen=T0, now_utc=after)
    assert none_left is None
    assert [c.missed for c in check_backup_schedules(cfg, group_sets(full), now=after, grace_left=none_left)] == \
        [False, True]


def test_the_grace_is_validated_with_its_line():
    assert "first_full_set_grace_minutes: 360 " in EXAMPLE_CONFIG.read_text()
    text = EXAMPLE_CONFIG.read_text().replace("first_full_set_grace_minutes: 360 ", "first_full_set_grace_minutes: 10 ")
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="group.yaml")
    [problem] = err.value.problems
    assert problem.field == "rpo.first_full_set_grace_minutes" and problem.line is not None
    assert "shorter than a log backup and a shipping interval (20 min)" in problem.message
    assert parse_config(text.replace("grace_minutes: 10", "grace_minutes: 0")).rpo.first_full_set_grace_minutes == 0
    with pytest.raises(ConfigError, match="first_full_set_grace_minutes"):
        parse_config(text.replace("grace_minutes: 10", "grace_minutes: -5"))


def test_restore_validation_of_a_new_group_skips_with_the_reason_and_writes_no_report(cfg, tmp_path):
    from biztalk_dr.domain.errors import FirstFullSetPending
    from biztalk_dr.ops import validation_jobs

    landing = tmp_path / "landing"
    cfg = cfg.model_copy(update={"sites": cfg.sites.model_copy(update={
        "standby": cfg.sites.standby.model_copy(update={"landing_dir": str(landing)})})})
    sets = group_sets(rows_for(1, "db", T0, dbs=DBS))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with pytest.raises(FirstFullSetPending, match="^waiting for the first full set: no complete log set is shipped"):
        validation_jobs._wait_for_first_full_set(cfg, "manual__1", sets, T0 + dt.timedelta(minutes=30))
    with pytest.raises(FirstFullSetPending, match="^waiting for the first full set: "):
        validation_jobs.write_report(cfg, "manual__1", send_warning=None)
    assert not list(landing.rglob("report.json"))
    # past the grace it returns, and plan_validation's refusal stands (a red run, alerted)
    validation_jobs._wait_for_first_full_set(cfg, "manual__2", sets, now + dt.timedelta(days=1))
