"""What the DR status page shows of a group (``plugins/biztalk_dr_status.py``), read from the records the DAGs
write at the standby site — never from the SQL Servers, never from a connection:

- the last measured status (``.biztalk-dr/status.json``, a ``standby_status.StandbyStatus`` written by
  ``dr_log_shipping`` and ``dr_health_check``: the function ``biztalk-dr status`` runs), with its data-loss
  window measured again at *now* (the mark does not get younger while nobody measures) and a WARN when the
  record is older than a few log-shipping intervals;
- the status history (``status_history``) for the chart;
- the newest restore validation report, the newest failover (or drill) timeline, the backup hold and the DR
  roles record.

``dr_view`` is a pure function of those files and ``now``; the page, ``status.json`` and the Prometheus
metrics are all drawn from its result. With several groups in the deployment (``groups``) each group's file
gives a ``GroupView``: its ``DrView``, or — when the file does not validate and no valid version of it was ever
seen — its problems (file:line) in place of a view.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.data_loss import DataLossWindow
from biztalk_dr.ops.site_roles import read_roles
from biztalk_dr.ops.standby_state import run_folder_name, state_dir
from biztalk_dr.ops.standby_status import LEVELS, Reason, StandbyStatus
from biztalk_dr.ops.status_history import Point, read

__all__ = ["DrView", "ValidationSummary", "FailoverSummary", "BackupHold", "dr_view", "HISTORY_DAYS", "redact",
           "MetricValues", "metric_values", "record_path", "records_of_run", "GroupView", "group_view",
           "RECORD_FILES"]

HISTORY_DAYS = 7
# The run records a page may show, by kind of run: the only files served from the standby site's records.
RECORD_FILES: dict[str, tuple[str, ...]] = {
    "validation": ("report.md", "report.json"),
    "failover": ("timeline.md", "timeline.json", "SampleUpdateInfo.xml"),
}


@dataclass(frozen=True)
class ValidationSummary:
    run_id: str
    folder: str  # the run's folder name under .biztalk-dr/validation/
    passed: bool
    mark: str | None
    set_id: int | None
    group_restore_seconds: float | None
    objective_minutes: float | None
    objective_exceeded: bool
    problem: str
    failed_databases: tuple[str, ...]
    finished_at: str  # when its report was written (UTC)


@dataclass(frozen=True)
class FailoverSummary:
    run_id: str
    folder: str
    dry_run: bool | None  # None: a timeline written before the field existed
    mode: str | None
    mark: str | None
    recovery_seconds: float | None
    failed_steps: tuple[str, ...]
    finished_at: str
    files: tuple[str, ...]  # which of RECORD_FILES["failover"] the run has


@dataclass(frozen=True)
class BackupHold:
    run_id: str
    since: str | None


@dataclass(frozen=True)
class DrView:
    group: str
    now: str  # UTC
    health: str  # the worst level of ``reasons``
    reasons: tuple[Reason, ...]  # the recorded status's, and the page's own (not recorded, stale, window now)
    status: StandbyStatus | None  # None: nothing recorded yet
    status_age_seconds: int | None
    history_now: str | None  # now in the backup history's clock (the record's times are in it)
    window: DataLossWindow  # the recorded mark's data-loss window at ``now``
    validation: ValidationSummary | None
    failover: FailoverSummary | None
    hold: BackupHold | None
    primary_site: str  # "primary" or "standby" (after a failover)
    history: tuple[Point, ...]
    warn_minutes: int
    critical_minutes: int

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["status"] = self.status.as_json() if self.status else None
        out["window"] = {"level": self.window.level, "minutes": None if self.window.minutes is None else
                         round(self.window.minutes, 1), "mark": self.window.mark_name, "set_id": self.window.set_id,
                         "describe": self.window.describe()}
        return out


def _read_json(path: Path) -> dict[str, Any] | None:
    """A record, every text in it passed through ``redact``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _redacted(data) if isinstance(data, dict) else None


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _mtime(path: Path) -> str:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")


def _newest(folder: Path, name: str) -> Path | None:
    found = [p for p in folder.glob(f"*/{name}") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _validation(records: Path) -> ValidationSummary | None:
    path = _newest(records / "validation", "report.json")
    data = _read_json(path) if path else None
    if path is None or data is None:
        return None
    return ValidationSummary(
        run_id=str(data.get("run_id") or path.parent.name), folder=path.parent.name, passed=bool(data.get("passed")),
        mark=data.get("mark"), set_id=data.get("set_id"), group_restore_seconds=data.get("group_restore_seconds"),
        objective_minutes=data.get("objective_minutes"), objective_exceeded=bool(data.get("objective_exceeded")),
        problem=str(data.get("problem") or ""),
        failed_databases=tuple(d["database"] for d in data.get("databases", []) if not d.get("ok")),
        finished_at=_mtime(path))


def _failover(records: Path) -> FailoverSummary | None:
    path = _newest(records / "failover", "timeline.json")
    data = _read_json(path) if path else None
    if path is None or data is None:
        return None
    return FailoverSummary(
        run_id=str(data.get("run_id") or path.parent.name), folder=path.parent.name, dry_run=data.get("dry_run"),
        mode=data.get("mode"), mark=data.get("mark"), recovery_seconds=data.get("recovery_seconds"),
        failed_steps=tuple(s["step"] for s in data.get("steps", []) if str(s.get("outcome", "")).startswith("failed")),
        finished_at=_mtime(path),
        files=tuple(n for n in RECORD_FILES["failover"] if (path.parent / n).is_file()))


def dr_view(cfg: GroupConfig, now: dt.datetime | None = None) -> DrView:
    """The page's content from the standby site's records at ``now`` (aware, UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    records = state_dir(cfg.sites.standby.landing_dir)
    data = _read_json(records / "status.json")
    status = StandbyStatus.from_json(data) if data else None
    reasons: list[Reason] = []
    age: int | None = None
    history_now: dt.datetime | None = None
    window = DataLossWindow("critical", None, None, None, None)
    if status is None:
        reasons.append(Reason.advised("warn", "no status has been measured at the standby site yet",
                                      "status_not_recorded"))
    else:
        written = dt.datetime.fromisoformat(status.written_at) if status.written_at else now
        age = max(0, round((now - written).total_seconds()))
        # the recorded mark's window at now, in the history's clock: the record's now plus the time since
        measured = dt.datetime.fromisoformat(status.measured_at) if status.measured_at else None
        if measured is not None:
            history_now = measured + dt.timedelta(seconds=age)
            window = status.window_at(history_now)
        reasons.extend(status.reasons)
        recorded_window = LEVELS[_recorded_window_level(status)]
        if window.minutes is not None and LEVELS[window.level] > recorded_window:
            reasons.append(Reason.advised(
                window.level, f"data-loss window now {window.describe()} (measured {age // 60} min ago: no newer "
                              "mark has reached the standby since)", "data_loss_window"))
        stale_after = 3 * cfg.schedules.log_shipping_minutes * 60 + 300
        if age > stale_after:
            reasons.append(Reason.advised(
                "warn", f"the status was measured {age // 60} min ago ({status.written_at}): dr_log_shipping "
                        f"records it every {cfg.schedules.log_shipping_minutes} min", "status_stale"))
    roles = read_roles(cfg.sites.standby.landing_dir)
    hold = BackupHold(roles.backups_held_by, roles.backups_held_since) if roles.backups_held_by else None
    validation = _validation(records)
    if validation is not None and not validation.passed:
        what = ", ".join(validation.failed_databases) or validation.problem or "see its report"
        reasons.append(Reason.advised("warn", f"the last restore validation ({validation.run_id}) FAILED: {what}",
                                      "validation_failed"))
    health = max((r.level for r in reasons), key=LEVELS.__getitem__, default="ok")
    return DrView(
        group=cfg.group.name, now=now.isoformat(timespec="seconds"), health=health, reasons=tuple(reasons),
        status=status, status_age_seconds=age,
        history_now=history_now.isoformat(timespec="seconds") if history_now else None, window=window,
        validation=validation, failover=_failover(records),
        hold=hold, primary_site=roles.primary_site,
        history=tuple(read(records, now - dt.timedelta(days=HISTORY_DAYS))),
        warn_minutes=cfg.rpo.warn_minutes, critical_minutes=cfg.rpo.critical_minutes)


@dataclass(frozen=True)
class GroupView:
    """One group of a deployment of several: its view, or why its file gives none."""

    key: str  # the group's key (its file's name without .yaml): what its DAG ids end with
    file: str
    view: DrView | None  # None: the file does not validate and no valid version of it was ever seen
    problems: tuple[str, ...] = ()  # the file's problems (file:line), also while the DAGs run on its last valid version

    @property
    def health(self) -> str:
        return self.view.health if self.view is not None else "critical"

    def as_json(self) -> dict[str, Any]:
        head = {"key": self.key, "file": self.file, "config_problems": list(self.problems)}
        return head | (self.view.as_json() if self.view is not None else {"group": None, "health": "critical"})


def group_view(key: str, file: str, cfg: GroupConfig | None, problems: Sequence[str] = (),
               now: dt.datetime | None = None) -> GroupView:
    """The view of group ``key``: ``cfg`` is what its DAGs run on (None: nothing, its file never validated);
    ``problems``, its file's problems while it does not validate (a WARN on the view: the DAGs run on the
    last valid version)."""
    if cfg is None:
        return GroupView(key, file, None, tuple(problems))
    view = dr_view(cfg, now)
    if problems:
        reason = Reason.advised("warn", f"{file} does not validate ({len(problems)} problem(s); {problems[0]}): the "
                                        "DAGs run on its last valid version", "config_file_broken", file=file)
        view = dataclasses.replace(view, reasons=(*view.reasons, reason),
                                   health=max(view.health, "warn", key=LEVELS.__getitem__))
    return GroupView(key, file, view, tuple(problems))


def _recorded_window_level(status: StandbyStatus) -> str:
    levels = [r.level for r in status.reasons if r.advice_key == "data_loss_window"]
    return max(levels, key=LEVELS.__getitem__, default="ok")


# ---------------------------------------------------------------------------------------------- for the plugin
_SECRET = re.compile(r"(?i)\b(pwd|password|passwd|secret|token)"  # the key,
                     r"([\"']?\s*[=:]\s*)"  # = or : (after a closing quote in JSON-like text),
                     r"(\"[^\"]*\"|'[^']*'|\{[^}]*\}|[^;,\s\"']+)")  # the value: quoted, braced (ODBC) or bare


def redact(text: str) -> str:
    """``text`` with any ``password=...``-like value (an ODBC connection string in an error) replaced by ***."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


@dataclass(frozen=True)
class MetricValues:
    group: str
    health: int
    status_age_seconds: int | None
    databases: dict[str, dict[str, float | None]]  # metric -> database -> value (None: +Inf)


def metric_values(view: DrView) -> MetricValues:
    """The Prometheus metrics of a view: per database the data-loss window now (None: the database cannot reach
    a mark), the restore lag now, the last validation's outcome for it (absent before any validation)."""
    loss: dict[str, float | None] = {}
    lag: dict[str, float | None] = {}
    validated: dict[str, float | None] = {}
    if view.status is not None:
        age = view.status_age_seconds or 0
        for db in view.status.databases:
            reachable = db.can_reach is not False and view.window.minutes is not None
            loss[db.name] = round(view.window.minutes * 60) if reachable else None
            if db.restore_lag_seconds is not None:
                lag[db.name] = db.restore_lag_seconds + age
    if view.validation is not None and view.status is not None:
        failed = set(view.validation.failed_databases)
        for db in view.status.databases:
            validated[db.name] = 0.0 if (db.name in failed or not view.validation.passed) else 1.0
    return MetricValues(view.group, LEVELS[view.health], view.status_age_seconds,
                        {"data_loss_seconds": loss, "restore_lag_seconds": lag,
                         "last_validation_success": validated})


def record_path(cfg: GroupConfig, kind: str, folder: str, name: str) -> Path | None:
    """One record file of a run (``RECORD_FILES``), inside the standby site's records folder; None if absent."""
    if name not in RECORD_FILES.get(kind, ()):
        return None
    root = (state_dir(cfg.sites.standby.landing_dir) / kind).resolve()
    path = (root / folder / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def records_of_run(cfg: GroupConfig, kind: str, run_id: str) -> tuple[str, list[str]]:
    """The folder name of a DAG run's records and which record files it holds."""
    folder = run_folder_name(run_id)
    return folder, [n for n in RECORD_FILES.get(kind, ()) if record_path(cfg, kind, folder, n) is not None]
