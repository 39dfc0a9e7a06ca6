"""The data-loss window an operator is alerted on."""

from __future__ import annotations

import datetime as dt

from biztalk_dr.domain.backup_sets import HistoryRow, group_sets
from biztalk_dr.domain.config import Rpo
from biztalk_dr.domain.data_loss import data_loss_window

T0 = dt.datetime(2026, 11, 25, 1, 0)


def sets(*specs):
    rows = []
    for set_id, kind, minute, complete in specs:
        rows.append(HistoryRow(set_id, set_id, f"BTS_{set_id}", "SSODB", "SQL1", f"f{set_id}.bak", "/b",
                               kind, T0 + dt.timedelta(minutes=minute), complete))
    return group_sets(rows)


RPO = Rpo(warn_minutes=30, critical_minutes=60)


def test_window_is_measured_from_the_newest_protected_log_set():
    s = sets((1, "db", 0, True), (2, "lg", 15, True), (3, "lg", 30, True), (4, "lg", 45, True))
    window = data_loss_window(s, protected=lambda b: b.set_id <= 3, now=T0 + dt.timedelta(minutes=50), rpo=RPO)
    assert (window.level, window.minutes, window.set_id, window.mark_name) == ("ok", 20, 3, "BTS_3")
    assert window.describe() == ("20 minute(s) of work would be lost: the newest recoverable point is mark BTS_3 "
                                 "(set 3, 2026-11-25 01:30:00)")


def test_partial_sets_and_full_sets_are_not_recovery_points():
    s = sets((1, "db", 0, True), (2, "lg", 15, True), (3, "lg", 30, False), (4, "db", 45, True))
    window = data_loss_window(s, protected=lambda b: True, now=T0 + dt.timedelta(minutes=50), rpo=RPO)
    assert window.set_id == 2 and window.level == "warn"


def test_levels_follow_the_thresholds():
    s = sets((2, "lg", 0, True))
    at = {m: data_loss_window(s, protected=lambda b: True, now=T0 + dt.timedelta(minutes=m), rpo=RPO).level
          for m in (29, 30, 59, 60)}
    assert at == {29: "ok", 30: "warn", 59: "warn", 60: "critical"}


def test_nothing_protected_is_critical():
    window = data_loss_window(sets((2, "lg", 0, True)), protected=lambda b: False, now=T0, rpo=RPO)
    assert window.level == "critical" and window.minutes is None
    assert "everything would be lost" in window.describe()
