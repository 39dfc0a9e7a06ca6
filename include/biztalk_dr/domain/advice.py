"""What an operator does next, for every situation biztalk-dr alerts on: one table, so that every alert's
"What to do" is written (and reviewed) in one place.

Each entry says what happened (``situation``: the README's table is made from it) and what to do
(``action``), and lists the DAGs and ``dag_id.task_id`` tasks it names (``names``), which a test checks
against the DAG files. An action never claims something was done: where a step *was* taken (a full backup
requested, a file quarantined), the caller that took it picks the entry that says so, after taking it.
Entries take ``{placeholders}`` filled by ``advice(key, **values)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Advice", "ADVICE", "advice"]


@dataclass(frozen=True)
class Advice:
    situation: str
    action: str
    names: tuple[str, ...] = ()  # DAG ids and dag_id.task_id the action names


_RESEED = ("trigger dr_standby_reseed (dry_run first; it restores the newest complete full set shipped and verified "
           "and every later set WITH REPLACE, NORECOVERY)")

ADVICE: dict[str, Advice] = {
    # ------------------------------------------------------------------ log shipping: the chain
    "chain_gap": Advice(
        "a shipped log does not continue the previous log of its database (a log backup taken outside BizTalk?)",
        "A full backup has been requested at the source. Once dr_full_backup has taken it and dr_log_shipping has "
        "shipped it, " + _RESEED + ". Find out who took the other log backup.",
        ("dr_full_backup", "dr_log_shipping", "dr_standby_reseed")),
    "restore_gap": Advice(
        "SQL Server 4305 on the standby: an earlier log was never restored there",
        "The standby's chain has a gap and cannot continue: " + _RESEED + ".", ("dr_standby_reseed",)),
    "partial_set_blocks": Advice(
        "a partial set lies between the standby and the newer sets: no later log applies",
        "Once the newer full set is shipped (dr_log_shipping ships it), " + _RESEED + ".",
        ("dr_log_shipping", "dr_standby_reseed")),
    "standby_recovered": Advice(
        "SQL Server 3117: a standby database is not restoring any more (recovered by hand?)",
        "It cannot take further logs. Find out who recovered it and whether anyone wrote to it; then "
        + _RESEED + ".", ("dr_standby_reseed",)),
    "standby_unknown_databases": Advice(
        "the standby instance has databases of the group that biztalk-dr has no record of",
        "If these are old standby copies, " + _RESEED + " (it replaces them); if they are someone's work, move "
        "them off the standby instance first.", ("dr_standby_reseed",)),
    # ------------------------------------------------------------------ log shipping: files
    "source_file_missing": Advice(
        "a backup file named in adm_BackupHistory is not in the primary's backup folder",
        "A full backup has been requested at the source (the chain cannot continue without this file); find out "
        "who removed it. Once the full set is shipped, " + _RESEED + ".", ("dr_standby_reseed",)),
    "source_unverified": Advice(
        "the source backup file failed its read-back when it was taken (dr_log_backup / dr_full_backup): it is "
        "never shipped as good",
        "A full backup was requested when the read-back failed; the standby waits for it. Once dr_full_backup has "
        "taken it and dr_log_shipping has shipped it, " + _RESEED + ". Check the backup share (the file is kept "
        "at the source as evidence).", ("dr_full_backup", "dr_log_shipping", "dr_standby_reseed")),
    "copy_failed_twice": Advice(
        "the copy to the standby site failed its verification twice",
        "A full backup has been requested at the source. Check the source file, the landing disk and the network "
        "path to the standby site; the next dr_log_shipping run tries again.", ("dr_log_shipping",)),
    "landing_unwritable": Advice(
        "the landing folder at the standby site cannot be written (read-only, full, or no permission)",
        "Nothing was lost: the primary keeps every backup file until it is shipped and verified. Free space on, or "
        "give the Airflow worker write access to, sites.standby.landing_dir ({path}); the next dr_log_shipping run "
        "ships what is missing.", ("dr_log_shipping",)),
    "shipped_copy_recopied": Advice(
        "a shipped file no longer matched its manifest (or SQL Server found it damaged) and was copied again",
        "The standby restored the new copy; the damaged one is in {quarantine} for inspection (with a .why.txt). "
        "Check the landing disk (file-system and disk errors) and whatever else writes to that folder (antivirus, "
        "backup agents): it may damage the next file."),
    "shipped_copy_vanished": Advice(
        "a file shipped and verified before was gone from the landing folder (or cut short) and was shipped again",
        "Nothing was lost: it was copied again from the source and verified. Find out what removes or truncates "
        "files in {path} (a cleanup job, antivirus, someone by hand) and stop it: once the primary's copy is "
        "deleted by retention, a file removed there is lost for the standby."),
    "source_copy_bad_too": Advice(
        "the shipped file is damaged and the source file is damaged the same way (or differs from what was shipped)",
        "The damaged copy is in {quarantine}; the source file is not shipped again. A full backup has been requested "
        "at the source; once dr_full_backup has taken it and dr_log_shipping has shipped it, " + _RESEED + ".",
        ("dr_full_backup", "dr_log_shipping", "dr_standby_reseed")),
    "source_copy_bad_full_not_requested": Advice(
        "the shipped file and the source file are damaged, and the primary did not answer the full backup request",
        "The damaged copy is in {quarantine}; the source file is damaged too and is not shipped again. The full "
        "backup the standby now needs could not be requested ({why}): trigger dr_full_backup as soon as the primary "
        "answers; once dr_log_shipping has shipped it, trigger dr_standby_reseed.",
        ("dr_full_backup", "dr_log_shipping", "dr_standby_reseed")),
    "shipped_copy_quarantined": Advice(
        "a shipped file is damaged (content hash or SQL Server's read) and could not be copied again now",
        "The damaged copy is in {quarantine}. The source could not be read now ({why}); the next dr_log_shipping run "
        "copies it again from the source. If the source is lost, the standby can only reach the marks before this "
        "file.", ("dr_log_shipping",)),
    "restore_device": Advice(
        "SQL Server 3201 on the standby: it cannot open the shipped file",
        "Check sites.standby.landing_path and the standby SQL Server service account's permissions on it; the next "
        "dr_log_shipping run continues from the last restored set.", ("dr_log_shipping",)),
    "restore_in_use": Advice(
        "SQL Server 3101 on the standby: sessions kept the database in use through the retries",
        "Find them (sp_who2) and end them; the next dr_log_shipping run continues.", ("dr_log_shipping",)),
    "restore_other": Advice(
        "the standby restore failed with another SQL Server error",
        "Read the SQL Server error above; the next dr_log_shipping run continues from the last restored set.",
        ("dr_log_shipping",)),
    "standby_unreachable": Advice(
        "the standby SQL Server cannot be reached",
        "Check that the standby instance runs and that the Airflow worker reaches it (its Airflow connection); "
        "shipping goes on, and the next dr_log_shipping run restores what is waiting, in order.",
        ("dr_log_shipping",)),
    "primary_unreachable": Advice(
        "the primary SQL Server cannot be reached",
        "Check that the primary instance runs and that the Airflow worker reaches it ({conn_id}); nothing was changed "
        "and the next run continues. If the primary site is lost, dr_failover (dry_run first) recovers the standby "
        "to the newest mark it can reach.", ("dr_failover",)),
    "standby_state_unreadable": Advice(
        "the standby state file (.biztalk-dr/standby-state.json) cannot be read",
        "Restore the file from a copy if you have one; otherwise " + _RESEED + ": a re-seed does not need the old "
        "file, keeps it aside as {kept} and writes a new one.", ("dr_standby_reseed",)),
    "roles_unreadable": Advice(
        "the DR roles record (.biztalk-dr/roles.json: which site is primary, the backup hold) cannot be read",
        "Restore {path} from a copy if you have one. Otherwise, if no failover made the standby site the primary, "
        "move the file aside (the record then reads as before any failover); if one did, write "
        '{{"primary_site": "standby"}} into it, so the backup DAGs back up the new primary.', ()),
    "reseed_needs_full": Advice(
        "there is no complete full set older than the newest complete set to re-seed from",
        "Run dr_full_backup, then dr_log_backup once, then dr_log_shipping, and re-seed.",
        ("dr_full_backup", "dr_log_backup", "dr_log_shipping")),
    "reseed_needs_shipped_full": Advice(
        "the full set a re-seed needs is not all shipped and verified",
        "Let dr_log_shipping ship it first (trigger it), then re-seed.", ("dr_log_shipping",)),
    "instance_unreachable": Advice(
        "a SQL Server instance cannot be reached",
        "Check that the instance ({conn_id}) runs and that the Airflow worker reaches it (network, port, its Airflow "
        "connection); nothing was changed by this step; clear it or wait for the next run."),
    "standby_busy": Advice(
        "another run holds the standby lock",
        "Nothing was changed; the next run continues. If no run is active, the lock holder died: the lock is "
        "released with its process."),
    # ------------------------------------------------------------------ data-loss window and status
    "data_loss_window": Advice(
        "the data-loss window (what a failover now would lose) is over a threshold",
        "Check dr_log_backup (are sets being taken?) and dr_log_shipping (are they shipped, verified and restored?) "
        "in the Airflow UI; the reasons above say what holds the standby back. Every minute here is work a "
        "failover would lose.", ("dr_log_backup", "dr_log_shipping")),
    "standby_cannot_deliver": Advice(
        "a standby database cannot reach the mark the others can (recovered, missing, damaged, or stuck)",
        "Read the reason per database above. A database ONLINE or missing on the standby needs " + _RESEED
        + "; a file quarantined or missing is copied again by the next dr_log_shipping run if the source still "
        "has it.", ("dr_log_shipping", "dr_standby_reseed")),
    "standby_restores_waiting": Advice(
        "shipped sets wait to be restored on the standby for longer than the warn threshold (a stuck restore)",
        "Open the latest dr_log_shipping runs: the log of dr_log_shipping.restore_standby_set_by_set says which restore fails and "
        "SQL Server's error; its alert says what to do for that error. Nothing shipped is lost meanwhile.",
        ("dr_log_shipping", "dr_log_shipping.restore_standby_set_by_set")),
    "quarantined_not_reshipped": Advice(
        "a file quarantined at the standby site has not been shipped again yet",
        "The next dr_log_shipping run copies it again from the source (its alert said why it was quarantined; the "
        "copy is kept in the landing folder's quarantine/). If the source no longer has it, the standby can only "
        "reach the marks before this file: a full backup, then a re-seed.", ("dr_log_shipping",)),
    "status_not_recorded": Advice(
        "no status has been recorded at the standby site yet",
        "dr_log_shipping records it at every run (dr_log_shipping.check_data_loss_window): unpause and trigger "
        "dr_log_shipping; `biztalk-dr status` measures it now from a terminal.",
        ("dr_log_shipping", "dr_log_shipping.check_data_loss_window")),
    "status_stale": Advice(
        "the status recorded at the standby site is older than a few log-shipping intervals",
        "Is dr_log_shipping running (paused, failing before dr_log_shipping.check_data_loss_window, no scheduler)? "
        "Look at its latest runs; `biztalk-dr status` measures the standby now from a terminal.",
        ("dr_log_shipping", "dr_log_shipping.check_data_loss_window")),
    # ------------------------------------------------------------------ failover
    "failover_refused": Advice(
        "the failover assessment found databases that cannot reach the target mark",
        "Nothing was changed. Fix the named databases (" + _RESEED + "; dr_log_shipping ships missing files), or "
        "pick another target_mark, or — only if you accept that the named database is NOT recovered with the "
        "others — name it in leave_out; then trigger dr_failover again.",
        ("dr_standby_reseed", "dr_log_shipping", "dr_failover")),
    "failover_changed_since_approval": Advice(
        "right before the first WITH RECOVERY, a standby database could no longer reach the approved mark",
        "Nothing was recovered (every database is still RESTORING, logs before the mark may have been applied WITH "
        "NORECOVERY). Trigger dr_failover again: its assessment shows what changed.", ("dr_failover",)),
    "failover_rejected": Advice(
        "the failover approval was rejected (or timed out)",
        "Nothing was changed. The rejection is in the run's timeline. Trigger dr_failover again when the plan is "
        "right.", ("dr_failover",)),
    "failover_verify": Advice(
        "a database is not ONLINE at the mark after recovery",
        "Clear dr_failover.recover_databases.restore_to_mark to run it again; it continues from where it stopped.",
        ("dr_failover.recover_databases.restore_to_mark",)),
    "failover_planned_needs_source": Advice(
        "a planned switchover was asked for but the source does not answer",
        "Use mode disaster when the primary site is lost."),
    "failover_source_busy": Advice(
        "sessions still use the group's databases on the source during a failover",
        "BizTalk (or someone) still works on the source: stop its host instances and services "
        "(dr_failover.stop_source.stop_biztalk_processing), end the sessions, then clear this task. Failing over now "
        "would leave two groups writing.", ("dr_failover.stop_source.stop_biztalk_processing",)),
    "shipped_sets_ambiguous": Advice(
        "the landing folder's manifests cannot tell which primary's backup set a shipped file belongs to (after a "
        "failover both primaries' set ids overlap)",
        "Nothing was changed and nothing was planned. Move the named files that are not the configured primary's "
        "(sites.primary) out of the landing folder, each with its .manifest.json, into a folder of their own; then "
        "run again. If the configured primary is not the site that was backing up, correct sites first."),
    "failover_final_set_not_shipped": Advice(
        "the final log set of a planned switchover is not shipped and verified for every database",
        "Look at the failed files above; clear this task to ship them again."),
    "failover_orphaned_users": Advice(
        "database users on the new primary have no login of that name",
        "Create each login on the new primary (with the SID it has on the old primary: CREATE LOGIN [name] WITH "
        "PASSWORD = N'...', SID = 0x...), then clear this task; or, if nobody uses that user any more, mark the task "
        "success."),
    "failover_repoint_first": Advice(
        "the BizTalk group still points at the old primary's servers",
        "Run UpdateDatabase.vbs with SampleUpdateInfo.xml on one BizTalk server of the standby site "
        "(dr_failover.repoint_biztalk.update_database), then clear this task.",
        ("dr_failover.repoint_biztalk.update_database",)),
    "failover_old_primary_next": Advice(
        "after a failover, the old primary is not a standby yet",
        "The old primary ({old_primary}) is not a standby yet: when it is back, swap sites.primary and sites.standby "
        "in the group's configuration and trigger dr_standby_reseed to make it the new standby.",
        ("dr_standby_reseed",)),
    "new_primary_backup_folder": Advice(
        "the standby site is the primary now but has no backup folder configured",
        "Add both to the group's configuration (the folder as the standby SQL Server sees it, and as the Airflow "
        "workers see it), then clear the failed task."),
    # ------------------------------------------------------------------ backups
    "backup_set_not_written": Advice(
        "BizTalk's backup procedure returned without writing the backup set",
        "Check adm_BackupHistory and the SQL Server error log on the management instance; a full backup has been "
        "requested, so the next dr_full_backup run starts a new chain.", ("dr_full_backup",)),
    "backup_set_bad": Advice(
        "a backup set just taken is incomplete, or a file of it failed its read-back",
        "A full backup has been requested at the source (the log chain cannot be trusted past this set); the next "
        "dr_full_backup run takes it, and log shipping never ships a file that failed its read-back. Check the "
        "backup share and its disk: the file is kept as evidence.", ("dr_full_backup",)),
    "backup_schedule_missed": Advice(
        "a backup schedule promised a set that is not there",
        "Open the backup DAG named above: is it paused, are its runs failing, is the scheduler running? Every missed "
        "log backup widens the data-loss window."),
    "deadline_missed": Advice(
        "a scheduled DR run did not finish in time",
        "Check that the scheduler and workers are running and that the run is not stuck (Airflow UI, Browse > DAG "
        "Runs); every missed log backup widens the data-loss window."),
    "file_not_writable": Advice(
        "a file or folder cannot be written or read (permissions, read-only, full)",
        "{path} cannot be written or read ({why}): fix the folder's permissions or free space; nothing was changed by "
        "this step; clear it or wait for the next run."),
    "reseed_confirm_group": Advice(
        "a real re-seed was triggered without the group's name typed",
        "Trigger again with confirm_group = {group} to replace the standby databases, or leave dry_run on to see the "
        "plan."),
    # ------------------------------------------------------------------ SQL Server errors without advice of their own
    "sql_log_already_applied": Advice(
        "SQL Server 4326: the log is older than what the database has",
        "This log was already applied; it is skipped. No action needed unless it repeats for every file."),
    "sql_mark_not_found": Advice(
        "SQL Server 4334: the named mark is not in this log",
        "The mark is not in this log: check that the target mark belongs to this set."),
    "sql_in_use": Advice(
        "SQL Server 3101: sessions use the database",
        "Sessions still use the database. Find them in sys.dm_exec_sessions and end them, then clear the task."),
    "sql_device": Advice(
        "SQL Server 3201: the backup file cannot be opened",
        "SQL Server cannot open the backup file: check the path, the share and the SQL Server service account's "
        "permissions, then clear the task."),
    "sql_media_damaged": Advice(
        "SQL Server 3183/3189/3203/3241/3242: a backup file is damaged or not a backup",
        "The backup file is damaged (or not a backup). Check the file and the disk it is on; a damaged source file "
        "needs a full backup (trigger dr_full_backup) and, at the standby, a re-seed (dr_standby_reseed).",
        ("dr_full_backup", "dr_standby_reseed")),
    "sql_other_database": Advice(
        "SQL Server 3154: the backup is of another database",
        "The backup file is of another database than the catalog says: stop and compare the history with the files."),
    "sql_abnormal": Advice(
        "SQL Server 3013: BACKUP or RESTORE terminated abnormally",
        "BACKUP or RESTORE terminated abnormally: read the error above it in the task log."),
    "sql_login_refused": Advice(
        "SQL Server 18456: the login was refused",
        "The login was refused: check the Airflow connection's login and password."),
    # ------------------------------------------------------------------ restore validation
    "validation_copy_damaged": Advice(
        "a shipped file a validation restores is damaged (content hash or SQL Server) and could not be copied again",
        "The damaged copy is in {quarantine}; copying it again from the source failed (see above), so it is not "
        "shipped and verified any more. Check the landing disk and the source file; once the source can be read, "
        "trigger dr_restore_validation again (it copies what it finds damaged) or dr_log_shipping.",
        ("dr_restore_validation", "dr_log_shipping")),
    "validation_no_site": Advice(
        "the configuration has no validation instance",
        "Add sites.validation (an instance that is neither primary nor standby)."),
    "validation_leftovers": Advice(
        "the validation instance still has validation databases of another run",
        "Wait for the other run; if none is running, clear dr_restore_validation.drop_validation_databases of the "
        "last run (or drop those databases) and run again.", ("dr_restore_validation.drop_validation_databases",)),
    "validation_no_space": Advice(
        "the validation instance lacks free space for the planned restore",
        "Free space on the validation instance's data volume or lower sites.validation.min_free_space_gb."),
    "validation_unusable_database": Advice(
        "a restored database failed its checks (DBCC CHECKDB, ONLINE, mark, sanity query)",
        "The shipped backups of this database do not restore into a usable database: check the primary (DBCC "
        "CHECKDB) and trigger dr_full_backup for a new chain.", ("dr_full_backup",)),
    "validation_failed": Advice(
        "the restore validation failed for a database",
        "Read the report; fix the named database's backups at the primary and trigger dr_restore_validation again.",
        ("dr_restore_validation",)),
    "validation_slow": Advice(
        "the restore validation took longer than its objective",
        "The SQL part of a failover would take this long: review the objective or the restore speed."),
    "validation_unknown_set": Advice(
        "the set asked for is not in adm_BackupHistory",
        "Leave set_id empty to prove the newest shipped set."),
    "validation_set_not_shipped": Advice(
        "the set asked for is not a complete log set shipped and verified with its full set",
        "Pick another set, or leave set_id empty."),
    "validation_nothing_shipped": Advice(
        "no complete log set is shipped and verified at the standby site yet",
        "Let dr_log_shipping ship a full set and a log set first.", ("dr_log_shipping",)),
    # ------------------------------------------------------------------ the group's configuration file
    "config_file_broken": Advice(
        "the group's configuration file does not validate: the DAGs run on its last valid version",
        "Fix {file}: `biztalk-dr config check {file}` lists the same lines. Backups and shipping go on meanwhile, "
        "with the settings of the last valid version; each run alerts until the file validates, and the first run "
        "after that uses it."),
    "config_group_not_loaded": Advice(
        "a group's configuration file does not validate and no valid version of it was ever seen: none of its DAGs "
        "is loaded, nothing backs up or ships that group",
        "Fix {file}: `biztalk-dr config check {file}` lists the same lines. Its DAGs (dr_...__{key}) load at the "
        "next parse once it validates; the other groups are not affected."),
    "landing_space_low": Advice(
        "the standby site's landing folder has less free space than two full backup sets of the group need",
        "Free space on the landing folder's disk ({path}), or let dr_standby_retention delete what no chain needs: "
        "read its decisions in the task log and set retention.standby.delete: true (or lower "
        "retention.standby.keep_days / keep_full_chains). When the disk is full, shipping stops and the data-loss "
        "window grows.", ("dr_standby_retention",)),
}

# SQL Server's errors name their entries themselves (errors.py: ``advice_key`` when an error carries no advice of
# its own, ``restore_advice_key`` on a standby RESTORE; biztalk-dr.md section 6). None of those entries claims a step
# was taken: the errors that take one (a full backup requested, a file quarantined) carry their own advice, saying so.


def advice(key: str, **values: object) -> str:
    """The action of an entry, its placeholders filled."""
    return ADVICE[key].action.format(**values)
