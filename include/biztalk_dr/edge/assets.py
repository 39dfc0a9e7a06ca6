"""The Airflow Assets between biztalk-dr's DAGs, defined once.

The backup DAGs produce one event per completed backup set; its ``extra`` is
``BackupSet.as_event()`` (set id, mark, kind, databases, files as SQL Server knows them).
The log-shipping DAG is scheduled on these events (plus a safety schedule).

Several groups in one deployment (``groups``): each group has its own two Assets, their name and URI carry the
group's key (``biztalk-dr://biztalk_prod/primary/backup-sets``), so one group's backup never starts another
group's shipping. One group named by a file keeps the names and URIs without a key.
"""

from __future__ import annotations

from airflow.sdk import Asset

__all__ = ["BACKUP_SETS", "STANDBY_RESTORED", "backup_sets", "standby_restored"]

BACKUP_SETS = Asset(name="biztalk_dr_backup_sets", uri="biztalk-dr://primary/backup-sets", group="biztalk-dr")
STANDBY_RESTORED = Asset(name="biztalk_dr_standby_restored", uri="biztalk-dr://standby/restored-sets",
                         group="biztalk-dr")


def _of_group(asset: Asset, key: str | None) -> Asset:
    if key is None:
        return asset
    site_and_kind = asset.uri.removeprefix("biztalk-dr://")
    return Asset(name=f"{asset.name}__{key}", uri=f"biztalk-dr://{key}/{site_and_kind}", group=asset.group)



def backup_sets(key: str | None) -> Asset:
    """The backup-sets Asset of the group ``key`` (``groups.GroupFile.key``)."""
    return _of_group(BACKUP_SETS, key)


def standby_restored(key: str | None) -> Asset:
    """The standby-restored Asset of the group ``key`` (``groups.GroupFile.key``)."""
    return _of_group(STANDBY_RESTORED, key)
