"""Missed backup schedules, judged from the newest complete sets in the history."""

from __future__ import annotations

import datetime as dt

import pytest

from biztalk_dr.domain.backup_sets import group_sets
from biztalk_dr.ops.backup_freshness import check_backup_schedules
from biztalk_dr.ops.config_files import load_config
from tests.biztalk_dr.test_backup_sets import T0, night, rows_for
from tests.conftest import EXAMPLE_CONFIG


@pytest.fixture(scope="module")
def cfg():
    return load_config(EXAMPLE_CONFIG)  # daily full at 01:00, log sets every 15 min


def missed(cfg, rows, now):
    return {c.kind: c.missed for c in check_backup_schedules(cfg, group_sets(rows), now=now)}


def test_recent_sets_are_on_schedule(cfg):
    last_log = T0 + dt.timedelta(days=1, minutes=15)
    assert missed(cfg, night(), last_log + dt.timedelta(minutes=29)) == {"full": False, "log": False}


def test_log_sets_are_missed_after_two_intervals(cfg):
    last_log = T0 + dt.timedelta(days=1, minutes=15)
    checks = check_backup_schedules(cfg, group_sets(night()), now=last_log + dt.timedelta(minutes=31))
    log = next(c for c in checks if c.kind == "log")
    assert log.missed
    assert log.text() == ("MISSED: newest complete log set 5 (BTS_2026_11_02_01_15_00_000) is 31 min old; "
                          "dr_log_backup must produce one at least every 30 min")


def test_a_partial_set_does_not_count_as_a_backup(cfg):
    rows = night() + rows_for(6, "lg", T0 + dt.timedelta(days=1, minutes=30), complete=False)
    assert missed(cfg, rows, T0 + dt.timedelta(days=1, minutes=50))["log"] is True


def test_a_daily_full_is_missed_after_a_day_and_its_six_hour_deadline(cfg):
    full_day_1 = T0 + dt.timedelta(days=1)
    assert missed(cfg, night(), full_day_1 + dt.timedelta(hours=29, minutes=59))["full"] is False
    assert missed(cfg, night(), full_day_1 + dt.timedelta(hours=30, minutes=1))["full"] is True


def test_no_history_at_all_is_missed_and_says_so(cfg):
    checks = check_backup_schedules(cfg, [], now=T0)
    assert [c.missed for c in checks] == [True, True]
    assert checks[0].text().startswith("no complete full backup set in adm_BackupHistory: has dr_full_backup ever run?")


def test_the_health_checks_verdict_fails_on_a_missed_kind_and_skips_while_a_new_group_waits():
    """One signal for "waiting for the first full set": FirstFullSetPending, which the task turns into its skip."""
    import pytest

    from biztalk_dr.domain.errors import BackupScheduleMissed, FirstFullSetPending
    from biztalk_dr.ops.health import BackupSchedules

    assert BackupSchedules(lines=("ok: full", "ok: log")).verdict() == ["ok: full", "ok: log"]
    with pytest.raises(FirstFullSetPending, match="^waiting for the first full set; no log set yet$"):
        BackupSchedules(lines=(), waiting=("waiting for the first full set", "no log set yet")).verdict()
    with pytest.raises(BackupScheduleMissed, match="MISSED: log"):
        BackupSchedules(lines=(), missed=("MISSED: log",), waiting=("waiting for the first full set",)).verdict()
