"""Paths from servers never lead a worker outside its configured folders."""

from __future__ import annotations

import os

import pytest

from biztalk_dr.domain.errors import PathOutsideRootError
from biztalk_dr.domain.paths import inside_root, plain_file_name, sql_join, sql_path_for, worker_path_for


def test_unc_path_maps_to_the_worker_folder(tmp_path):
    got = worker_path_for("\\\\fs01\\BizTalkBackups\\SQL1_SSODB_Log_BTS_1.bak",
                          sql_folder="\\\\FS01\\BizTalkBackups\\", worker_folder=tmp_path)
    assert got == tmp_path.resolve() / "SQL1_SSODB_Log_BTS_1.bak"


def test_linux_path_maps_and_is_case_sensitive(tmp_path):
    assert worker_path_for("/var/opt/mssql/backup/a.bak", sql_folder="/var/opt/mssql/backup/",
                           worker_folder=tmp_path) == tmp_path.resolve() / "a.bak"
    with pytest.raises(PathOutsideRootError):
        worker_path_for("/VAR/opt/mssql/backup/a.bak", sql_folder="/var/opt/mssql/backup", worker_folder=tmp_path)


@pytest.mark.parametrize("sql_path", [
    "D:\\Backups\\..\\Windows\\win.ini",
    "D:\\Other\\a.bak",
    "E:\\Backups\\a.bak",
    "D:\\Backups\\",
])
def test_paths_outside_the_sql_folder_are_refused(tmp_path, sql_path):
    with pytest.raises(PathOutsideRootError):
        worker_path_for(sql_path, sql_folder="D:\\Backups\\", worker_folder=tmp_path)


def test_symlink_escaping_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/etc", root / "etc")
    with pytest.raises(PathOutsideRootError, match="outside its configured root"):
        inside_root(root / "etc" / "passwd", root)


@pytest.mark.parametrize("name", ["", "..", "a/b", "a\\b", "C:x", "a\x00"])
def test_plain_file_name_refuses_anything_with_a_folder(name):
    with pytest.raises(PathOutsideRootError):
        plain_file_name(name)


def test_sql_join_uses_the_separator_of_the_path():
    assert sql_join("\\\\fs\\b\\", "x.bak") == "\\\\fs\\b\\x.bak"
    assert sql_join("D:\\b", "x.bak") == "D:\\b\\x.bak"
    assert sql_join("/var/b/", "x.bak") == "/var/b/x.bak"


def test_a_worker_file_maps_back_to_the_share_a_windows_server_sees(tmp_path):
    record = tmp_path / ".biztalk-dr" / "failover" / "run_1" / "SampleUpdateInfo.xml"
    record.parent.mkdir(parents=True)
    assert sql_path_for(record, worker_folder=tmp_path, sql_folder="\\\\sqldr01\\DRLanding\\") == \
        "\\\\sqldr01\\DRLanding\\.biztalk-dr\\failover\\run_1\\SampleUpdateInfo.xml"
    assert sql_path_for(record, worker_folder=tmp_path, sql_folder="/var/opt/mssql/landing/") == \
        "/var/opt/mssql/landing/.biztalk-dr/failover/run_1/SampleUpdateInfo.xml"
    with pytest.raises(PathOutsideRootError):
        sql_path_for(tmp_path.parent / "elsewhere.xml", worker_folder=tmp_path, sql_folder="E:\\Landing\\")
