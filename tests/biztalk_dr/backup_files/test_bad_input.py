"""Bad input never gets a traceback or a hang: one clear line per file naming it and the reason, the
other files still read. Cut, corrupted and random variants of real backups are fuzzed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biztalk_dr.backup_files import read_backup_file, read_backup_files
from biztalk_dr.domain.errors import BackupFileError
from tests.conftest import SHARED_BACKUPS

LOG = SHARED_BACKUPS / "sql2008-backups/StopAt/StopAt_1.trn"
FULL = SHARED_BACKUPS / "sql2008-backups/db2/FULL/SQL2008_db2_FULL_20170518_041738.bak"
COMPRESSED = SHARED_BACKUPS / "compressed/SharePoint_Config_one_set.bak"
needs_share = pytest.mark.skipif(not LOG.exists(), reason=f"{SHARED_BACKUPS} not available")


def _error(path) -> str:
    with pytest.raises(BackupFileError) as caught:
        read_backup_file(path)
    assert caught.value.path == str(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return caught.value.reason


def test_empty_text_random_directory_missing_and_unreadable(tmp_path):
    (tmp_path / "empty.bak").write_bytes(b"")
    (tmp_path / "notes.bak").write_text("restore the MessageBox first\n")
    (tmp_path / "random.bak").write_bytes(os.urandom(4096))
    (tmp_path / "folder.bak").mkdir()
    locked = tmp_path / "locked.bak"
    locked.write_bytes(b"TAPE")
    locked.chmod(0)
    assert _error(tmp_path / "empty.bak") == "empty file (0 bytes): not a SQL Server backup"
    assert "starts with 'restore '" in _error(tmp_path / "notes.bak")
    assert "not a SQL Server backup" in _error(tmp_path / "random.bak")
    assert _error(tmp_path / "folder.bak") == "is a folder, not a file"
    assert _error(tmp_path / "gone.bak") == "no such file"
    if os.geteuid() != 0:  # root reads anything
        assert _error(locked) == "cannot be read: permission denied"


@needs_share
@pytest.mark.parametrize("source", [LOG, FULL, COMPRESSED], ids=["log", "full", "compressed"])
def test_a_file_cut_anywhere_is_reported_as_truncated(tmp_path, source):
    data = source.read_bytes()
    for cut in (5, 52, 600, 3700, len(data) // 2, len(data) - 4000, len(data) - 1):
        target = tmp_path / f"cut{cut}.bak"
        target.write_bytes(data[:cut])
        reason = _error(target)
        assert "truncated" in reason or "no end" in reason or "no MTF" in reason, (cut, reason)


@needs_share
def test_a_folder_reports_each_bad_file_and_still_reads_the_good_ones(tmp_path):
    (tmp_path / "a_good.trn").write_bytes(LOG.read_bytes())
    (tmp_path / "b_cut.trn").write_bytes(LOG.read_bytes()[:10000])
    (tmp_path / "c_manifest.json").write_text("{}")  # a manifest beside a shipped file: not a backup, passed over
    (tmp_path / "d_text.bak").write_text("hello")
    results = {Path(r.path).name: r for r in read_backup_files([tmp_path])}
    assert sorted(results) == ["a_good.trn", "b_cut.trn", "d_text.bak"]
    assert results["a_good.trn"].error is None and results["a_good.trn"].sets[0].database_name == "StopAt"
    assert results["b_cut.trn"].error is not None and results["d_text.bak"].error is not None
    (empty := tmp_path / "empty").mkdir()
    (result,) = read_backup_files([empty])
    assert result.error is not None and result.error.reason == "folder holds no files"


_SEEDS = {p.name: p.read_bytes() for p in (LOG, COMPRESSED) if p.exists()}


@needs_share
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(sorted(_SEEDS) or ["-"]), data=st.data())
def test_fuzzed_backups_never_crash_or_hang(tmp_path, seed, data):
    """Real files with bytes flipped, cut or spliced: a result or a BackupFileError, nothing else."""
    original = bytearray(_SEEDS[seed])
    head_only = len(original) > 200_000  # the compressed file: keep each example fast
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        at = data.draw(st.integers(0, (8192 if head_only else len(original)) - 1), label="at")
        original[at] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(original)), label="cut")
    target = tmp_path / "fuzz.bak"
    target.write_bytes(bytes(original[:cut]) if data.draw(st.booleans(), label="cut?") else bytes(original))
    try:
        for header in read_backup_file(target):
            assert header.first_lsn <= 10**25 and header.database_name
    except BackupFileError as exc:
        assert str(exc).startswith(str(target)) and "\n" not in str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=4096), prefix=st.sampled_from([b"", b"TAPE", b"MSSQLBAK"]))
def test_random_bytes_never_crash(tmp_path, blob, prefix):
    target = tmp_path / "random.bak"
    target.write_bytes(prefix + blob)
    with pytest.raises(BackupFileError):
        read_backup_file(target)
