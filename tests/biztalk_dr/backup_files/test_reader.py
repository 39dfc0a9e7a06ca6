"""The backup-file reader against the 104 backup files written by real SQL Server 2008 R2, 2014 and 2016
instances (``../shared/sqlserver-backups``, see its README): what each file says must agree with what
is known of it independently — its Ola Hallengren name, its chain, its stripes."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from pathlib import Path

import pytest

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file, read_backup_files
from tests.conftest import SHARED_BACKUPS

pytestmark = pytest.mark.skipif(not SHARED_BACKUPS.is_dir(), reason=f"{SHARED_BACKUPS} not available")

OLA_NAME = re.compile(r"^(?P<server>[^_]+)_(?P<db>.+)_(?P<type>FULL|DIFF|LOG)_(?P<date>\d{8})_(?P<time>\d{6})$")


@pytest.fixture(scope="module")
def sets_by_path() -> dict[Path, list[BackupSetHeader]]:
    """Every backup file of the share, read once for the module."""
    found: dict[Path, list[BackupSetHeader]] = {}
    for result in read_backup_files([SHARED_BACKUPS]):
        assert result.error is None, str(result.error)
        found[Path(result.path)] = result.sets
    return found


def _relative(path: Path) -> str:
    return path.relative_to(SHARED_BACKUPS).as_posix()


def test_every_file_of_the_share_is_read(sets_by_path):
    files = sorted(p for p in SHARED_BACKUPS.rglob("*") if p.is_file() and p.suffix != ".md")
    assert len(files) == 104
    assert sorted(sets_by_path) == files  # the README is passed over, not reported as a bad backup
    assert sum(len(s) for s in sets_by_path.values()) == 105  # the two-set compressed file


def test_ola_hallengren_names_agree_with_database_type_and_start_time(sets_by_path):
    checked = 0
    for path, sets in sets_by_path.items():
        name = OLA_NAME.match(path.stem)
        if not name or "sql2008-backups" not in path.parts:
            continue
        (header,) = sets
        assert header.database_name == name["db"], path
        assert header.backup_type == name["type"], path
        assert header.backup_start_date == dt.datetime.strptime(name["date"] + name["time"], "%Y%m%d%H%M%S"), path
        assert header.server_name == name["server"] == "SQL2008"
        assert header.backup_start_date <= header.backup_finish_date
        checked += 1
    assert checked == 32


def _scenario(path: Path) -> str:
    """The folder a chain lives in: the database folder for Ola layouts, else the file's folder."""
    parts = path.relative_to(SHARED_BACKUPS).parts
    if parts[-2] in ("FULL", "DIFF", "LOG", "Full", "Diff", "Log"):
        return "/".join(parts[:-2])
    if parts[0] == "sql2008-backups" and parts[1] == "RestoreTimeStripe":
        return "sql2008-backups/RestoreTimeStripe"
    return "/".join(parts[:-1])


def _by_scenario(sets_by_path, kind):
    groups: dict[tuple[str, str, int], list[BackupSetHeader]] = defaultdict(list)
    for path, sets in sets_by_path.items():
        for s in sets:
            if s.backup_type == kind:
                groups[(_scenario(path), s.database_name, s.family_sequence)].append(s)
    return groups


def test_every_log_chain_is_contiguous(sets_by_path):
    """Each log backup starts exactly where the one before it ended (the README's independent fact)."""
    chains = _by_scenario(sets_by_path, "LOG")
    assert len(chains) == 13  # 6 Ola databases, OlaMsFilter x2, RestoreTimeClean 2008 and 2016, StopAt, 2 stripes
    for key, logs in chains.items():
        logs.sort(key=lambda h: (h.first_lsn, h.last_lsn))
        for before, after in zip(logs, logs[1:], strict=False):
            assert after.first_lsn == before.last_lsn, (key, before.path, after.path)
        for log in logs:
            assert log.first_lsn <= log.last_lsn and log.checkpoint_lsn <= log.last_lsn


def test_every_differential_is_based_on_the_full_in_its_folder(sets_by_path):
    fulls = _by_scenario(sets_by_path, "FULL")
    diffs = _by_scenario(sets_by_path, "DIFF")
    checked = 0
    for key, differentials in diffs.items():
        if key not in fulls:
            assert key[0] == "sql2008-backups/db1"  # the only folder shipped without its full
            continue
        checkpoints = {f.checkpoint_lsn for f in fulls[key]}
        for diff in differentials:
            assert diff.database_backup_lsn in checkpoints, diff.path
            checked += 1
    assert checked == 21


def test_the_two_stripes_of_restore_time_stripe_are_one_media_set(sets_by_path):
    stripe1, stripe2 = (SHARED_BACKUPS / "sql2008-backups/RestoreTimeStripe" / s for s in ("Stripe1", "Stripe2"))
    (one,) = sets_by_path[stripe1 / "RestoreTimeStripe.bak"]
    (two,) = sets_by_path[stripe2 / "RestoreTimeStripe1.bak"]
    assert one.media_set_id == two.media_set_id and one.backup_set_id == two.backup_set_id
    assert (one.family_count, one.family_sequence, two.family_count, two.family_sequence) == (2, 1, 2, 2)
    assert (one.first_lsn, one.last_lsn) == (two.first_lsn, two.last_lsn)
    (other,) = sets_by_path[stripe1 / "RestoreTimeStripe2.bak"]
    assert other.media_set_id != one.media_set_id  # another backup, another media set
    singles = [s for p, sets in sets_by_path.items() if "RestoreTimeStripe" not in p.parts for s in sets]
    assert all((s.family_count, s.family_sequence) == (1, 1) for s in singles)


def test_compressed_files_are_read_with_the_right_number_of_sets(sets_by_path):
    one = sets_by_path[SHARED_BACKUPS / "compressed/SharePoint_Config_one_set.bak"]
    two = sets_by_path[SHARED_BACKUPS / "compressed/SharePoint_Config_two_sets.bak"]
    assert [s.position for s in one] == [1] and [s.position for s in two] == [1, 2]
    assert all(s.compressed and s.database_name == "SharePoint_Config" and s.backup_type == "FULL"
               and s.software_version.startswith("12.0.") for s in one + two)
    assert two[0].last_lsn < two[1].first_lsn and two[0].backup_start_date < two[1].backup_start_date
    assert not any(s.compressed for p, sets in sets_by_path.items() if "compressed" not in p.parts for s in sets)


def test_versions_passwords_and_file_lists(sets_by_path):
    versions = {s.software_version.rsplit(".", 1)[0] for sets in sets_by_path.values() for s in sets}
    assert versions == {"10.50", "12.0", "13.0"}
    (clean2016,) = sets_by_path[SHARED_BACKUPS / "restoretimeclean2016/RestoreTimeClean.bak"]
    assert clean2016.software_version.startswith("13.0.") and clean2016.server_name == "WIN-JNMR8KM0U3B\\SQL2016"
    protected = [_relative(p) for p, sets in sets_by_path.items() if any(s.password_protected for s in sets)]
    assert protected == ["backuppassword/passwd.bak"]
    (db1,) = sets_by_path[SHARED_BACKUPS / "sql2008-backups/db1/LOG/SQL2008_db1_LOG_20170518_041831.trn"]
    assert [(f.logical_name, f.physical_name, f.type) for f in db1.files] == [
        ("db1", "C:\\Move\\db1.mdf", "D"), ("db1_1", "C:\\Move\\db1_1.ndf", "D"),
        ("db1_log", "C:\\Tests\\db1_log.ldf", "L")]


def test_times_come_from_the_end_of_the_set(sets_by_path):
    """The finish time is only written at the set's end (MSLS block); a full backup of a few MB takes
    seconds, never hours, and never finishes before it starts."""
    for sets in sets_by_path.values():
        for s in sets:
            assert dt.timedelta(0) <= s.backup_finish_date - s.backup_start_date < dt.timedelta(minutes=5), s.path
            assert s.database_creation_date <= s.backup_start_date


def test_json_objects_have_the_issue_field_names(sets_by_path):
    (header,) = read_backup_file(SHARED_BACKUPS / "sql2008-backups/StopAt/StopAt_1.trn")
    data = header.as_json()
    assert {"path", "position", "database_name", "server_name", "backup_type", "first_lsn", "last_lsn",
            "checkpoint_lsn", "database_backup_lsn", "backup_start_date", "backup_finish_date",
            "database_creation_date", "compressed", "software_version", "media_set_id", "family_count",
            "family_sequence", "password_protected", "files"} <= set(data)
    assert data["first_lsn"] == 19000000008100190 and data["last_lsn"] == 19000000018300001
    assert data["backup_start_date"] == "2020-05-12T13:29:34"


# ----------------------------------------------------------------- identity: where each field is, and the proof
def _all_sets(sets_by_path):
    return [s for sets in sets_by_path.values() for s in sets]


def test_every_set_carries_its_identity_and_copy_only_is_reported_as_not_known(sets_by_path):
    """No copy-only sample exists, so where IsCopyOnly is kept is not known: the reader says so (None) rather
    than False (MTF_FORMAT.md, "Not known")."""
    for s in _all_sets(sets_by_path):
        assert s.family_guid and s.database_guid and s.recovery_fork_id and s.backup_set_id, s.path
        assert s.copy_only is None


def test_every_backup_of_one_database_shares_one_family_guid_and_different_databases_differ(sets_by_path):
    """FamilyGUID ("ID of the original database when created"): one per database in every folder, different
    between databases — also between the two databases named OlaMsFilterTest in OlaMsFilter/Simple and /complex."""
    by_folder: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path, sets in sets_by_path.items():
        for s in sets:
            by_folder[(_scenario(path).split("/")[0] if "OlaMsFilter" not in path.parts else _scenario(path),
                       s.database_name)].add(s.family_guid)
    assert all(len(guids) == 1 for guids in by_folder.values()), by_folder
    simple = by_folder[("OlaMsFilter/Simple", "OlaMsFilterTest")]
    complex_ = by_folder[("OlaMsFilter/complex", "OlaMsFilterTest")]
    assert simple != complex_
    # every database of the share is its own family, except the restored copies checked below
    families = defaultdict(set)
    for s in _all_sets(sets_by_path):
        families[s.family_guid].add(s.database_name)
    shared = {g: names for g, names in families.items() if len(names) > 1}
    assert list(shared.values()) == [{"RestoreTimeStripe", "stripetest"}]


def test_a_differentials_base_guid_and_lsn_are_its_fulls_backup_set_guid_and_first_lsn(sets_by_path):
    """DifferentialBaseGUID / DifferentialBaseLSN: in every real pair they are the base full's BackupSetGUID and
    FirstLSN (the differential's DatabaseBackupLSN, found independently, names the same full); other backup types
    have none."""
    everything = _all_sets(sets_by_path)
    by_guid = {s.backup_set_id: s for s in everything}
    checked = 0
    for diff in (s for s in everything if s.backup_type == "DIFF"):
        base = by_guid.get(diff.differential_base_guid)
        if base is None:
            assert "db1" in Path(diff.path).parts  # shipped without its full
            continue
        assert base.backup_type == "FULL" and base.family_guid == diff.family_guid
        assert diff.differential_base_lsn == base.first_lsn and diff.database_backup_lsn == base.checkpoint_lsn
        checked += 1
    assert checked == 21
    assert all(s.differential_base_guid is None and s.differential_base_lsn is None
               for s in everything if s.backup_type != "DIFF")


def test_a_database_never_restored_is_on_its_first_recovery_fork(sets_by_path):
    """RecoveryForkID of a database that was never recovered from a restore is its FamilyGUID, with no fork point."""
    restored = {"stripetest"}
    for s in _all_sets(sets_by_path):
        if "restoretimeclean2016" in Path(s.path).parts or s.database_name in restored:
            continue
        assert s.recovery_fork_id == s.family_guid and s.branch_parent_id is None and s.branch_lsn is None, s.path
        assert s.first_recovery_fork_id == s.recovery_fork_id and s.fork_point_lsn is None


def test_restored_copies_keep_the_family_get_a_new_binding_and_a_fork_branched_at_a_real_logs_end(sets_by_path):
    """The 2016 RestoreTimeClean is the 2008 database restored there (same FamilyGUID, new BindingID); stripetest
    (passwd.bak) is RestoreTimeStripe restored under another name. Each is on a new recovery fork whose parent is
    the original's fork and whose fork point is exactly the LastLSN of a log backup of the original in the share:
    where the restore sequence ended and recovery began."""
    def only(folder: str, name: str, db: str):
        (s,) = sets_by_path[SHARED_BACKUPS / folder / name]
        assert s.database_name == db
        return s

    pairs = [(only("RestoreTimeClean", "RestoreTimeClean_1.trn", "RestoreTimeClean"),
              [s for p, sets in sets_by_path.items() if "restoretimeclean2016" in p.parts for s in sets]),
             (only("sql2008-backups/RestoreTimeStripe/Stripe1", "RestoreTimeStripe_23.trn", "RestoreTimeStripe"),
              sets_by_path[SHARED_BACKUPS / "backuppassword/passwd.bak"])]
    for original_log, copies in pairs:
        assert len(copies) >= 1
        for copy in copies:
            assert copy.family_guid == original_log.family_guid
            assert copy.database_guid != original_log.database_guid
            assert copy.recovery_fork_id != original_log.recovery_fork_id
            assert copy.branch_parent_id == original_log.recovery_fork_id
            assert copy.branch_lsn == original_log.last_lsn
            assert copy.first_lsn > copy.branch_lsn  # taken after the restore: none spans the fork point
            assert copy.first_recovery_fork_id == copy.recovery_fork_id and copy.fork_point_lsn is None
