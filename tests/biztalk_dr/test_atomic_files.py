"""Every state file is written whole or not at all: temporary file, fsync, rename, fsync of the folder."""

from __future__ import annotations

import ast
import json
import os
import stat
from types import SimpleNamespace

import pytest

from biztalk_dr.ops import atomic_files, failover_jobs
from biztalk_dr.ops.atomic_files import write_json_atomically, write_text_atomically
from biztalk_dr.ops.failover_plan import FailoverPlan
from tests.biztalk_dr.test_site_roles import cfg  # noqa: F401 - the fixture
from tests.conftest import ROOT, product_files


@pytest.fixture
def recorded(monkeypatch):
    """The file-system calls the writer makes, in order (the real ones still run)."""
    calls = []
    real_fsync, real_replace, real_open = os.fsync, os.replace, os.open

    def fsync(fd):
        what = "fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file"
        calls.append((what, os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        calls.append(("rename", os.stat(src).st_ino, os.path.basename(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    monkeypatch.setattr(atomic_files.os, "replace", replace)
    monkeypatch.setattr(atomic_files.os, "open", real_open)
    return calls


def test_the_temporary_file_is_fsynced_then_renamed_then_the_folder_fsynced(tmp_path, recorded):
    path = write_json_atomically(tmp_path / "state.json", {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2], "b": 1}
    [(first, file_inode), (second, renamed_inode, name), (third, folder_inode)] = recorded
    assert (first, second, third) == ("fsync file", "rename", "fsync folder")
    assert file_inode == renamed_inode == path.stat().st_ino and name == "state.json"
    assert folder_inode == tmp_path.stat().st_ino
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


def test_a_crash_before_the_rename_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "final_log_set.json"
    write_json_atomically(path, {"set_id": 7, "verified": False}, indent=None)

    def power_loss(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic_files.os, "fsync", power_loss)
    with pytest.raises(OSError, match="Input/output error"):
        write_json_atomically(path, {"set_id": 7, "verified": True}, indent=None)
    assert json.loads(path.read_text(encoding="utf-8")) == {"set_id": 7, "verified": False}
    assert [p.name for p in tmp_path.iterdir()] == ["final_log_set.json"]


def test_data_that_is_not_json_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_json_atomically(tmp_path / "x.json", {"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_state_files_are_private_unless_asked_and_mode_and_time_are_kept(tmp_path):
    private = write_text_atomically(tmp_path / "roles.json", "{}")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    shared = write_text_atomically(tmp_path / "status.json", "{}", mode=atomic_files.READABLE, mtime_ns=10**18)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644 and shared.stat().st_mtime_ns == 10**18


def test_the_final_log_set_record_is_written_atomically_before_and_after_its_verification(cfg, monkeypatch):  # noqa: F811
    """final_log_set.json is what makes the final log set idempotent: a re-run verifies the recorded set instead
    of taking another. Both writes go through the atomic writer."""
    written = []
    real = failover_jobs.write_json_atomically

    def spy(path, data, **kwargs):
        written.append((path.name, dict(data)))
        return real(path, data, **kwargs)

    class Mgmt:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(failover_jobs, "write_json_atomically", spy)
    monkeypatch.setattr(failover_jobs.backup_jobs, "management_server", lambda c: Mgmt())
    monkeypatch.setattr(failover_jobs.backup_jobs, "take_log_backup_set",
                        lambda c, m: SimpleNamespace(set_id=12, mark_name="BTS_2026_12_02_06_00_00_000"))
    monkeypatch.setattr(failover_jobs.backup_jobs, "check_new_set", lambda c, s: SimpleNamespace(databases=[]))
    plan = FailoverPlan(mode="planned", dry_run=False, mark=None, set_id=None, set_time=None, data_loss_minutes=None,
                        source="reachable", source_reachable=True, already_online=(), left_out=(), standby=(),
                        failed_over=None, databases=(), notes=(), summary="").to_json()
    done = failover_jobs.take_final_log_set(cfg, plan, "run-1")
    assert done["set_id"] == 12 and done["verified"] is True
    assert written == [("final_log_set.json", {"set_id": 12, "mark": "BTS_2026_12_02_06_00_00_000", "verified": False}),
                       ("final_log_set.json", {"set_id": 12, "mark": "BTS_2026_12_02_06_00_00_000", "verified": True})]
    again = failover_jobs.take_final_log_set(cfg, plan, "run-1")
    assert again["said"].startswith("already taken and verified by this run: set 12")


def test_no_product_module_writes_a_file_by_rename_or_json_but_through_the_writer():
    """The copies of the writer are gone: no os.replace / mkstemp / json.dump to a file / write_text(json.dumps(...))
    outside atomic_files.py (shipping_copy.py renames its verified binary copy into place, fsyncing the folder with
    atomic_files.fsync_folder)."""
    found = []
    for path in product_files(but=("atomic_files.py", "shipping_copy.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = f"{getattr(node.func.value, 'id', '')}.{node.func.attr}"
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in ("os.replace", "os.rename", "tempfile.mkstemp", "tempfile.NamedTemporaryFile"):
                found.append(f"{where}: {name}")
            if name == "json.dump" and not (len(node.args) > 1 and "stdout" in ast.unparse(node.args[1])):
                found.append(f"{where}: json.dump to a file")
            if node.func.attr == "write_text" and node.args and "json.dumps" in ast.unparse(node.args[0]):
                found.append(f"{where}: write_text(json.dumps(...))")
    assert not found, found
