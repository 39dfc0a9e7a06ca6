"""The Airflow Assets between biztalk-dr's DAGs, defined once.

The backup DAGs produce one event per completed backup set; its ``extra`` is
``BackupSet.as_event()`` (set id, mark, kind, databases, files as SQL Server knows them).
The log-shipping DAG is scheduled on these events (plus a safety schedule).
"""

from __future__ import annotations

from airflow.sdk import Asset

__all__ = ["BACKUP_SETS", "STANDBY_RESTORED"]

BACKUP_SETS = Asset(name="biztalk_dr_backup_sets", uri="biztalk-dr://primary/backup-sets", group="biztalk-dr")
STANDBY_RESTORED = Asset(name="biztalk_dr_standby_restored", uri="biztalk-dr://standby/restored-sets",
                         group="biztalk-dr")
