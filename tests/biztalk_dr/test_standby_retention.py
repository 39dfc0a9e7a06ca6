"""Standby-site retention on real landing folders: files, manifests, the standby state and validation reports as
log shipping and restore validation write them; what goes, what stays and why, and a crash between the steps."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from biztalk_dr.domain.errors import StandbyBusy
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.content_hash import digest_of
from biztalk_dr.ops.manifest import (
    Manifest,
    is_shipped_and_verified,
    read_manifest,
    was_retired,
    write_manifest,
)
from biztalk_dr.ops.standby_retention import landing_files, plan_standby_retention, retain_landing_folder
from biztalk_dr.ops.standby_state import StandbyState, locked_state
from tests.conftest import EXAMPLE_CONFIG

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
# set id -> (kind, age in days): four full chains, the newest set not restored on the standby yet
SETS = {1: ("db", 30), 2: ("lg", 29.9), 3: ("lg", 29.8), 4: ("db", 20), 5: ("lg", 19.9), 6: ("db", 10),
        7: ("lg", 9.9), 8: ("db", 1), 9: ("lg", 0.9), 10: ("lg", 0.01)}


def _config(tmp_path, **standby):
    cfg = load_config(EXAMPLE_CONFIG)
    landing = tmp_path / "landing"
    landing.mkdir()
    retention = cfg.retention.model_copy(update={"standby": cfg.retention.standby.model_copy(update=standby)})
    return cfg.model_copy(update={
        "sites": cfg.sites.model_copy(update={"standby": cfg.sites.standby.model_copy(
            update={"landing_dir": str(landing)})}),
        "retention": retention})


def _name(set_id: int, db: str) -> str:
    kind, _ = SETS[set_id]
    return f"SQLPRD01_{db}_{'Full' if kind == 'db' else 'Log'}_BTS_{set_id:04d}.bak"


def _ship(cfg, set_ids=SETS, *, restored_to=9, validated=(4, 5)):
    """The landing folder as log shipping leaves it: every file with its verified manifest, the standby state,
    and a passed validation report."""
    landing = cfg.sites.standby.landing_dir
    for set_id in set_ids:
        kind, age = SETS[set_id]
        when = NOW - dt.timedelta(days=age)
        for db in cfg.databases:
            name = _name(set_id, db.name)
            (path := Path(landing) / name).write_bytes(b"x" * (100 + set_id))
            write_manifest(landing, Manifest(
                file_name=name, size=path.stat().st_size, sha256=None, set_id=set_id,
                mark_name=f"BTS_{set_id:04d}", database_name=db.name, backup_type=kind, first_lsn=set_id * 100,
                last_lsn=set_id * 100 + 99, source_path=f"\\\\fs\\bk\\{name}", shipped_at=when.isoformat(),
                verified_at=when.isoformat(), backup_time=when.isoformat(), blake3=digest_of(path, "blake3")[0]))
    with locked_state(landing, purpose="test") as session:
        state = StandbyState()
        for db in cfg.databases:
            state = state.with_database(db.name, last_restored_set=restored_to)
        session.save(state)
    if validated:
        run = Path(landing) / ".biztalk-dr" / "validation" / "scheduled__2026"
        run.mkdir(parents=True)
        (run / "plan.json").write_text(json.dumps({"full_set_id": validated[0], "set_id": validated[1]}))
        (run / "report.json").write_text(json.dumps({"passed": True, "set_id": validated[1],
                                                      "run_id": "scheduled__2026"}))


def _sets_left(cfg):
    return sorted({f.manifest.set_id for f in landing_files(cfg.sites.standby.landing_dir) if f.manifest})


def test_what_goes_and_why_each_other_file_stays(tmp_path):
    cfg = _config(tmp_path, keep_days=7, keep_full_chains=2, delete=True)
    _ship(cfg)
    result = retain_landing_folder(cfg)
    # sets 1-3: old, restored, before the two newest full chains (6.., 8..) and the validated chain (4-5)
    assert _sets_left(cfg) == [4, 5, 6, 7, 8, 9, 10]
    assert len(result["deleted"]) == 3 * 7 and result["bytes_freed"] == 7 * (101 + 102 + 103)
    landing = cfg.sites.standby.landing_dir
    gone = _name(1, "SSODB")
    assert not (tmp_path / "landing" / gone).exists() and read_manifest(landing, gone) is None
    assert was_retired(landing, gone)  # the record the source's retention counts as shipped

    decisions = {str(d).split(" (")[0]: d.reason for d in plan_standby_retention(
        landing_files(landing), databases=[d.name for d in cfg.databases],
        restored={d.name: 9 for d in cfg.databases}, validated=(4, 5, "scheduled__2026"), now=NOW, keep_days=7,
        keep_full_chains=2)}
    assert decisions[f"keep {_name(10, 'SSODB')}"] == "not restored on the standby yet (SSODB's last restored set is 9)"
    assert decisions[f"keep {_name(7, 'SSODB')}"].startswith("in the newest 2 complete full chain(s) (full set 6")
    assert decisions[f"keep {_name(4, 'SSODB')}"].startswith("in the newest validated chain (full set 4 to set 5")


def test_an_upgrade_is_a_dry_run_that_logs_what_it_would_delete(tmp_path, caplog):
    cfg = _config(tmp_path)  # retention.standby as shipped: delete false
    assert cfg.retention.standby.delete is False
    _ship(cfg, validated=None)
    with caplog.at_level(logging.INFO, logger="biztalk_dr.ops.standby_retention"):
        result = retain_landing_folder(cfg)
    assert result["dry_run"] is True and len(result["would_delete"]) == 5 * 7  # sets 1-5
    assert _sets_left(cfg) == list(SETS)  # nothing deleted
    would = [r.getMessage() for r in caplog.records if r.getMessage().startswith("would delete")]
    assert len(would) == 35 and "(dry run: retention.standby.delete is false)" in would[0]
    kept = [r.getMessage() for r in caplog.records if r.getMessage().startswith("keep ")]
    assert len(kept) == 5 * 7  # every decision logged with its reason


def test_files_the_standby_has_not_restored_are_never_deleted_however_old(tmp_path):
    cfg = _config(tmp_path, keep_days=1, keep_full_chains=1, delete=True)
    _ship(cfg, restored_to=2, validated=None)  # the standby is stuck at set 2 (a failing restore)
    retain_landing_folder(cfg)
    assert _sets_left(cfg) == list(range(3, 11))  # only the restored sets 1-2 went (set 8 is the newest full)
    assert not is_shipped_and_verified(cfg.sites.standby.landing_dir, _name(2, "SSODB"))


def test_fewer_complete_full_chains_than_kept_deletes_nothing(tmp_path):
    cfg = _config(tmp_path, keep_days=1, keep_full_chains=5, delete=True)
    _ship(cfg, validated=None)
    assert retain_landing_folder(cfg)["deleted"] == []


def test_an_incomplete_full_set_is_no_chain_and_unverified_files_stay(tmp_path):
    cfg = _config(tmp_path, keep_days=1, keep_full_chains=1, delete=True)
    _ship(cfg, validated=None)
    landing = tmp_path / "landing"
    (landing / _name(8, "SSODB")).write_bytes(b"cut short")  # another size than its manifest: not verified
    (landing / "copied-by-hand.bak").write_bytes(b"?")
    retain_landing_folder(cfg)
    # full set 8 is not complete any more: the newest complete full chain starts at 6
    assert _sets_left(cfg) == [6, 7, 8, 9, 10]
    assert (landing / _name(8, "SSODB")).exists() and (landing / "copied-by-hand.bak").exists()


def test_a_crash_between_retiring_the_manifest_and_deleting_the_file(tmp_path, monkeypatch):
    """Killed after the rename: the file is no longer trusted (no manifest), the next run finishes the deletion."""
    import biztalk_dr.ops.standby_retention as module

    cfg = _config(tmp_path, keep_days=7, keep_full_chains=2, delete=True)
    _ship(cfg, validated=None)
    landing = cfg.sites.standby.landing_dir
    real_unlink = Path.unlink

    def crash(self, *args, **kwargs):
        if self.name.endswith(".bak"):
            raise SystemExit("killed")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(SystemExit):
        module.retain_landing_folder(cfg)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    first = min(_name(1, d.name) for d in cfg.databases)  # the first file it decided to delete
    assert (tmp_path / "landing" / first).exists()  # the file is still there ...
    assert read_manifest(landing, first) is None and not is_shipped_and_verified(landing, first)  # ... untrusted
    assert was_retired(landing, first)

    result = module.retain_landing_folder(cfg)
    assert result["finished_interrupted"] == [first]
    assert not (tmp_path / "landing" / first).exists()
    assert _sets_left(cfg) == [6, 7, 8, 9, 10]


def test_it_never_runs_beside_a_restore(tmp_path):
    cfg = _config(tmp_path, delete=True)
    _ship(cfg, validated=None)
    with locked_state(cfg.sites.standby.landing_dir, purpose="dr_log_shipping restore"), \
            pytest.raises(StandbyBusy, match="dr_log_shipping restore"):
        retain_landing_folder(cfg)
    assert _sets_left(cfg) == list(SETS)


def test_a_landing_folder_short_of_two_full_sets_warns(tmp_path, monkeypatch):
    import biztalk_dr.ops.standby_retention as module

    cfg = _config(tmp_path)
    _ship(cfg, validated=None)
    full = 7 * 108  # set 8, the newest complete full set, one file per database
    monkeypatch.setattr(module, "disk_free", lambda folder: 2 * full)
    result = module.retain_landing_folder(cfg)
    assert result["full_set_bytes"] == full and module.space_warning(result, "/landing") == ""
    monkeypatch.setattr(module, "disk_free", lambda folder: 2 * full - 1)
    warning = module.space_warning(module.retain_landing_folder(cfg), "/landing")
    assert warning.startswith("WARNING: /landing has 0.00 GB free; two full sets of the group need")
    assert warning.endswith("— and retention is a dry run (retention.standby.delete: false)")


def test_restore_validation_never_restores_a_file_whose_deletion_was_begun(tmp_path):
    """A crash after the manifest was retired leaves the file without one: restore validation refuses it."""
    from biztalk_dr.domain.backup_sets import HistoryRow, group_sets
    from biztalk_dr.domain.errors import PreflightError
    from biztalk_dr.ops import validation_jobs
    from biztalk_dr.ops.manifest import retire_manifest

    cfg = _config(tmp_path)
    _ship(cfg, validated=None)
    landing = cfg.sites.standby.landing_dir
    retire_manifest(landing, _name(9, "SSODB"))  # the first step of a deletion; the crash before the second
    rows = [HistoryRow(set_id * 100 + i, set_id, f"BTS_{set_id:04d}", db.name, "SQLPRD01", _name(set_id, db.name),
                       "\\\\fs\\bk\\", SETS[set_id][0], NOW - dt.timedelta(days=SETS[set_id][1]), True)
            for set_id in (8, 9, 10) for i, db in enumerate(cfg.databases)]
    sets = group_sets(rows)
    with pytest.raises(PreflightError, match="SSODB_Log_BTS_0009.bak .set 9. is in the landing folder without a "
                                             "verified manifest"):
        validation_jobs.verify_copies(cfg, sets, sets[-1], sets[0])
