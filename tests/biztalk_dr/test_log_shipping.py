"""Log shipping's decisions without servers: what is shipped, what a bad copy leads to, what is restored in
which order, and that two runs never touch the standby at once. Shipped files are real SQL Server backups
(``../shared/sqlserver-backups/sql2008-backups/StopAt``: a full and four contiguous logs)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from biztalk_dr.domain import log_shipping
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.domain.errors import CopyVerificationError, ShippingError, StandbyBusy
from biztalk_dr.domain.log_shipping import plan_shipping, plan_standby_restores
from biztalk_dr.ops import shipped_files, standby_restore
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.manifest import is_shipped_and_verified, read_manifest
from biztalk_dr.ops.shipped_files import ship_database_file
from biztalk_dr.ops.standby_state import DatabaseState, StandbyState, locked_state
from sqlserver_standin.launcher import render_group_config
from tests.conftest import ROOT, SHARED_BACKUPS

STOP_AT = SHARED_BACKUPS / "sql2008-backups" / "StopAt"
T0 = dt.datetime(2026, 11, 25, 1, 0)
DBS = ["BizTalkMgmtDb", "BizTalkMsgBoxDb"]


def bset(set_id: int, kind: str = "log", complete: bool = True, dbs=DBS, files=None) -> BackupSet:
    rows = tuple(HistoryRow(set_id * 10 + i, set_id, f"BTS_{set_id}", db, "SQLPRD01",
                            (files or {}).get(db, f"{db}_{set_id}.bak"), "/backups/", "db" if kind == "full" else "lg",
                            T0 + dt.timedelta(minutes=15 * set_id), complete) for i, db in enumerate(dbs))
    return BackupSet(set_id, f"BTS_{set_id}", kind, T0 + dt.timedelta(minutes=15 * set_id), complete, rows)


def positions(**sets: int) -> StandbyState:
    return StandbyState({db: DatabaseState(last_restored_set=n) for db, n in sets.items()})


# ------------------------------------------------------------------------------------------------ planning
def test_shipping_starts_at_the_newest_full_for_a_new_standby_and_reports_partial_sets():
    sets = [bset(1, "full"), bset(2), bset(3, "full"), bset(4, complete=False), bset(5)]
    plan = plan_shipping(sets, StandbyState(), DBS)
    assert [s.set_id for s in plan.sets] == [3, 5] and [s.set_id for s in plan.partial] == [4]
    assert plan_shipping([bset(1)], StandbyState(), DBS).waiting.startswith("no complete full backup set")


def test_shipping_goes_back_to_what_the_least_advanced_standby_database_needs():
    sets = [bset(1, "full"), bset(2), bset(3, "full"), bset(4)]
    plan = plan_shipping(sets, positions(BizTalkMgmtDb=3, BizTalkMsgBoxDb=1), DBS)
    assert [s.set_id for s in plan.sets] == [2, 3, 4]


def steps_of(plan):
    return [(s.set_id, s.database, s.action) for s in plan.steps]


def test_standby_restores_seed_then_go_set_by_set_and_hold_back_the_newest():
    sets = [bset(1, "full"), bset(2), bset(3), bset(4)]
    plan = plan_standby_restores(sets, StandbyState(), DBS, lambda r: True)
    assert steps_of(plan) == [(1, "BizTalkMgmtDb", "seed"), (1, "BizTalkMsgBoxDb", "seed"),
                              (2, "BizTalkMgmtDb", "log"), (2, "BizTalkMsgBoxDb", "log"),
                              (3, "BizTalkMgmtDb", "log"), (3, "BizTalkMsgBoxDb", "log")]
    assert "set 4 (BTS_4) is held back" in plan.notes[0] and not plan.blocked


def test_standby_restores_never_skip_a_set_that_is_not_shipped_yet():
    sets = [bset(1, "full"), bset(2), bset(3), bset(4), bset(5), bset(6)]
    plan = plan_standby_restores(sets, positions(BizTalkMgmtDb=1, BizTalkMsgBoxDb=1), DBS,
                                 lambda r: r.backup_set_id != 4)
    # set 3, the last log set before the unshipped one, is held back: its mark is the newest a failover can reach
    assert steps_of(plan) == [(2, "BizTalkMgmtDb", "log"), (2, "BizTalkMsgBoxDb", "log")]
    assert any("set 4 (BTS_4) is not shipped" in n for n in plan.notes)
    assert any("set 3 (BTS_3) is held back as well: set 4 is not at the standby yet" in n for n in plan.notes)


def test_a_set_completed_after_this_run_shipped_does_not_make_the_standby_pass_the_newest_shipped_mark():
    """The newest complete set appears between the run's shipping and its restore (a scheduled log backup): it
    is not at the standby, so the newest shipped set is held back, not restored past its mark (found on the
    engine tests: the data-loss check then saw no mark a failover could reach)."""
    sets = [bset(1, "full"), bset(2), bset(3), bset(4)]
    plan = plan_standby_restores(sets, positions(BizTalkMgmtDb=1, BizTalkMsgBoxDb=1), DBS,
                                 lambda r: r.backup_set_id != 4)
    assert steps_of(plan) == [(2, "BizTalkMgmtDb", "log"), (2, "BizTalkMsgBoxDb", "log")]
    assert any("set 3 (BTS_3) is held back as well: set 4 is not at the standby yet" in n for n in plan.notes)
    shipped = plan_standby_restores(sets, positions(BizTalkMgmtDb=2, BizTalkMsgBoxDb=2), DBS, lambda r: True)
    assert steps_of(shipped) == [(3, "BizTalkMgmtDb", "log"), (3, "BizTalkMsgBoxDb", "log")]  # once it arrives


def test_a_new_database_is_seeded_while_the_others_go_on_from_where_they_are():
    sets = [bset(1, "full"), bset(2), bset(3, "full"), bset(4), bset(5)]
    plan = plan_standby_restores(sets, positions(BizTalkMgmtDb=2), DBS, lambda r: True)
    assert steps_of(plan) == [(3, "BizTalkMsgBoxDb", "seed"), (4, "BizTalkMgmtDb", "log"), (4, "BizTalkMsgBoxDb", "log")]


def test_a_partial_set_stops_the_standby_and_a_later_full_set_calls_for_a_reseed():
    sets = [bset(1, "full"), bset(2), bset(3, complete=False), bset(4), bset(5, "full"), bset(6)]
    plan = plan_standby_restores(sets, positions(BizTalkMgmtDb=1, BizTalkMsgBoxDb=1), DBS, lambda r: True)
    # issue 15: set 2, the last log set before the partial one, is held back too (before issue 15 it was restored,
    # which passed mark 2, the only mark a failover could still reach until the re-seed)
    assert steps_of(plan) == []
    assert any("set 2 (BTS_2) is held back as well" in n for n in plan.notes)
    assert "set 3 (BTS_3) is partial" in plan.blocked and "full set 5" in plan.blocked
    waiting = plan_standby_restores(sets[:4], positions(BizTalkMgmtDb=2, BizTalkMsgBoxDb=2), DBS, lambda r: True)
    assert not waiting.steps and not waiting.blocked  # the forced full set is not there yet: wait


# ------------------------------------------------------------------------------------------------ shipping a file
needs_share = pytest.mark.skipif(not STOP_AT.is_dir(), reason=f"{SHARED_BACKUPS} not available")


@pytest.fixture
def cfg(tmp_path):
    return load_config(render_group_config(ROOT / "include" / "config" / "standin_group.yaml", tmp_path,
                                           tmp_path / "group.yaml"))


def stop_at(tmp_path: Path, name: str) -> tuple[BackupSet, HistoryRow, Path]:
    source = tmp_path / "backups" / name
    shutil.copyfile(STOP_AT / name, source)
    kind = "full" if name.endswith(".bak") else "log"
    one = bset(7, kind, dbs=["StopAt"], files={"StopAt": name})
    return one, one.rows[0], source


@needs_share
def test_a_file_is_shipped_proven_and_described_by_its_manifest_and_not_copied_twice(cfg, tmp_path):
    one, row, source = stop_at(tmp_path, "StopAt_1.trn")
    manifest, what = ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    assert "copied" in what and manifest.verified_at and manifest.backup_time == one.backup_time.isoformat()
    assert (manifest.first_lsn, manifest.last_lsn) == (19000000008100190, 19000000018300001)
    assert is_shipped_and_verified(cfg.sites.standby.landing_dir, "StopAt_1.trn")
    _, again = ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    assert again.startswith("StopAt_1.trn: already shipped and verified")


@needs_share
def test_the_manifest_keeps_the_files_header_for_the_planner_and_old_manifests_still_read(cfg, tmp_path):
    """The restore planner plans from the landing folder by the manifests' copies of RESTORE HEADERONLY (identity:
    BackupSetGUID, FamilyGUID, recovery fork, LSNs): the same header a fresh read of the file gives. A manifest
    written before manifests kept it is read as before, and its header comes from the file."""
    import json

    from biztalk_dr.backup_files import read_backup_file
    from biztalk_dr.ops.manifest import manifest_path, shipped_header

    one, row, source = stop_at(tmp_path, "StopAt_1.trn")
    ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    landing = Path(cfg.sites.standby.landing_dir)
    [fresh] = read_backup_file(landing / "StopAt_1.trn")
    kept = shipped_header(landing, "StopAt_1.trn")
    assert kept == fresh and kept.backup_set_id and kept.family_guid == fresh.family_guid
    assert shipped_files.row_header(cfg, row) == fresh
    path = manifest_path(landing, "StopAt_1.trn")
    data = json.loads(path.read_text())
    del data["header"]
    path.write_text(json.dumps({**data, "written_by_a_later_version": 1}))
    assert read_manifest(landing, "StopAt_1.trn").header is None
    assert shipped_header(landing, "StopAt_1.trn") == fresh  # read from the file
    assert shipped_header(landing, "StopAt_2.trn") is None  # not shipped


@needs_share
def test_a_corrupt_copy_is_copied_again_and_twice_means_an_error(cfg, tmp_path, monkeypatch):
    one, row, source = stop_at(tmp_path, "StopAt_2.trn")
    calls = []
    real = shipped_files.ship_file

    def flaky(src, landing, **kw):
        calls.append(src)
        if len(calls) == 1:
            raise CopyVerificationError("the copy's SHA-256 differs from the source's (network damage)")
        return real(src, landing, **kw)

    monkeypatch.setattr(shipped_files, "ship_file", flaky)
    manifest, what = ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    assert len(calls) == 2 and what.endswith("(second copy)") and manifest.verified_at

    one, row, source = stop_at(tmp_path, "StopAt_21.trn")
    monkeypatch.setattr(shipped_files, "ship_file", lambda *a, **k: (_ for _ in ()).throw(
        CopyVerificationError("the copy's size differs")))
    with pytest.raises(ShippingError, match="failed verification twice"):
        ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    assert read_manifest(cfg.sites.standby.landing_dir, "StopAt_21.trn") is None


@needs_share
def test_a_truncated_copy_is_quarantined_never_restored(cfg, tmp_path, monkeypatch):
    one, row, source = stop_at(tmp_path, "StopAt_23.trn")
    real = shipped_files.ship_file

    def truncating(src, landing, **kw):
        result = real(src, landing, **kw)
        with open(result.destination, "r+b") as fh:  # the landing disk lost the end of the file
            fh.truncate(result.size // 2)
        return result

    monkeypatch.setattr(shipped_files, "ship_file", truncating)
    with pytest.raises(ShippingError, match="truncated"):
        ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    landing = Path(cfg.sites.standby.landing_dir)
    assert len(list((landing / "quarantine").glob("StopAt_23.trn.*.why.txt"))) == 2
    assert not (landing / "StopAt_23.trn").exists() and not is_shipped_and_verified(landing, "StopAt_23.trn")


@needs_share
def test_a_missing_file_a_wrong_file_and_a_gap_are_refused(cfg, tmp_path):
    one, row, source = stop_at(tmp_path, "StopAt_2.trn")
    with pytest.raises(ShippingError, match="missing at the source"):
        ship_database_file(cfg, one, row, entry=None, previous=None, source=tmp_path / "gone.trn")
    entry = log_shipping.CatalogEntry(row.sql_path, "StopAt", "LOG", 1, 2)
    with pytest.raises(ShippingError, match="differs from msdb's 1-2"):
        ship_database_file(cfg, one, row, entry=entry, previous=None, source=source)
    first, _ = ship_database_file(cfg, *stop_at(tmp_path, "StopAt_1.trn")[:2], entry=None, previous=None,
                                  source=tmp_path / "backups" / "StopAt_1.trn")
    one, row, source = stop_at(tmp_path, "StopAt_21.trn")  # StopAt_2 is not there: 19300001 != 18300001
    with pytest.raises(ShippingError, match="the chain has a gap") as caught:
        ship_database_file(cfg, one, row, entry=None, previous=first, source=source)
    assert "dr_standby_reseed" in caught.value.advice


@needs_share
def test_a_half_written_copy_of_a_killed_worker_is_never_taken_for_a_shipped_file(cfg, tmp_path):
    landing = Path(cfg.sites.standby.landing_dir)
    (landing / ".StopAt_1.trn.4242.partial").write_bytes((STOP_AT / "StopAt_1.trn").read_bytes()[:5000])
    assert not is_shipped_and_verified(landing, "StopAt_1.trn")
    plan = plan_standby_restores([bset(1, "full"), bset(2), bset(3)], StandbyState(), DBS,
                                 lambda r: is_shipped_and_verified(landing, r.base_name))
    assert plan.steps == ()
    one, row, source = stop_at(tmp_path, "StopAt_1.trn")
    manifest, _ = ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    assert (landing / "StopAt_1.trn").stat().st_size == manifest.size  # the re-run's copy, whole


def test_two_runs_never_hold_the_standby_at_once(tmp_path):
    with locked_state(tmp_path, purpose="dr_log_shipping restore") as first:
        first.save(first.state.with_database("SSODB", last_restored_set=4))
        with pytest.raises(StandbyBusy, match="dr_log_shipping restore"):
            with locked_state(tmp_path, purpose="dr_standby_reseed"):
                pass
    with locked_state(tmp_path, purpose="next run") as second:
        assert second.state.of("SSODB").last_restored_set == 4


# ------------------------------------------------------------------------------------------------ a damaged shipped file
class FakeStandby:
    """The standby instance as restore_on_standby sees it: each RESTORE answers the next scripted error (or works)."""

    def __init__(self, *errors):
        self.errors, self.statements = list(errors), []

    def run(self, sql, kind=None):
        self.statements.append(sql)
        if self.errors and (error := self.errors.pop(0)) is not None:
            raise error

    def close(self):
        pass


def damaged_3183():
    from biztalk_dr.domain.errors import BackupMediaDamaged

    return BackupMediaDamaged(3183, 'RESTORE detected an error on page (1:1) in database "SSODB" as read from the '
                                    "backup set.")


def shipped_log(cfg, tmp_path):
    """StopAt_1.trn shipped and verified; the step that restores it into SSODB; a recopy that ships it again."""
    one, row, source = stop_at(tmp_path, "StopAt_1.trn")
    ship_database_file(cfg, one, row, entry=None, previous=None, source=source)
    step = log_shipping.StandbyStep(7, "BTS_7", one.backup_time, "SSODB", "StopAt_1.trn", "log")
    copies = []

    def recopy(s):
        copies.append(s)
        ship_database_file(cfg, one, row, entry=None, previous=None, source=source)

    return step, recopy, copies


def restore(cfg, step, recopy, server):
    landing = Path(cfg.sites.standby.landing_dir)
    with locked_state(landing, purpose="test") as session:
        return standby_restore.restore_on_standby(cfg, [step], session, connect=lambda conn_id: server, recopy=recopy,
                                               sleep=lambda s: None), session.state


def quarantined(cfg) -> list[str]:
    return sorted(p.read_text() for p in (Path(cfg.sites.standby.landing_dir) / "quarantine").glob("*.why.txt"))


@needs_share
def test_a_byte_flipped_after_shipping_is_caught_before_restore_and_restored_from_a_second_copy(cfg, tmp_path):
    step, recopy, copies = shipped_log(cfg, tmp_path)
    path = Path(cfg.sites.standby.landing_dir) / "StopAt_1.trn"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    server = FakeStandby()
    done, state = restore(cfg, step, recopy, server)
    assert copies == [step] and len(server.statements) == 1  # the damaged bytes never reached RESTORE
    assert [w.split(":")[0] for w in quarantined(cfg)] == ["content check before restore failed"]
    assert state.of("SSODB").last_restored_set == 7 and path.read_bytes() != bytes(data)


@needs_share
def test_a_media_error_on_a_file_whose_hash_matches_is_retried_once_on_a_fresh_copy(cfg, tmp_path):
    step, recopy, copies = shipped_log(cfg, tmp_path)
    server = FakeStandby(damaged_3183())
    done, state = restore(cfg, step, recopy, server)
    assert len(server.statements) == 2 and copies == [step] and done[0].endswith("(from a second copy)")
    assert quarantined(cfg)[0].startswith("SQL Server error 3183 on restore")
    assert is_shipped_and_verified(cfg.sites.standby.landing_dir, "StopAt_1.trn")


@needs_share
def test_a_media_error_on_the_fresh_copy_too_blames_the_source_and_is_never_retried_again(cfg, tmp_path):
    from biztalk_dr.domain.errors import ShippedFileDamaged

    step, recopy, copies = shipped_log(cfg, tmp_path)
    server = FakeStandby(damaged_3183(), damaged_3183(), None)
    with pytest.raises(ShippedFileDamaged) as caught:
        restore(cfg, step, recopy, server)
    assert caught.value.source_bad and caught.value.number == 3183
    assert len(server.statements) == 2 and copies == [step]  # one fresh copy, one more RESTORE: then it stops
    assert len(quarantined(cfg)) == 2 and not is_shipped_and_verified(cfg.sites.standby.landing_dir, "StopAt_1.trn")


@needs_share
def test_a_damaged_copy_that_cannot_be_copied_again_is_quarantined_and_says_where(cfg, tmp_path):
    from biztalk_dr.domain.errors import ShippedFileDamaged, SqlConnectionError

    step, _, _ = shipped_log(cfg, tmp_path)
    path = Path(cfg.sites.standby.landing_dir) / "StopAt_1.trn"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))

    def unreachable(s):
        raise SqlConnectionError(0, "cannot be reached after 4 attempt(s)", conn_id="biztalk_primary")

    server = FakeStandby()
    with pytest.raises(ShippedFileDamaged) as caught:
        restore(cfg, step, unreachable, server)
    assert not caught.value.source_bad and server.statements == []
    assert caught.value.quarantined in caught.value.advice and "biztalk_primary" in caught.value.advice
