"""SampleUpdateInfo.xml generated from the configuration repoints every database, and nothing else."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from biztalk_dr.domain.config import parse_config
from biztalk_dr.domain.update_info import update_info_xml
from biztalk_dr.ops.config_files import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_every_database_of_the_example_group_is_repointed():
    cfg = load_config(ROOT / "include" / "config" / "example_group.yaml")
    root = ET.fromstring(update_info_xml(cfg))
    assert root.tag == "UpdateConfiguration"
    top = {e.tag: e.attrib for e in root if e.tag != "OtherDatabases"}
    assert top["ManagementDB"] == {"oldDBName": "BizTalkMgmtDb", "oldDBServer": "SQLPRD01",
                                   "newDBName": "BizTalkMgmtDb", "newDBServer": "SQLDR01"}
    assert top["MessageBoxDB"]["IsMaster"] == "1"
    assert set(top) == {"ManagementDB", "MessageBoxDB", "TrackingDB", "RuleEngineDB", "BAMPrimaryImportDB"}
    others = {e.attrib["Name"]: e.attrib for e in root.find("OtherDatabases")}
    assert others["SSO"]["oldDBName"] == "SSODB" and others["SSO"]["newDBServer"] == "SQLDR01"
    assert others["ContosoOrders"]["oldDBName"] == "ContosoOrders"
    named = {e.attrib["oldDBName"] for e in root.iter() if "oldDBName" in e.attrib}
    assert named == {d.name for d in cfg.databases}


TWO_INSTANCES = """\
group: {name: G}
databases:
  - {name: BizTalkMgmtDb, role: management, instance: main}
  - {name: BizTalkMsgBoxDb, role: messagebox, master: true, instance: main}
  - {name: 'Box&2', role: messagebox, instance: second}
  - {name: BizTalkDTADb, role: tracking, instance: main}
  - {name: SSODB, role: sso, instance: main}
sites:
  primary:
    instances:
      main: {conn_id: p, server_name: SQL1}
      second: {conn_id: p2, server_name: 'SQL1\\B'}
    backup_path: 'D:\\Backups\\'
    backup_dir: /data/backups
  standby:
    instances:
      main: {conn_id: s, server_name: SQL2}
      second: {conn_id: s2, server_name: SQL3}
    landing_dir: /data/landing
    landing_path: 'E:\\Landing\\'
files: {roots: [/data]}
"""


def test_several_messageboxes_on_several_instances_with_escaping():
    xml = update_info_xml(parse_config(TWO_INSTANCES))
    boxes = [e.attrib for e in ET.fromstring(xml).findall("MessageBoxDB")]
    assert [(b["oldDBName"], b["IsMaster"], b["oldDBServer"], b["newDBServer"]) for b in boxes] == [
        ("BizTalkMsgBoxDb", "1", "SQL1", "SQL2"), ("Box&2", "0", "SQL1\\B", "SQL3")]
    assert "Box&amp;2" in xml
