"""The copier: whole and proven at the destination, or absent; re-runs cheap; nothing outside the root."""

from __future__ import annotations

import hashlib
import os

import blake3
import pytest

from biztalk_dr.domain.errors import CopyVerificationError, PathOutsideRootError
from biztalk_dr.ops import shipping_copy
from biztalk_dr.ops.shipping_copy import ship_file


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "primary" / "SQL1_SSODB_Log_BTS_2026_11_25_03_15_00_123.bak"
    src.parent.mkdir()
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return src


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def test_copy_is_identical_and_hash_is_of_the_content(source, landing):
    result = ship_file(source, landing, chunk_size=1024 * 1024)
    assert result.copied
    assert result.destination == (landing / source.name).resolve()
    assert result.destination.read_bytes() == source.read_bytes()
    assert result.algorithm == "blake3" and result.digest == blake3.blake3(source.read_bytes()).hexdigest()
    assert result.size == source.stat().st_size
    assert [p.name for p in landing.iterdir()] == [source.name]  # no temporary file left behind


def test_rerun_with_known_hash_does_not_copy_again(source, landing):
    first = ship_file(source, landing)
    mtime = first.destination.stat().st_mtime_ns
    again = ship_file(source, landing, expected_digest=first.digest)
    assert not again.copied and again.digest == first.digest
    assert first.destination.stat().st_mtime_ns == mtime


def test_a_damaged_copy_in_place_is_replaced(source, landing):
    first = ship_file(source, landing)
    with open(first.destination, "r+b") as fh:
        fh.write(b"\x00" * 16)
    again = ship_file(source, landing, expected_digest=first.digest)
    assert again.copied and first.destination.read_bytes() == source.read_bytes()


def test_sha256_as_in_manifests_written_before_still_verifies(source, landing):
    first = ship_file(source, landing, algorithm="sha256")
    assert first.digest == hashlib.sha256(source.read_bytes()).hexdigest()
    again = ship_file(source, landing, expected_digest=first.digest, algorithm="sha256")
    assert not again.copied and again.digest == first.digest


@pytest.mark.parametrize("call", ["copy_file_range", "sendfile"])
def test_corruption_while_writing_is_detected_and_nothing_is_left(source, landing, monkeypatch, call):
    real = getattr(os, call)
    real_pwrite = os.pwrite

    def corrupting(*args):  # the bytes at the destination differ from what the source holds
        n = real(*args)
        out, at = args[1 if call == "copy_file_range" else 0], args[3 if call == "copy_file_range" else 2]
        real_pwrite(out, b"\xff", at)
        return n

    if call == "sendfile":  # copy_file_range unavailable (another file system): the sendfile path
        monkeypatch.setattr(shipping_copy.os, "copy_file_range",
                            lambda *a: (_ for _ in ()).throw(OSError(18, "Invalid cross-device link")))
    monkeypatch.setattr(shipping_copy.os, call, corrupting)
    with pytest.raises(CopyVerificationError, match="does not match what was read"):
        ship_file(source, landing)
    assert list(landing.iterdir()) == []


def test_a_file_still_growing_is_not_shipped(source, landing, monkeypatch):
    real_stat = os.stat

    def growing(path, *a, **kw):
        st = real_stat(path, *a, **kw)
        if str(path) == str(source):
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                                   st.st_size + 512, st.st_atime, st.st_mtime, st.st_ctime))
        return st

    monkeypatch.setattr(shipping_copy.os, "stat", growing)
    with pytest.raises(CopyVerificationError, match="changed size while it was copied"):
        ship_file(source, landing)
    assert list(landing.iterdir()) == []


def test_symlinked_landing_entry_cannot_redirect_the_copy(source, landing, tmp_path):
    outside = tmp_path / "outside.bak"
    os.symlink(outside, landing / source.name)
    with pytest.raises(PathOutsideRootError):
        ship_file(source, landing)
    assert not outside.exists()


@pytest.mark.parametrize("unavailable", [("copy_file_range",), ("copy_file_range", "sendfile")])
def test_without_the_kernel_copy_calls_the_copy_is_the_same(source, landing, monkeypatch, unavailable):
    for call in unavailable:  # another file system, an old kernel: sendfile, then read/write
        monkeypatch.setattr(shipping_copy.os, call, lambda *a: (_ for _ in ()).throw(OSError(22, "Invalid argument")))
    result = ship_file(source, landing, chunk_size=1024 * 1024)
    assert result.destination.read_bytes() == source.read_bytes()
    assert result.digest == blake3.blake3(source.read_bytes()).hexdigest()


def test_an_empty_file_is_copied_and_hashed(landing, tmp_path):
    empty = tmp_path / "empty.bak"
    empty.write_bytes(b"")
    result = ship_file(empty, landing)
    assert result.size == 0 and result.digest == blake3.blake3(b"").hexdigest()
