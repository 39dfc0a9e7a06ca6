"""The group's schedules as Airflow timetables, in the group's time zone.

Cron-based trigger timetables run at the wall-clock times operators expect ("01:00 Berlin time"),
and never replay missed intervals (backups of the past cannot be taken now).
"""

from __future__ import annotations

import datetime as dt

from biztalk_dr.domain.config import GroupConfig

__all__ = ["full_backup_cron", "full_backup_timetable", "every_minutes_timetable", "cron_timetable"]

_FULL_CRON = {
    "h": "0 * * * *",
    "d": "0 {hour} * * *",
    "w": "0 {hour} * * 0",  # Sundays
    "m": "0 {hour} 1 * *",
    "y": "0 {hour} 1 1 *",
}


def full_backup_cron(cfg: GroupConfig) -> str:
    sched = cfg.schedules.full_backup
    return _FULL_CRON[sched.frequency].format(hour=sched.hour)


def cron_timetable(cron: str, cfg: GroupConfig):
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=cfg.group.time_zone)


def full_backup_timetable(cfg: GroupConfig):
    return cron_timetable(full_backup_cron(cfg), cfg)


def every_minutes_timetable(minutes: int, cfg: GroupConfig):
    """Every N minutes on the clock (:00, :15, ...) when N divides an hour; otherwise every N minutes."""
    if minutes < 60 and 60 % minutes == 0:
        return cron_timetable(f"*/{minutes} * * * *", cfg)
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return cron_timetable(f"0 */{minutes // 60} * * *", cfg)
    from airflow.timetables.trigger import DeltaTriggerTimetable

    return DeltaTriggerTimetable(dt.timedelta(minutes=minutes))
