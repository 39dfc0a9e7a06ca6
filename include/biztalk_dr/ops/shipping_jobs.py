"""The log-shipping DAG's steps with their servers and files: each function is one task's work.

Pure planning and checks live in ``log_shipping``, the file and restore effects in ``shipped_files`` and
``standby_restore``; this module reads the primary's history and msdb, and runs them per task. Everything that changes the standby happens under the standby lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biztalk_dr.backup_files import BackupSetHeader
from biztalk_dr.domain import log_shipping, tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow, newest_complete_full
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupSetProblem,
    BizTalkDrError,
    DataLossWindowExceeded,
    FirstFullSetPending,
    LandingUnwritable,
    PreflightError,
    SetupError,
    ShippedFileDamaged,
    ShippingError,
    SourceUnverified,
    SqlConnectionError,
    StandbyStateUnreadable,
)
from biztalk_dr.domain.paths import plain_file_name
from biztalk_dr.ops import (
    backup_jobs,
    first_full_set,
    shipped_files,
    source_checks,
    standby_restore,
    standby_status,
    status_history,
)
from biztalk_dr.ops.atomic_files import READABLE, write_json_atomically
from biztalk_dr.ops.failover import StandbyObservation
from biztalk_dr.ops.manifest import Manifest, is_shipped_and_verified, read_manifest, shipped_header
from biztalk_dr.ops.sqlserver import SqlServer
from biztalk_dr.ops.standby_state import StandbyState, locked_state, read_state, state_dir

__all__ = ["stood_down", "find_sets_to_ship", "ship_files_of_database", "restore_standby", "check_data_loss_window",
           "reseed_standby", "status", "sets_from_manifests", "primary_sets_and_clock", "observe_standby",
           "recopier", "source_damaged", "STATUS_FILE"]

log = logging.getLogger("biztalk_dr.shipping")

STATUS_FILE = "status.json"
_HISTORY_ROWS = 5000


def _primary_sets(cfg: GroupConfig) -> list[BackupSet]:
    try:
        with backup_jobs.management_server(cfg) as server:
            return backup_jobs.read_sets(cfg, server, limit=_HISTORY_ROWS)
    except SqlConnectionError as exc:
        raise _primary_unreachable(cfg, exc) from exc


def _primary_unreachable(cfg: GroupConfig, exc: SqlConnectionError) -> ShippingError:
    return ShippingError([f"the primary cannot be reached: {exc}"],
                         advice=advice("primary_unreachable", conn_id=exc.conn_id or "its Airflow connection"),
                         number=exc.number)


def primary_sets_and_clock(cfg: GroupConfig) -> tuple[list[BackupSet], dt.datetime]:
    """The primary's backup sets and ``now`` in the history's clock, over one connection."""
    with backup_jobs.management_server(cfg) as mgmt:
        return backup_jobs.read_sets(cfg, mgmt, limit=_HISTORY_ROWS), backup_jobs.history_clock_now(cfg, mgmt)


def _database_names(cfg: GroupConfig) -> list[str]:
    return [d.name for d in cfg.databases]


def stood_down(cfg: GroupConfig) -> str:
    """Why log shipping must not run (the standby was promoted by dr_failover); empty when it may."""
    from biztalk_dr.ops.site_roles import read_roles

    roles = read_roles(cfg.sites.standby.landing_dir)
    if not roles.standby_is_primary:
        return ""
    return (f"the standby site is the primary since {roles.failed_over_at} (dr_failover to mark "
            f"{roles.mark}): log shipping stands down until the old primary is re-seeded as the new standby "
            "and the configuration's sites are swapped")


def find_sets_to_ship(cfg: GroupConfig) -> dict[str, Any]:
    """The complete sets to ship, the partial ones (reported, never shipped), and one mapping entry per
    database of the group."""
    sets = _primary_sets(cfg)
    plan = log_shipping.plan_shipping(sets, read_state(cfg.sites.standby.landing_dir), _database_names(cfg))
    for bset in plan.partial:
        log.warning("set %s (%s) is partial (SetComplete = 0): it is never shipped; the standby waits for the next "
                    "complete full set to go past it", bset.set_id, bset.mark_name)
    if plan.waiting:
        log.warning("nothing to ship: %s", plan.waiting)
    ids = [s.set_id for s in plan.sets]
    return {**plan.as_json(), "to_ship": [{"database": name, "set_ids": ids} for name in _database_names(cfg)]}


def ship_files_of_database(cfg: GroupConfig, database: str, set_ids: Sequence[int], *,
                           send_warning: Callable[[str, str], None] | None = None) -> list[str]:
    """Ship and prove this database's file of every set, oldest first. A file that cannot be shipped
    requests a full backup at the source (the chain cannot continue without it) and fails the task. A file
    shipped and verified before that is gone from the landing folder (or cut short) is shipped again, and
    ``send_warning`` says so: something removes files there."""
    if not set_ids:
        return ["nothing to ship"]
    vanished: list[str] = []
    try:
        return _ship_files(cfg, database, set_ids, vanished)
    except SqlConnectionError as exc:
        raise _primary_unreachable(cfg, exc) from exc
    finally:
        if vanished and send_warning is not None:
            send_warning(f"WARNING: {database}: file(s) shipped and verified before were gone from the landing folder "
                         "(or had another size) and were shipped again from the source:"
                         + "".join(f"\n- {v}" for v in vanished),
                         advice("shipped_copy_vanished", path=cfg.sites.standby.landing_dir))


def _vanished(cfg: GroupConfig, row: HistoryRow) -> str:
    """Why this row's file counts as vanished from the landing folder (a verified manifest without its file, or
    with another size); empty when it does not."""
    earlier = read_manifest(cfg.sites.standby.landing_dir, plain_file_name(row.base_name))
    if earlier is None or earlier.verified_at is None or shipped_files.row_shipped(cfg, row):
        return ""
    return f"{earlier.file_name} (set {earlier.set_id}), shipped and verified at {earlier.verified_at}"


def _ship_files(cfg: GroupConfig, database: str, set_ids: Sequence[int], vanished: list[str]) -> list[str]:
    with backup_jobs.management_server(cfg) as mgmt:
        history = backup_jobs.read_sets(cfg, mgmt, limit=_HISTORY_ROWS)
        rows = [(s, r) for s in history if s.set_id in set(set_ids) and (r := s.row_for(database)) is not None]
        entries = shipped_files.catalog_entries(mgmt, [r.sql_path for _, r in rows])
        done: list[str] = []
        failed: list[ShippingError] = []
        for bset, row in rows:
            gone = _vanished(cfg, row)
            try:
                _, what = shipped_files.ship_database_file(
                    cfg, bset, row, entry=entries.get(row.sql_path),
                    previous=_previous_log(cfg, history, bset, database) if row.backup_type == "lg" else None,
                    source=backup_jobs.worker_file(cfg, row))
            except ShippingError as exc:  # go on: a later full set is what a re-seed needs shipped
                failed.append(exc)
                what = f"NOT SHIPPED: {exc}"
            else:
                if gone:
                    vanished.append(gone)
                    what += f" (it was gone from the landing folder: {gone})"
            done.append(f"set {bset.set_id} {bset.mark_name}: {what}")
            log.info("%s: set %s: %s", database, bset.set_id, what)
        if failed:
            # a chain that cannot continue needs the next full set; a full landing folder or a file that already
            # requested one when its read-back failed does not (their advice says so)
            if any(not isinstance(exc, LandingUnwritable | SourceUnverified) for exc in failed):
                backup_jobs.request_full_backup(cfg, mgmt)
            first = failed[0]
            raise type(first)([p for exc in failed for p in exc.problems], advice=first.advice)
    return done


def _previous_log(cfg: GroupConfig, history: Sequence[BackupSet], bset: BackupSet, database: str):
    """The shipped manifest of this database's log in the newest complete log set before ``bset``, which this
    log must continue — none when a partial set lies between (the chain was broken there on purpose)."""
    for earlier in reversed([s for s in history if s.set_id < bset.set_id]):
        if not earlier.complete:
            return None
        if earlier.kind == "log":
            row = earlier.row_for(database)
            return read_manifest(cfg.sites.standby.landing_dir, plain_file_name(row.base_name)) if row else None
    return None


def restore_standby(cfg: GroupConfig, *, send_warning: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Bring every standby database to the set before the newest complete one, set by set, seeding any
    standby database that does not exist yet from the newest shipped full set. A shipped file that fails its
    content check (or that SQL Server finds damaged) is quarantined and copied once more from the source, and
    ``send_warning`` says so (the landing disk damaged a file); when the source is damaged too, a full backup is
    requested at the source and the run fails saying so."""
    sets = _primary_sets(cfg)
    copier = _RecordingRecopier(cfg, sets)
    try:
        with locked_state(cfg.sites.standby.landing_dir, purpose="dr_log_shipping restore") as session:
            _refuse_unknown_standby_databases(cfg, session.state)
            plan = log_shipping.plan_standby_restores(sets, session.state, _database_names(cfg),
                                                      lambda r: shipped_files.row_shipped(cfg, r),
                                                      lambda r: shipped_files.row_source_failed(cfg, r))
            for note in plan.notes:
                log.info("standby: %s", note)
            try:
                done = standby_restore.restore_on_standby(cfg, plan.steps, session, recopy=copier)
            except ShippedFileDamaged as exc:
                if exc.source_bad:
                    raise source_damaged(cfg, exc) from exc
                raise
            state = session.state
    finally:
        copier.warn(send_warning)
    if plan.blocked:
        raise ShippingError([f"the standby cannot go on: {plan.blocked}" + (f" (restored now: {len(done)} step(s))"
                                                                            if done else "")],
                            advice=advice("partial_set_blocks"))
    positions = {name: state.of(name).last_restored_set for name in _database_names(cfg)}
    return {"restored": done, "notes": list(plan.notes), "positions": positions}


class _RecordingRecopier:
    """The recopy callback of a standby restore, remembering what it copied again: a file the landing disk damaged
    and a second copy replaced is worth a warning (the disk may damage the next one), though the run goes on."""

    def __init__(self, cfg: GroupConfig, sets: Sequence[BackupSet]) -> None:
        self._cfg = cfg
        self._recopy = recopier(cfg, sets)
        self.steps: list[log_shipping.StandbyStep] = []

    def __call__(self, step: log_shipping.StandbyStep) -> None:
        self._recopy(step)
        self.steps.append(step)

    def warn(self, send_warning: Callable[[str, str], None] | None) -> None:
        landing = Path(self._cfg.sites.standby.landing_dir)
        replaced = [s for s in self.steps if is_shipped_and_verified(landing, s.file_name)]
        if not replaced or send_warning is None:
            return
        why = shipped_files.quarantined_files(landing)
        send_warning("WARNING: shipped file(s) damaged in the landing folder were quarantined, copied again from the "
                     "source and restored from the new copy:" + "".join(
                         f"\n- set {s.set_id} ({s.mark_name}), {s.database}, {s.file_name}: {why.get(s.file_name, '?')}"
                         for s in replaced),
                     advice("shipped_copy_recopied", quarantine=landing / shipped_files.QUARANTINE_DIR))


def recopier(cfg: GroupConfig, sets: Sequence[BackupSet] | None = None) -> standby_restore.Recopy:
    """Ships a step's file again from the source, as ship_files_of_database would (catalog and chain checked);
    ``sets`` None: the primary's history is read when a file is first copied again."""
    known: list[BackupSet] = list(sets) if sets is not None else []

    def recopy(step: log_shipping.StandbyStep) -> None:
        if not known:
            known.extend(_primary_sets(cfg))
        bset = next(s for s in known if s.set_id == step.set_id)
        row = bset.row_for(step.database)
        assert row is not None
        with backup_jobs.management_server(cfg) as mgmt:
            entries = shipped_files.catalog_entries(mgmt, [row.sql_path])
        shipped_files.ship_database_file(
            cfg, bset, row, entry=entries.get(row.sql_path),
            previous=_previous_log(cfg, known, bset, step.database) if row.backup_type == "lg" else None,
            source=backup_jobs.worker_file(cfg, row))
    return recopy


def source_damaged(cfg: GroupConfig, exc: ShippedFileDamaged) -> ShippedFileDamaged:
    """The source file is damaged too: it is recorded as such (log shipping never ships it again as good, so the
    standby waits for the full set, as after a failed read-back), the full backup the standby now needs is
    requested, and the error to raise says so."""
    source_checks.record_read_back_failure(cfg.sites.standby.landing_dir, exc.file_name,
                                           "damaged in two copies (at the standby site): " + "; ".join(exc.problems))
    try:
        with backup_jobs.management_server(cfg) as mgmt:
            backup_jobs.request_full_backup(cfg, mgmt)
    except SqlConnectionError as unreachable:
        return ShippedFileDamaged(exc.problems + [f"the full backup could not be requested: {unreachable}"],
                                  advice=advice("source_copy_bad_full_not_requested", quarantine=exc.quarantined,
                                                why=unreachable), number=exc.number, file_name=exc.file_name,
                                  quarantined=exc.quarantined, source_bad=True)
    return ShippedFileDamaged(exc.problems, advice=advice("source_copy_bad_too", quarantine=exc.quarantined),
                              number=exc.number, file_name=exc.file_name, quarantined=exc.quarantined,
                              source_bad=True)


def _refuse_unknown_standby_databases(cfg: GroupConfig, state) -> None:
    """A standby database biztalk-dr has no record of is never restored over: it may be someone's work."""
    unknown = [d for d in _database_names(cfg) if state.of(d).last_restored_set is None]
    if not unknown:
        return
    for key, inst in cfg.sites.standby.instances.items():
        names = [d.name for d in cfg.databases if d.name in unknown and cfg.instance_of(d, "standby") == key]
        if not names:
            continue
        with SqlServer(inst.conn_id) as server:
            rows = server.query(tsql.database_states())
        existing = {str(r["name"]).lower(): str(r["state_desc"]) for r in rows}
        clash = [f"{n} ({existing[n.lower()]})" for n in names if n.lower() in existing]
        if clash:
            raise PreflightError(
                [f"{inst.server_name} already has {', '.join(clash)}, which biztalk-dr has not restored (no record "
                 f"in {state_dir(cfg.sites.standby.landing_dir)})"],
                advice=advice("standby_unknown_databases"))


def check_data_loss_window(cfg: GroupConfig, *, send_warning, run: str = "") -> dict[str, Any]:
    """What the standby can deliver now (``standby_status``), written to the status file and its history (``run``:
    the DAG run that measured it, for the status page's links); warn alerts with the reasons, critical fails with
    them. A new group waiting for its first full set has its status recorded, then raises FirstFullSetPending
    with the reason (the task skips)."""
    report = _write_status(cfg, status(cfg), run)
    if report["health"] == "waiting":
        raise FirstFullSetPending(report["waiting"])
    numbers = (f"data-loss window {report['data_loss']}; thresholds: warn at {cfg.rpo.warn_minutes} min, "
               f"critical at {cfg.rpo.critical_minutes} min")
    why = "".join(f"\n- {r['level'].upper()}: {r['reason']}" for r in report["reasons"])
    what = advice("data_loss_window") if all(r["advice_key"] == "data_loss_window" for r in report["reasons"]) \
        else advice("standby_cannot_deliver") + " " + advice("data_loss_window")
    if report["health"] == "critical":
        raise DataLossWindowExceeded(f"CRITICAL: {numbers}{why}", what)
    if report["health"] == "warn":
        send_warning(f"WARNING: {numbers}{why}", what)
    return report


def observe_standby(cfg: GroupConfig) -> dict[str, StandbyObservation]:
    """What each standby instance says of the group's databases: state, and where its newest restore stopped.
    Raises SqlConnectionError when an instance cannot be reached."""
    observed: dict[str, StandbyObservation] = {}
    for key, inst in cfg.sites.standby.instances.items():
        names = [d.name for d in cfg.databases if cfg.instance_of(d, "standby") == key]
        with SqlServer(inst.conn_id) as server:
            states = {str(r["name"]).lower(): str(r["state_desc"])
                      for r in server.query(tsql.database_states())}
            stops: dict[str, str | None] = {}
            for row in server.query(tsql.stop_at_marks()):
                stops[str(row["name"]).lower()] = row["mark"]
        for name in names:
            observed[name] = StandbyObservation(name, states.get(name.lower()), stops.get(name.lower()))
    return observed


def _write_status(cfg: GroupConfig, record: standby_status.StandbyStatus, run: str) -> dict[str, Any]:
    """The status file (the last measured status, atomically) and one line of the status history (the status
    page's chart); returns the report as recorded."""
    folder = state_dir(cfg.sites.standby.landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = dataclasses.replace(record, written_at=written, run=run).as_json()
    write_json_atomically(folder / STATUS_FILE, report, default=str, mode=READABLE)
    status_history.append(folder, status_history.Point(
        written, record.health, record.data_loss_seconds, record.reachable_mark, run))
    return report


def reseed_standby(cfg: GroupConfig, *, dry_run: bool) -> dict[str, Any]:
    """Restore the newest complete full set and every later set but the newest on the standby WITH REPLACE,
    NORECOVERY. Refuses if any file of that full set is not shipped and verified."""
    sets = _primary_sets(cfg)
    complete = [s for s in sets if s.complete]
    full = newest_complete_full(complete[:-1]) if len(complete) > 1 else None
    if full is None:
        raise PreflightError(["no complete full set older than the newest complete set: nothing to re-seed from"],
                             advice=advice("reseed_needs_full"))
    missing = [r.sql_path for r in full.rows if not shipped_files.row_shipped(cfg, r)]
    if missing:
        raise PreflightError([f"full set {full.set_id} ({full.mark_name}) is not all shipped and verified: "
                              + ", ".join(missing)],
                             advice=advice("reseed_needs_shipped_full"))
    fresh = StandbyState()  # a re-seed starts from nothing: it needs no earlier state (nor a readable one)
    plan = log_shipping.plan_standby_restores([s for s in sets if s.set_id >= full.set_id], fresh,
                                              _database_names(cfg), lambda r: shipped_files.row_shipped(cfg, r))
    if dry_run:
        return {"dry_run": True, "full_set": full.set_id, "steps": [s.as_json() for s in plan.steps],
                "notes": list(plan.notes)}
    with locked_state(cfg.sites.standby.landing_dir, purpose="dr_standby_reseed", rebuild=True) as session:
        kept = session.set_aside  # an unreadable state file, kept aside: the re-seed needs none
        session.save(fresh)
        try:
            done = standby_restore.restore_on_standby(cfg, plan.steps, session, replace=True,
                                                   recopy=recopier(cfg, sets))
        except ShippedFileDamaged as exc:
            raise (source_damaged(cfg, exc) if exc.source_bad else exc) from exc
        if kept:
            done.append(f"the unreadable standby state file was kept aside as {kept}; a new one was written")
    return {"dry_run": False, "full_set": full.set_id, "restored": done, "notes": list(plan.notes)}


def status(cfg: GroupConfig) -> standby_status.StandbyStatus:
    """For ``biztalk-dr status`` and the data-loss check: what the standby can deliver now, from the standby as it
    is (its databases' states, where their restores stopped, the standby state, the shipped and verified files)
    and the primary's history — or, when the primary does not answer, the standby's manifests."""
    landing = cfg.sites.standby.landing_dir
    try:
        state = read_state(landing)
    except StandbyStateUnreadable as exc:
        state, state_problem = StandbyState(), str(exc)
    else:
        state_problem = ""
    sets_problem = ""
    try:
        sets, now = primary_sets_and_clock(cfg)
        reachable = True
    except SetupError:
        raise
    except (SqlConnectionError, BizTalkDrError) as exc:
        log.warning("the primary cannot be read (%s): status from the standby's records", exc)
        now, reachable = dt.datetime.now(dt.UTC).replace(tzinfo=None), False
        try:
            sets = sets_from_manifests(cfg)
        except BackupSetProblem as problem:  # which primary's sets the files are cannot be told: nothing to deliver
            sets, sets_problem = [], str(problem)
    try:
        observed: dict[str, StandbyObservation] | None = observe_standby(cfg)
        standby_error = ""
    except SetupError:
        raise
    except SqlConnectionError as exc:
        observed, standby_error = None, str(exc)
    left = first_full_set.grace_left(cfg, sets, now=now, seen=first_full_set.first_seen(landing))
    report = standby_status.standby_report(
        cfg, sets, state, now, shipped=lambda r: shipped_files.row_shipped(cfg, r), observed=observed,
        quarantined=shipped_files.quarantined_files(Path(landing)),
        source_failed=lambda r: shipped_files.row_source_failed(cfg, r), source_reachable=reachable,
        standby_error=standby_error, headers=lambda r: shipped_files.row_header(cfg, r),
        waiting="" if state_problem or sets_problem else first_full_set.standby_waiting(cfg, sets, state, left))
    if sets_problem:
        report = report.with_reason(standby_status.Reason.advised("critical", sets_problem, "shipped_sets_ambiguous"),
                                    first=True)
    if state_problem:
        report = report.with_reason(standby_status.Reason.advised(
            "critical", state_problem, "standby_state_unreadable", kept="standby-state.json.unreadable-<time>"),
            first=True)
    return report


def sets_from_manifests(cfg: GroupConfig) -> list[BackupSet]:
    """The configured primary's shipped sets as the manifests at the standby site describe them (the primary is
    gone). After a failover the landing folder holds two primaries' files, and each primary's adm_BackupHistory
    numbers its own sets, so their set ids overlap: a set is one primary's set id (the server in each file's header,
    as the configuration's sites name it), never a merge of two primaries' files that share an id. Where that
    cannot be told, or one set holds two files of one database (other BackupSetGUIDs or recovery branches: a
    history that restarted on one server), BackupSetProblem names the files; nothing is guessed."""
    landing = Path(cfg.sites.standby.landing_dir)
    by_set: dict[tuple[str, int], list[_ShippedFile]] = {}
    unknown: list[_ShippedFile] = []
    for path in sorted(landing.glob("*.manifest.json")):
        manifest = read_manifest(landing, path.name.removesuffix(".manifest.json"))
        if manifest is None or manifest.verified_at is None:
            continue
        shipped = _ShippedFile(manifest, _header_or_none(landing, manifest))
        if shipped.header is None:
            unknown.append(shipped)
        else:
            by_set.setdefault((_source_of(cfg, shipped.header.server_name), manifest.set_id), []).append(shipped)
    _place_unknown(by_set, unknown)
    sources = {source for source, _ in by_set}
    wanted = "primary" if len(sources) > 1 else next(iter(sources), "primary")
    if wanted not in sources:
        raise BackupSetProblem(None, [f"the landing folder {landing} holds the backups of several servers ("
                                      f"{', '.join(sorted(sources))}), none of them the configured primary's ("
                                      f"{_servers(cfg, 'primary')}): whose sets to plan with cannot be told"],
                               advice=advice("shipped_sets_ambiguous"))
    mine = sorted(((i, files) for (source, i), files in by_set.items() if source == wanted), key=lambda item: item[0])
    for set_id, files in mine:
        _refuse_two_files_of_one_database(set_id, files)
    _refuse_two_eras_in_one_set(mine, {d.name.lower() for d in cfg.databases})
    sets = []
    for set_id, files in mine:
        rows = tuple(f.row() for f in sorted(files, key=lambda f: f.manifest.file_name))
        sets.append(BackupSet(set_id, rows[0].mark_name, "full" if all(r.backup_type == "db" for r in rows) else "log",
                              max(r.backup_time for r in rows), len(rows) == len(cfg.databases), rows))
    left = sorted(f"{s} set {i}" for s, i in by_set if s != wanted)
    if left:
        log.info("shipped sets of other servers than the configured primary's, not planned with: %s", ", ".join(left))
    return sets


@dataclass(frozen=True)
class _ShippedFile:
    manifest: Manifest
    header: BackupSetHeader | None  # None: an old manifest beside a file that cannot be read

    def row(self) -> HistoryRow:
        m = self.manifest
        when = dt.datetime.fromisoformat(m.backup_time or m.shipped_at).replace(tzinfo=None)
        return HistoryRow(0, m.set_id, m.mark_name, m.database_name, self.header.server_name if self.header else "",
                          m.file_name, "", m.backup_type, when, True)  # type: ignore[arg-type]

    def identity(self) -> str:
        h = self.header
        if h is None:
            return f"{self.manifest.file_name} (its server, BackupSetGUID and recovery branch cannot be told)"
        return (f"{self.manifest.file_name} (server {h.server_name}, BackupSetGUID {h.backup_set_id or '?'}, "
                f"recovery branch {h.recovery_fork_id or '?'})")


def _header_or_none(landing: Path, manifest: Manifest) -> BackupSetHeader | None:
    try:
        return shipped_header(landing, manifest.file_name)
    except (OSError, ValueError, BizTalkDrError) as exc:
        log.warning("%s: the backup set's header cannot be had (%s)", manifest.file_name, exc)
        return None


def _source_of(cfg: GroupConfig, server: str) -> str:
    """The configuration's site whose instance wrote the file ("primary", "standby"), else the server's name."""
    for site in ("primary", "standby"):
        if any(i.server_name.lower() == server.lower() for i in getattr(cfg.sites, site).instances.values()):
            return site
    return f"server {server}"


def _servers(cfg: GroupConfig, site: str) -> str:
    return ", ".join(i.server_name for i in getattr(cfg.sites, site).instances.values()) or "none"


def _place_unknown(by_set: dict[tuple[str, int], list[_ShippedFile]], unknown: list[_ShippedFile]) -> None:
    """A file whose server cannot be told joins the one primary that used its set id (or the landing folder's only
    one); where two primaries used it, it could be either one's."""
    sources = {source for source, _ in by_set}
    for shipped in unknown:
        set_id = shipped.manifest.set_id
        candidates = sorted(source for source, i in by_set if i == set_id) or sorted(sources)
        if len(candidates) > 1:
            others = [f.identity() for source in candidates for f in by_set.get((source, set_id), [])
                      if f.manifest.database_name.lower() == shipped.manifest.database_name.lower()]
            raise BackupSetProblem(set_id, [
                f"set {set_id}: {shipped.identity()} could be the set of any of {', '.join(candidates)}"
                + (f"; beside it: {'; '.join(others)}" if others else "")],
                advice=advice("shipped_sets_ambiguous"))
        by_set.setdefault((candidates[0] if candidates else "primary", set_id), []).append(shipped)


def _refuse_two_eras_in_one_set(sets: Sequence[tuple[int, Sequence[_ShippedFile]]], databases: set[str]) -> None:
    """One server's history may restart (a failback to it, its management database re-created), so one set id
    may name two of its eras' sets. A database's recovery branch changes only when it is restored and recovered,
    which starts an era: each database's branches, counted from its newest set back, give each file its era, and
    a set whose files are of two eras is refused naming them. Only the group's databases count (one the
    configuration no longer lists has no files of the later era to count from)."""
    era: dict[str, int] = {}
    by_database: dict[str, list[_ShippedFile]] = {}
    for _, files in sets:
        for shipped in files:
            if shipped.manifest.database_name.lower() in databases:
                by_database.setdefault(shipped.manifest.database_name.lower(), []).append(shipped)
    for files in by_database.values():
        count, fork = 0, None
        for shipped in reversed(files):  # newest set first
            branch = shipped.header.recovery_fork_id if shipped.header else None
            if branch is not None:
                count, fork = count + (fork is not None and branch != fork), branch
            era[shipped.manifest.file_name] = count
    for set_id, all_files in sets:
        files = [f for f in all_files if f.manifest.file_name in era]
        if not files:
            continue
        odd = max(files, key=lambda f: era[f.manifest.file_name])
        other = min(files, key=lambda f: era[f.manifest.file_name])
        if era[odd.manifest.file_name] == era[other.manifest.file_name]:
            continue
        chain = by_database[odd.manifest.database_name.lower()]
        before, after = next((a, b) for a, b in itertools.pairwise(chain)
                             if era[a.manifest.file_name] != era[b.manifest.file_name])
        raise BackupSetProblem(set_id, [
            f"set {set_id} cannot be told: {odd.manifest.database_name}'s backups change recovery branch between "
            f"{before.identity()} (set {before.manifest.set_id}) and {after.identity()} (set {after.manifest.set_id}), "
            f"where {other.identity()} and the other databases' do not; one server numbered two eras' sets with the "
            "same ids (its history restarted) and which files make one set cannot be told"],
            advice=advice("shipped_sets_ambiguous"))


def _refuse_two_files_of_one_database(set_id: int, files: Sequence[_ShippedFile]) -> None:
    seen: dict[str, _ShippedFile] = {}
    for shipped in files:
        first = seen.setdefault(shipped.manifest.database_name.lower(), shipped)
        if first is not shipped:
            raise BackupSetProblem(set_id, [
                f"set {set_id} holds two backups of {shipped.manifest.database_name}: {first.identity()} and "
                f"{shipped.identity()}; which one is the set's cannot be told"], advice=advice("shipped_sets_ambiguous"))
