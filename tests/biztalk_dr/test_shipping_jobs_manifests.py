"""The sets the landing folder's manifests describe when the source cannot be read (a disaster failover's
assessment, ``biztalk-dr status``): a set is one primary's BizTalk set, never a merge of two primaries' sets that
happen to share a set id (each primary's adm_BackupHistory numbers its own sets, so after a failover the ids of the
old and the new primary overlap)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from biztalk_dr.backup_files import BackupSetHeader
from biztalk_dr.domain.errors import BackupSetProblem
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.manifest import Manifest, write_manifest
from biztalk_dr.ops.shipping_jobs import sets_from_manifests
from sqlserver_standin.launcher import render_group_config
from tests.conftest import ROOT

T0 = dt.datetime(2026, 11, 25, 1, 0)
OLD, NEW = "SQLPRD01", "SQLDR01"  # the stand-in group's primary and standby servers


@pytest.fixture
def cfg(tmp_path):
    return load_config(render_group_config(ROOT / "include" / "config" / "standin_group.yaml", tmp_path,
                                           tmp_path / "group.yaml"))


def ship(cfg, set_id: int, database: str, server: str | None, *, minutes: int, kind: str = "lg",
         guid: str | None = None, fork: str | None = None) -> str:
    """A shipped and verified file with its manifest, as log shipping leaves them; ``server`` None: a manifest
    written before manifests kept the header, beside a file that cannot be read (its identity cannot be told)."""
    landing = Path(cfg.sites.standby.landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    name = f"{(server or 'unknown')}_{database}_{set_id}_{minutes}.{'bak' if kind == 'db' else 'trn'}"
    (landing / name).write_bytes(b"x" * 10)
    when = T0 + dt.timedelta(minutes=minutes)
    header = None if server is None else BackupSetHeader(
        path=str(landing / name), position=1, database_name=database, server_name=server,
        backup_type="DATABASE" if kind == "db" else "LOG", first_lsn=minutes * 100, last_lsn=minutes * 100 + 50,
        checkpoint_lsn=minutes * 100, database_backup_lsn=100, backup_start_date=when, backup_finish_date=when,
        database_creation_date=T0, compressed=False, software_version="16.0", media_set_id=f"m-{name}",
        family_count=1, family_sequence=1, backup_set_id=guid or f"guid-{name}", family_guid=f"family-{database}",
        recovery_fork_id=fork or f"fork-{server}").as_json()
    write_manifest(landing, Manifest(
        file_name=name, size=10, sha256=None, set_id=set_id, mark_name=f"BTS_{server}_{set_id}",
        database_name=database, backup_type=kind, first_lsn=None, last_lsn=None, source_path=f"/backups/{name}",
        shipped_at=when.isoformat(), verified_at=when.isoformat(), backup_time=when.isoformat(), blake3="0" * 64,
        header=header))
    return name


def ship_set(cfg, set_id: int, server: str | None, *, minutes: int, kind: str = "lg") -> list[str]:
    return [ship(cfg, set_id, d.name, server, minutes=minutes, kind=kind) for d in cfg.databases]


def described(sets):
    return [(s.set_id, s.mark_name, s.complete, sorted(r.file_name for r in s.rows)) for s in sets]


def test_two_primaries_sets_with_the_same_id_are_never_merged_into_one_set(cfg):
    """After a failover: the old primary's sets 1-3 (set 3 shipped for one database only: the disaster came in the
    middle of it) and the new primary's sets 3-4 (its history goes on from the restored management database). The
    configured primary's sets are the ones a failover from the manifests plans with; set 3 is SQLPRD01's partial set,
    never a 'complete' set made of one SQLPRD01 file and the SQLDR01 files."""
    old = [ship_set(cfg, 1, OLD, minutes=0, kind="db"), ship_set(cfg, 2, OLD, minutes=15)]
    old_3 = ship(cfg, 3, cfg.databases[0].name, OLD, minutes=30)
    ship_set(cfg, 3, NEW, minutes=600)
    ship_set(cfg, 4, NEW, minutes=615)
    sets = sets_from_manifests(cfg)
    assert described(sets) == [(1, f"BTS_{OLD}_1", True, sorted(old[0])), (2, f"BTS_{OLD}_2", True, sorted(old[1])),
                               (3, f"BTS_{OLD}_3", False, [old_3])]
    assert all(r.server_name == OLD for s in sets for r in s.rows)


def test_after_the_roles_swap_the_new_primarys_sets_are_the_ones_described(cfg):
    from biztalk_dr.ops.site_roles import SiteRoles, acting_config, write_roles

    cfg = cfg.model_copy(update={"sites": cfg.sites.model_copy(update={"standby": cfg.sites.standby.model_copy(
        update={"backup_path": "/backups-dr/", "backup_dir": cfg.sites.standby.landing_dir})})})
    ship_set(cfg, 1, OLD, minutes=0, kind="db")
    ship(cfg, 3, cfg.databases[0].name, OLD, minutes=30)
    new_3, new_4 = ship_set(cfg, 3, NEW, minutes=600, kind="db"), ship_set(cfg, 4, NEW, minutes=615)
    write_roles(cfg.sites.standby.landing_dir, SiteRoles(primary_site="standby"))
    sets = sets_from_manifests(acting_config(cfg))
    assert described(sets) == [(3, f"BTS_{NEW}_3", True, sorted(new_3)), (4, f"BTS_{NEW}_4", True, sorted(new_4))]


def test_one_primary_only_reads_as_before(cfg):
    files = ship_set(cfg, 5, OLD, minutes=0, kind="db")
    [one] = sets_from_manifests(cfg)
    assert (one.set_id, one.kind, one.complete, sorted(r.file_name for r in one.rows)) == (5, "full", True, sorted(files))


def test_two_files_of_one_database_with_different_backup_set_guids_in_one_set_are_refused_naming_both(cfg):
    """One server, one set id, one database twice (BizTalk's history restarted on that server, e.g. the management
    database was re-created): which file belongs to the set cannot be told, so nothing is guessed."""
    db = cfg.databases[0].name
    first = ship(cfg, 7, db, OLD, minutes=0, guid="guid-a")
    second = ship(cfg, 7, db, OLD, minutes=900, guid="guid-b")
    with pytest.raises(BackupSetProblem) as err:
        sets_from_manifests(cfg)
    text = str(err.value)
    assert first in text and second in text and "guid-a" in text and "guid-b" in text and db in text
    assert err.value.advice


def test_two_files_of_one_database_on_different_recovery_branches_in_one_set_are_refused(cfg):
    db = cfg.databases[0].name
    first = ship(cfg, 7, db, OLD, minutes=0, fork="fork-before-failback")
    second = ship(cfg, 7, db, OLD, minutes=900, fork="fork-after-failback")
    with pytest.raises(BackupSetProblem) as err:
        sets_from_manifests(cfg)
    text = str(err.value)
    assert first in text and second in text and "fork-before-failback" in text and "fork-after-failback" in text


def test_a_file_whose_primary_cannot_be_told_where_two_primaries_share_its_set_id_is_refused_naming_the_files(cfg):
    """An old manifest (no header) beside a file that cannot be read, at a set id both primaries used: it could be
    either primary's, so the failover is not planned on a guess."""
    db = cfg.databases[-1].name
    ship(cfg, 3, cfg.databases[0].name, OLD, minutes=30)
    new = ship_set(cfg, 3, NEW, minutes=600)
    unknown = ship(cfg, 3, db, None, minutes=31)
    with pytest.raises(BackupSetProblem) as err:
        sets_from_manifests(cfg)
    text = str(err.value)
    assert unknown in text and next(f for f in new if db in f) in text


def test_a_file_whose_primary_cannot_be_told_joins_the_only_primary_of_its_set_id(cfg):
    """(Main merged such a file in too; this keeps the fix from refusing what can be told.)"""
    known = [ship(cfg, 2, d.name, OLD, minutes=15) for d in cfg.databases[:-1]]
    unknown = ship(cfg, 2, cfg.databases[-1].name, None, minutes=16)
    [one] = sets_from_manifests(cfg)
    assert sorted(r.file_name for r in one.rows) == sorted([*known, unknown]) and one.complete


def test_a_set_id_one_server_used_twice_on_two_recovery_branches_is_never_one_set(cfg):
    """A failback to the same server whose history went on from lower set ids: the old era's set 3 (shipped for one
    database only, fork of the old era) and the new era's sets 1-3 (every database restored and recovered: a new
    recovery branch each), the new era's set 3 not shipped yet for that database. Set ids alone would make set 3 a
    complete set of two eras' files; the files' recovery branches show the old file is not of that set."""
    db = cfg.databases[0].name
    old = ship(cfg, 3, db, OLD, minutes=30, fork="fork-old")
    new = {(set_id, d.name): ship(cfg, set_id, d.name, OLD, minutes=600 + set_id, fork=f"fork-new-{d.name}")
           for set_id in (1, 2) for d in cfg.databases}
    for d in cfg.databases[1:]:
        ship(cfg, 3, d.name, OLD, minutes=603, fork=f"fork-new-{d.name}")
    with pytest.raises(BackupSetProblem) as err:
        sets_from_manifests(cfg)
    text = str(err.value)
    assert old in text and new[(2, db)] in text and "fork-old" in text and f"fork-new-{db}" in text


def test_one_servers_two_eras_with_their_own_set_ids_are_each_their_sets(cfg):
    """The same server before a failover (sets 1-2, one recovery branch) and after the failback (sets 5-6, its
    databases on new branches): no set id is shared, so every set is one era's."""
    for set_id, fork in ((1, "x"), (2, "x"), (5, "z"), (6, "z")):
        for d in cfg.databases:
            ship(cfg, set_id, d.name, OLD, minutes=set_id * 100, fork=f"{fork}-{d.name}")
    sets = sets_from_manifests(cfg)
    assert [(s.set_id, s.complete) for s in sets] == [(1, True), (2, True), (5, True), (6, True)]


def test_status_with_the_source_gone_says_critical_naming_the_files_when_the_sets_cannot_be_told(cfg, monkeypatch):
    from biztalk_dr.domain.errors import SqlConnectionError
    from biztalk_dr.ops import shipping_jobs

    def gone(*_args, **_kwargs):
        raise SqlConnectionError(0, "cannot connect", conn_id="biztalk_primary")

    monkeypatch.setattr(shipping_jobs, "primary_sets_and_clock", gone)
    monkeypatch.setattr(shipping_jobs, "observe_standby", gone)
    db = cfg.databases[0].name
    first = ship(cfg, 7, db, OLD, minutes=0, guid="guid-a")
    second = ship(cfg, 7, db, OLD, minutes=900, guid="guid-b")
    report = shipping_jobs.status(cfg).as_json()
    assert report["health"] == "critical"
    assert first in report["reasons"][0]["reason"] and second in report["reasons"][0]["reason"]
