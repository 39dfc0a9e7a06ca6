"""The status function (``standby_status.standby_report``) against recorded states of a group: what
``biztalk-dr status``, the data-loss check, the health check and the DR status page all show."""

from __future__ import annotations

import datetime as dt

import pytest

from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.failover import StandbyObservation
from biztalk_dr.ops.standby_state import DatabaseState, StandbyState
from biztalk_dr.ops.standby_status import StandbyStatus, standby_report
from sqlserver_standin.launcher import render_group_config
from tests.conftest import ROOT

T0 = dt.datetime(2026, 11, 25, 1, 0)


@pytest.fixture
def cfg(tmp_path):
    return load_config(render_group_config(ROOT / "include" / "config" / "standin_group.yaml", tmp_path,
                                           tmp_path / "group.yaml"))


def names(cfg) -> list[str]:
    return [d.name for d in cfg.databases]


def bset(cfg, set_id: int, kind: str = "log") -> BackupSet:
    when = T0 + dt.timedelta(minutes=15 * set_id)
    rows = tuple(HistoryRow(set_id * 10 + i, set_id, f"BTS_{set_id}", db, "SQLPRD01", f"{db}_{set_id}.bak",
                            "/backups/", "db" if kind == "full" else "lg", when, True)
                 for i, db in enumerate(names(cfg)))
    return BackupSet(set_id, f"BTS_{set_id}", kind, when, True, rows)


def group_sets(cfg) -> list[BackupSet]:
    return [bset(cfg, 1, "full"), bset(cfg, 2), bset(cfg, 3), bset(cfg, 4)]


def restored_at(cfg, set_id: int) -> StandbyState:
    return StandbyState({db: DatabaseState(last_restored_set=set_id, last_restored_mark=f"BTS_{set_id}")
                         for db in names(cfg)})


def restoring(cfg, **states: str | None) -> dict[str, StandbyObservation]:
    return {db: StandbyObservation(db, states.get(db, "RESTORING")) for db in names(cfg)}


def report(cfg, *, minutes_after_newest: float, sets=None, state=None, observed=None) -> StandbyStatus:
    sets = group_sets(cfg) if sets is None else sets
    now = sets[-1].backup_time + dt.timedelta(minutes=minutes_after_newest) if sets else T0
    return standby_report(cfg, sets, restored_at(cfg, 3) if state is None else state, now, shipped=lambda r: True,
                          observed=restoring(cfg) if observed is None else observed, quarantined={})


def test_a_fresh_group_has_nothing_to_deliver_and_says_so_for_every_database(cfg):
    status = standby_report(cfg, [], StandbyState(), T0, shipped=lambda r: True, observed={}, quarantined={})
    assert status.health == "critical" and status.reachable_mark is None and status.data_loss_seconds is None
    assert status.data_loss == "no backup set is shipped and verified at the standby site: everything would be lost"
    assert [r.advice for r in status.reasons] == [advice("standby_cannot_deliver")]
    assert {(d.name, d.source_set, d.shipped_set, d.restored_set, d.standby_state, d.can_reach)
            for d in status.databases} == {(n, None, None, None, None, False) for n in names(cfg)}


def test_a_healthy_group_reaches_the_newest_mark_with_every_figure_per_database(cfg):
    status = report(cfg, minutes_after_newest=5)
    assert status.health == "ok" and status.reasons == ()
    assert (status.reachable_mark, status.reachable_set, status.data_loss_seconds) == ("BTS_4", 4, 300)
    assert status.reachable_set_time == "2026-11-25T02:00:00"
    for db in status.databases:
        assert (db.source_full_set, db.source_log_set, db.shipped_set, db.restored_set, db.restored_mark) == \
            (1, 4, 4, 3, "BTS_3"), db
        assert db.standby_state == "RESTORING" and db.can_reach and db.standing == "restoring"
        assert db.restore_lag_seconds == 20 * 60  # set 3 was taken 15 min before set 4, now is 5 min after it
    assert StandbyStatus.from_json(status.as_json()) == status  # what dr_log_shipping records reads back whole


@pytest.mark.parametrize(("minutes", "health"), [(29, "ok"), (30, "warn"), (59, "warn"), (60, "critical")])
def test_the_window_is_measured_against_the_warn_and_critical_thresholds(cfg, minutes, health):
    status = report(cfg, minutes_after_newest=minutes)
    assert status.health == health and status.data_loss_seconds == minutes * 60
    if health != "ok":
        (reason,) = status.reasons
        assert reason.level == health and reason.reason.startswith(f"data-loss window {minutes} minute(s) of work")
        assert reason.advice == advice("data_loss_window")
    assert status.as_json()["thresholds_minutes"] == {"warn": 30, "critical": 60}


def test_a_database_missing_on_the_standby_leaves_no_mark_and_names_it(cfg):
    status = report(cfg, minutes_after_newest=5, observed=restoring(cfg, DemoOrders=None))
    assert status.health == "critical" and status.reachable_mark is None and status.data_loss_seconds is None
    (missing,) = [d for d in status.databases if d.can_reach is False]
    assert (missing.name, missing.standing, missing.standby_state) == ("DemoOrders", "missing", None)
    assert "DemoOrders" in status.reasons[0].reason and status.reasons[0].advice == advice("standby_cannot_deliver")


def test_after_a_failover_the_databases_online_at_the_mark_count_as_delivered(cfg):
    online = {db: StandbyObservation(db, "ONLINE", "BTS_4") for db in names(cfg)}
    status = report(cfg, minutes_after_newest=5, state=restored_at(cfg, 4), observed=online)
    assert status.health == "ok" and status.reachable_mark == "BTS_4"
    assert {d.standing for d in status.databases} == {"online_at_mark"}
    assert {d.standby_state for d in status.databases} == {"ONLINE"}


def test_a_standby_recovered_by_hand_is_critical_with_the_reseed_advice(cfg):
    status = report(cfg, minutes_after_newest=5, observed=restoring(cfg, BizTalkDTADb="ONLINE"))
    assert status.health == "critical"
    (db,) = [d for d in status.databases if not d.can_reach]
    assert db.name == "BizTalkDTADb" and db.standing == "online_without_mark"


def test_an_unreachable_standby_is_critical_and_the_figures_come_from_the_records(cfg):
    status = standby_report(cfg, group_sets(cfg), restored_at(cfg, 3), T0 + dt.timedelta(minutes=65),
                            shipped=lambda r: True, observed=None, quarantined={}, standby_error="timeout")
    assert status.health == "critical" and not status.standby_reachable
    assert status.reasons[0].advice == advice("standby_unreachable") and "(timeout)" in status.reasons[0].reason


def test_a_quarantined_file_not_shipped_again_warns_with_what_follows(cfg):
    sets = group_sets(cfg)
    status = standby_report(cfg, sets, restored_at(cfg, 3), sets[-1].backup_time + dt.timedelta(minutes=5),
                            shipped=lambda r: r.file_name != "DemoOrders_4.bak", observed=restoring(cfg),
                            quarantined={"DemoOrders_4.bak": "content hash differs"})
    reason = next(r for r in status.reasons if "quarantined" in r.reason)
    assert reason.level == "warn" and reason.advice == advice("quarantined_not_reshipped")
    assert "DemoOrders_4.bak is quarantined and not shipped again yet: content hash differs" == reason.reason
