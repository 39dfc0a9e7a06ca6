"""``SampleUpdateInfo.xml`` for BizTalk's ``UpdateDatabase.vbs`` and ``UpdateRegistry.vbs``, from the config.

At failover these scripts repoint the group at the recovered SQL instances (biztalk-dr.md section 5,
steps 8 and 9). Writing the file by hand at 3 a.m. is where a server name gets mistyped; here it is
generated from the same configuration the DAGs restored from, one element per database.

Element names follow the SampleUpdateInfo.xml shipped with BizTalk Server (Schema\\Restore); the BAM
and rules-engine element names are marked *(check)* in the facts reference: compare with the file of
the installed version before the first drill.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from biztalk_dr.domain.config import Database, GroupConfig

__all__ = ["update_info_xml", "ROLE_ELEMENTS"]

# role -> element directly under <UpdateConfiguration>; other roles go under <OtherDatabases>
ROLE_ELEMENTS = {
    "management": "ManagementDB",
    "messagebox": "MessageBoxDB",
    "tracking": "TrackingDB",
    "rules_engine": "RuleEngineDB",
    "bam_primary_import": "BAMPrimaryImportDB",
    "bam_star_schema": "BAMStarSchemaDB",
    "bam_archive": "BAMArchiveDB",
}
_OTHER_NAMES = {
    "sso": "SSO",
    "bam_alerts_application": "BAMAlertsApplication",
    "bam_alerts_ns_main": "BAMAlertsNSMain",
}


def _attributes(cfg: GroupConfig, db: Database) -> dict[str, str]:
    old = cfg.sites.primary.instances[cfg.instance_of(db, "primary")].server_name
    new = cfg.sites.standby.instances[cfg.instance_of(db, "standby")].server_name
    return {"oldDBName": db.name, "oldDBServer": old, "newDBName": db.name, "newDBServer": new}


def update_info_xml(cfg: GroupConfig) -> str:
    """The file's text (UTF-8 XML declaration included)."""
    root = ET.Element("UpdateConfiguration")
    boxes = cfg.databases_with_role("messagebox")
    for db in cfg.databases:
        element = ROLE_ELEMENTS.get(db.role)
        if element is None:
            continue
        attrs = _attributes(cfg, db)
        if db.role == "messagebox":
            attrs["IsMaster"] = "1" if (db.master or len(boxes) == 1) else "0"
        ET.SubElement(root, element, attrs)
    others = ET.SubElement(root, "OtherDatabases")
    for db in cfg.databases:
        if db.role in ROLE_ELEMENTS:
            continue
        name = _OTHER_NAMES.get(db.role, db.name)
        ET.SubElement(others, "Database", {"Name": name, **_attributes(cfg, db)})
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
