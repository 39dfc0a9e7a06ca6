"""The Windows side of the runbook: the exact commands per server, WinRM where configured, a person elsewhere."""

from __future__ import annotations

import pytest

from biztalk_dr.domain.windows_steps import (
    NOT_CONFIGURED,
    STEPS,
    WindowsStepError,
    run_windows_step,
    servers_of,
    windows_step,
)
from biztalk_dr.ops.config_files import load_config
from tests.biztalk_dr.test_config import EXAMPLE

XML = "\\\\sqldr01\\DRLanding\\.biztalk-dr\\failover\\run_1\\SampleUpdateInfo.xml"


@pytest.fixture
def cfg():
    return load_config(EXAMPLE)  # BTSPRD01/02 have WinRM connections, BTSDR01/02 have none


class Recorder:
    def __init__(self, code=0, out=b"ENTSSO running\r\n", err=b""):
        self.code, self.out, self.err, self.ran = code, out, err, []

    def run(self, command, ps_path=None):
        self.ran.append((command, ps_path))
        return self.code, [self.out], [self.err]


def test_each_step_is_mapped_over_the_servers_of_its_site(cfg):
    assert servers_of(cfg, "primary") == ["BTSPRD01", "BTSPRD02"]
    assert servers_of(cfg, "standby") == ["BTSDR01", "BTSDR02"]
    bare = cfg.model_copy(update={"sites": cfg.sites.model_copy(update={
        "standby": cfg.sites.standby.model_copy(update={"biztalk_servers": []})})})
    assert servers_of(bare, "standby") == [NOT_CONFIGURED]
    step = windows_step(bare, "update_registry", NOT_CONFIGURED, update_info_path=XML)
    assert step.manual and "On every BizTalk server of the standby site (none is listed" in step.instructions


def test_a_server_without_winrm_gets_the_exact_command_to_run(cfg):
    step = windows_step(cfg, "update_database", "BTSDR01", update_info_path=XML)
    assert step.manual
    assert f'cscript //nologo "$env:BTSINSTALLPATH\\Schema\\Restore\\UpdateDatabase.vbs" \'{XML}\'' in step.instructions
    registry = windows_step(cfg, "update_registry", "BTSDR02", update_info_path=XML)
    assert "UpdateRegistry.vbs" in registry.instructions and registry.instructions.startswith("On BTSDR02:")


def test_a_server_with_winrm_runs_an_idempotent_script_and_its_failure_names_server_and_step(cfg):
    step = windows_step(cfg, "stop_biztalk", "BTSPRD01", mode="planned")
    assert not step.manual and step.winrm_conn_id == "winrm_btsprd01"
    assert "if ($s.Status -ne 'Stopped') { Stop-Service" in step.powershell  # a stopped service is left alone
    assert "Set-Service -Name $s.Name -StartupType Disabled" in step.powershell
    runner = Recorder()
    assert run_windows_step(step, runner) == ["ENTSSO running"] and runner.ran == [(step.powershell, "powershell")]
    with pytest.raises(WindowsStepError, match=r"stop_biztalk on BTSPRD01: exit code 1: Access is denied"):
        run_windows_step(step, Recorder(code=1, err=b"Access is denied"))


def test_the_sso_secret_is_always_restored_by_a_person(cfg):
    servers = [s.model_copy(update={"winrm_conn_id": "winrm_btsdr01"}) for s in cfg.sites.standby.biztalk_servers]
    cfg = cfg.model_copy(update={"sites": cfg.sites.model_copy(update={
        "standby": cfg.sites.standby.model_copy(update={"biztalk_servers": servers})})})
    assert not windows_step(cfg, "start_biztalk", "BTSDR01").manual
    step = windows_step(cfg, "restore_sso_secret", "BTSDR01")  # even with a WinRM connection: it asks a password
    assert step.manual and "ssoconfig -restoreSecret" in step.instructions and "never in Airflow" in step.instructions


def test_a_disaster_tells_the_person_an_unreachable_source_is_fine_and_quotes_are_escaped(cfg):
    assert "cannot be reached" in windows_step(cfg, "stop_biztalk", "BTSPRD02", mode="disaster").instructions
    assert "cannot be reached" not in windows_step(cfg, "stop_biztalk", "BTSPRD02", mode="planned").instructions
    step = windows_step(cfg, "update_registry", "BTSDR01", update_info_path="D:\\it's\\x.xml")
    assert "'D:\\it''s\\x.xml'" in step.powershell


def test_unknown_servers_and_steps_are_refused(cfg):
    with pytest.raises(WindowsStepError, match="not a BizTalk server of sites.standby.biztalk_servers"):
        windows_step(cfg, "update_registry", "BTSXX99")
    with pytest.raises(WindowsStepError, match="unknown step"):
        windows_step(cfg, "reboot", "BTSDR01")  # type: ignore[arg-type]
    assert set(STEPS) == {"stop_biztalk", "update_database", "update_registry", "restore_sso_secret", "start_biztalk"}
