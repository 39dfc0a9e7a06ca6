"""What BizTalk's ``UpdateDatabase.vbs`` does to a stand-in group, for drills and tests.

At failover the operator runs ``cscript UpdateDatabase.vbs SampleUpdateInfo.xml`` on a BizTalk server; it
rewrites the management database's tables that name the other databases' servers (biztalk-dr.md section
5, step 8). The stand-in has no BizTalk server, so the person of a drill runs this model instead: it reads
the same SampleUpdateInfo.xml that dr_failover generated and applies the same changes to the tables the
stand-in seeds (adm_Group, adm_MessageBox, adm_OtherDatabases, adm_OtherBackupDatabases). A file the
real script could not use (no ManagementDB element, an element without its attributes) is refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from sqlserver_standin.batch import quote_name

__all__ = ["update_database_statements", "run_update_database"]


def _s(text: str) -> str:
    return "N'" + text.replace("'", "''") + "'"


def update_database_statements(update_info_xml: str) -> list[str]:
    """The T-SQL the model runs, one statement per table and database, in the management database."""
    root = ET.fromstring(update_info_xml)
    mgmt = root.find("ManagementDB")
    if root.tag != "UpdateConfiguration" or mgmt is None:
        raise ValueError("not a SampleUpdateInfo.xml: expected <UpdateConfiguration> with a <ManagementDB> element")
    elements = [e for e in root if e.tag != "OtherDatabases"] + list(root.iterfind("OtherDatabases/Database"))
    m = quote_name(mgmt.get("newDBName") or "")
    statements = []
    for element in elements:
        try:
            old_name, new_name, new_server = element.attrib["oldDBName"], element.attrib["newDBName"], \
                element.attrib["newDBServer"]
        except KeyError as exc:
            raise ValueError(f"<{element.tag}> has no {exc.args[0]} attribute") from None
        if element.tag == "MessageBoxDB":
            statements.append(f"UPDATE {m}.dbo.adm_MessageBox SET DBServerName = {_s(new_server)}, DBName = "
                              f"{_s(new_name)} WHERE DBName = {_s(old_name)}")
            if element.get("IsMaster") == "1":
                statements.append(f"UPDATE {m}.dbo.adm_Group SET SubscriptionDBServerName = {_s(new_server)}")
        if element.tag == "TrackingDB":
            statements.append(f"UPDATE {m}.dbo.adm_Group SET TrackingDBServerName = {_s(new_server)}")
        if element.get("Name") == "SSO":
            statements.append(f"UPDATE {m}.dbo.adm_Group SET SSOServerName = {_s(new_server)}")
        for table in ("adm_OtherDatabases", "adm_OtherBackupDatabases"):
            statements.append(f"UPDATE {m}.dbo.{table} SET ServerName = {_s(new_server)}, DatabaseName = "
                              f"{_s(new_name)} WHERE DatabaseName = {_s(old_name)}")
    return statements


def run_update_database(update_info_xml: str, execute: Callable[[str], object]) -> int:
    """Apply the model through ``execute`` (one statement at a time on the new management instance)."""
    statements = update_database_statements(update_info_xml)
    for statement in statements:
        execute(statement)
    return len(statements)
