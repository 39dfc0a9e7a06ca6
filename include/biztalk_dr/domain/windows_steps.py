"""The Windows side of the runbook (biztalk-dr.md section 5, steps 1, 3 and 8 to 11): what runs on which
BizTalk server, as a PowerShell script for WinRM and as plain instructions for a person.

A server with ``winrm_conn_id`` in the configuration gets the script through the WinRM provider; any
other server gets a human step showing the exact commands for that server. Every script is idempotent
(a stopped service is not stopped again, a running one not started again), so a cleared task can run
again. Restoring the SSO master secret is always a person's step: ``ssoconfig -restoreSecret`` asks for
the backup file's password, which must not pass through Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from biztalk_dr.domain.config import BizTalkServer, GroupConfig
from biztalk_dr.domain.errors import WindowsStepError

__all__ = ["STEPS", "WindowsStep", "CommandRunner", "windows_step", "run_windows_step",
           "servers_of"]

StepName = Literal["stop_biztalk", "update_database", "update_registry", "restore_sso_secret", "start_biztalk"]
STEPS: tuple[StepName, ...] = ("stop_biztalk", "update_database", "update_registry", "restore_sso_secret",
                               "start_biztalk")
NOT_CONFIGURED = "(no BizTalk server configured)"

# BizTalk's services (section 5, steps 1, 3, 11); host instances are the BTSSvc$<HostName> services
_SERVICES = "@(Get-Service -Name 'BTSSvc$*' -ErrorAction SilentlyContinue) + " \
            "@(Get-Service -Name 'RuleEngineUpdateService', 'ENTSSO' -ErrorAction SilentlyContinue)"
_SCRIPTS = "$env:BTSINSTALLPATH\\Schema\\Restore"  # BizTalk's setup sets BTSINSTALLPATH




class CommandRunner(Protocol):
    """What runs a script on a server (the WinRM provider's hook): ``(exit code, stdout, stderr)``."""

    def run(self, command: str, ps_path: str | None = None) -> tuple[int | None, list[bytes], list[bytes]]: ...


@dataclass(frozen=True)
class WindowsStep:
    step: StepName
    server: str
    winrm_conn_id: str | None  # None: a person runs it
    title: str
    powershell: str  # the script WinRM runs
    instructions: str  # what a person does instead, with the exact commands

    @property
    def manual(self) -> bool:
        return self.winrm_conn_id is None or self.step == "restore_sso_secret"


def servers_of(cfg: GroupConfig, site: Literal["primary", "standby"]) -> list[str]:
    """The names a step is mapped over (one box per server); a placeholder when the site lists none, so
    the step still shows its instructions to a person."""
    return [s.name for s in getattr(cfg.sites, site).biztalk_servers] or [NOT_CONFIGURED]


def _server(cfg: GroupConfig, site: str, name: str) -> BizTalkServer | None:
    return next((s for s in getattr(cfg.sites, site).biztalk_servers if s.name == name), None)


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def windows_step(cfg: GroupConfig, step: StepName, server: str, *, update_info_path: str = "",
                 mode: str = "disaster") -> WindowsStep:
    """The step for one server; ``update_info_path`` is SampleUpdateInfo.xml as the BizTalk servers see it."""
    site = "primary" if step == "stop_biztalk" else "standby"
    known = _server(cfg, site, server)
    if known is None and server != NOT_CONFIGURED:
        raise WindowsStepError(server, step, f"not a BizTalk server of sites.{site}.biztalk_servers")
    where = (f"on every BizTalk server of the {site} site (none is listed under sites.{site}.biztalk_servers)"
             if known is None else f"on {server}")
    conn = known.winrm_conn_id if known else None
    xml = _ps_quote(update_info_path)
    if step == "stop_biztalk":
        unreachable = " If the server cannot be reached (the site is lost), confirm and go on." \
            if mode == "disaster" else ""
        return WindowsStep(step, server, conn, f"Stop BizTalk processing {where}",
                           f"foreach ($s in {_SERVICES}) {{ Set-Service -Name $s.Name -StartupType Disabled; "
                           "if ($s.Status -ne 'Stopped') { Stop-Service -Name $s.Name -Force }; "
                           "\"$($s.Name) stopped and disabled\" }",
                           f"{where[0].upper()}{where[1:]}: in the BizTalk Administration console disable the receive "
                           "locations; then stop and set to Disabled the host instances (services BTSSvc$<HostName>), "
                           "the Rule Engine Update Service and ENTSSO; stop BizTalk's IIS application pools (and "
                           "Analysis Services if BAM is used). Approve when they are stopped." + unreachable)
    if step == "update_database":
        command = f"cscript //nologo \"{_SCRIPTS}\\UpdateDatabase.vbs\" {xml}"
        return WindowsStep(step, server, conn, f"Repoint the group's databases (UpdateDatabase.vbs) {where}",
                           f"& cscript //nologo \"{_SCRIPTS}\\UpdateDatabase.vbs\" {xml}; exit $LASTEXITCODE",
                           f"On ONE BizTalk server of the standby site ({server}): {command} "
                           "(it rewrites the tables of BizTalkMgmtDb that name the other databases' servers). "
                           "Approve when it reports success.")
    if step == "update_registry":
        command = f"cscript //nologo \"{_SCRIPTS}\\UpdateRegistry.vbs\" {xml}"
        return WindowsStep(step, server, conn, f"Repoint the registry (UpdateRegistry.vbs) {where}",
                           f"& cscript //nologo \"{_SCRIPTS}\\UpdateRegistry.vbs\" {xml}; exit $LASTEXITCODE",
                           f"{where[0].upper()}{where[1:]}: {command} (MgmtDBServer and MgmtDBName under "
                           "HKLM\\SOFTWARE\\Microsoft\\BizTalk Server\\3.0\\Administration). Approve when done.")
    if step == "restore_sso_secret":
        return WindowsStep(step, server, None, f"Restore the SSO master secret {where}", "",
                           f"On the master secret server of the standby site ({server}): if its name differs from the "
                           "old master secret server, first: ssomanage -updatedb <file with the new name>; then "
                           "ssoconfig -restoreSecret <the master secret backup file> and type its password (kept "
                           "in the DR safe, never in Airflow). Approve when ssoconfig reports success.")
    if step == "start_biztalk":
        return WindowsStep(step, server, conn, f"Start BizTalk {where}",
                           f"foreach ($s in {_SERVICES}) {{ Set-Service -Name $s.Name -StartupType Automatic; "
                           "if ($s.Status -ne 'Running') { Start-Service -Name $s.Name }; \"$($s.Name) running\" }; "
                           "Restart-Service -Name Winmgmt -Force; 'WMI restarted'",
                           f"{where[0].upper()}{where[1:]}: set ENTSSO, the Rule Engine Update Service and every host "
                           "instance (BTSSvc$<HostName>) to Automatic and start them (ENTSSO first); restart the "
                           "Windows Management Instrumentation service (Winmgmt). Approve when they run.")
    raise WindowsStepError(server, step, f"unknown step (known: {', '.join(STEPS)})")


def run_windows_step(step: WindowsStep, runner: CommandRunner) -> list[str]:
    """Run the step's script through WinRM; a non-zero exit fails with the server, the step and stderr."""
    code, out, err = runner.run(step.powershell, ps_path="powershell")
    lines = _decode(out)
    if code != 0:
        raise WindowsStepError(step.server, step.step, f"exit code {code}: {' '.join(_decode(err)) or 'no error text'}"
                                                       f" (ran: {step.powershell})")
    return lines


def _decode(chunks: Sequence[bytes]) -> list[str]:
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]
