"""A started stand-in's password never appears on a command line (every user of the machine reads those with
ps): it goes through the environment or a file of mode 0600."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from sqlserver_standin.launcher import free_port, start_standin
from tests.sqlserver_standin.conftest import LOGIN, Instance


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def serve(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sqlserver_standin.cli", "serve", "--data-dir", str(tmp_path / "d"),
                             "--port", "0", "--name", "SQLPW01", "--login", LOGIN, "--workload-interval", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env or os.environ)


def test_the_launcher_passes_the_password_outside_the_command_line(tmp_path):
    password = "-" + secrets.token_urlsafe(16)  # one that starts with '-' too
    instance = start_standin(tmp_path, "SQLPW01", free_port(), LOGIN, password)
    try:
        assert password not in cmdline(instance.process.pid)
        client = Instance("SQLPW01", tmp_path, instance.port, password).connect("freetds")
        assert client.value("SELECT @@SERVERNAME") == "SQLPW01"  # and the login takes it
        client.close()
    finally:
        instance.stop()


def test_the_test_instances_pass_it_outside_the_command_line(instance):
    assert instance.password not in cmdline(instance.process.pid)


def test_a_password_on_the_command_line_is_refused_with_the_reason(tmp_path):
    done = serve(tmp_path, "--password=Secret123")
    out, _ = done.communicate(timeout=60)
    assert done.returncode != 0 and "ready" not in out
    assert "--password is refused: a command line is visible to every user of the machine (ps)" in out


def test_a_password_file_must_be_private(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("Secret123\n")
    secret.chmod(0o644)
    done = serve(tmp_path, "--password-file", str(secret))
    out, _ = done.communicate(timeout=60)
    assert done.returncode != 0 and "can be read by other users (mode 0644): chmod 600 it" in out
    secret.chmod(0o600)
    started = serve(tmp_path, "--password-file", str(secret))
    try:
        assert "ready" in started.stdout.readline()
        assert "Secret123" not in cmdline(started.pid)
    finally:
        started.terminate()
        started.wait(timeout=30)


@pytest.mark.parametrize("env", [{}, {"BIZTALK_DR_STANDIN_PASSWORD": ""}], ids=["unset", "empty"])
def test_no_password_at_all_is_refused(tmp_path, env):
    clean = {k: v for k, v in os.environ.items() if k != "BIZTALK_DR_STANDIN_PASSWORD"} | env
    done = serve(tmp_path, env=clean)
    out, _ = done.communicate(timeout=60)
    assert done.returncode != 0 and "no password: give --password-file FILE (mode 0600) or set" in out
