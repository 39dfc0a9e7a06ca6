"""Which shipped files may be deleted at the standby site, and why each other one is kept.

Shipped copies pile up in the landing folder until its disk is full and shipping stops. The source's
retention (``retention``) needs a verified copy here before it deletes there; this is the standby's side,
as careful: a file in the landing folder is deleted only when **none** of these holds (the first that holds
is the reason it is kept, logged):

1. it is not shipped and verified (no verified manifest, or another size: being shipped, quarantined, left by
   hand) — or it is no backup file biztalk-dr shipped at all;
2. the standby still has to restore it: its database has no restore on the standby yet, or its set is after the
   database's last restored set (``standby-state.json``);
3. it is in one of the newest ``retention.standby.keep_full_chains`` complete full chains (a complete full set —
   every database's file shipped and verified — and every later set up to the next one); the newest is the
   newest restorable chain, which a re-seed and a failover use. With fewer complete full chains than that,
   nothing is deleted;
4. it is in the newest validated chain (the newest passed ``dr_restore_validation`` report: its full set to
   the set it proved);
5. it is younger than ``retention.standby.keep_days``.

Neither Ola Hallengren's nor dbatools' retention counts chains (they go by age): age alone can delete the
only full a chain has. ``retention.standby.delete`` is false by default — a dry run that logs what it would
delete — so an upgrade deletes nothing until an operator has read the decisions and turned it on.

A deletion is two steps, each safe to crash after: the manifest moves to ``.biztalk-dr/retired/`` (one
rename: from then on nothing trusts the file), then the file is deleted; the next run finishes a deletion a
crash interrupted (a retired manifest whose file is still there). The retired manifest stays as the record that
the file was shipped, verified and deleted on purpose (the source's retention counts it as shipped), and is
pruned once older than the source's history (``retention.history_days``) and the source's file retention.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.paths import inside_root, plain_file_name
from biztalk_dr.ops.manifest import (
    MANIFEST_SUFFIX,
    RETIRED_DIR,
    Manifest,
    manifest_path,
    read_manifest,
    retire_manifest,
)
from biztalk_dr.ops.standby_state import locked_state

__all__ = ["ShippedFile", "Decision", "plan_standby_retention", "newest_validated_chain", "landing_files",
           "apply_standby_retention", "retain_landing_folder", "space_warning"]

log = logging.getLogger("biztalk_dr.ops.standby_retention")


@dataclass(frozen=True)
class ShippedFile:
    """A file in the landing folder, as its manifest describes it (``manifest`` None: it has none)."""

    name: str
    size: int
    manifest: Manifest | None

    @property
    def verified(self) -> bool:
        m = self.manifest
        return m is not None and m.verified_at is not None and m.size == self.size


@dataclass(frozen=True)
class Decision:
    file: ShippedFile
    delete: bool
    reason: str

    def __str__(self) -> str:
        m = self.file.manifest
        what = f" (set {m.set_id}, {m.database_name})" if m is not None else ""
        return f"{'delete' if self.delete else 'keep'} {self.file.name}{what}: {self.reason}"


def _time(manifest: Manifest) -> dt.datetime:
    return dt.datetime.fromisoformat(manifest.backup_time or manifest.shipped_at).replace(tzinfo=None)


def plan_standby_retention(files: Sequence[ShippedFile], *, databases: Sequence[str],
                           restored: Mapping[str, int | None], validated: tuple[int, int, str] | None,
                           now: dt.datetime, keep_days: int, keep_full_chains: int) -> list[Decision]:
    """A decision for every file. ``restored``: each database's last set restored on the standby (None: none
    yet); ``validated``: (full set, proved set, run) of the newest passed validation; ``now`` in the clock of
    the manifests' backup times (the primary's history)."""
    if keep_days < 1 or keep_full_chains < 1:
        raise ValueError("keep_days and keep_full_chains must be at least 1")
    by_set: dict[int, dict[str, ShippedFile]] = {}
    for f in files:
        if f.verified:
            by_set.setdefault(f.manifest.set_id, {})[f.manifest.database_name.lower()] = f
    wanted = {d.lower() for d in databases}
    complete_fulls = sorted(set_id for set_id, of in by_set.items()
                            if set(of) >= wanted and all(of[d].manifest.backup_type == "db" for d in wanted))
    keep_from = complete_fulls[-keep_full_chains] if len(complete_fulls) >= keep_full_chains else None
    cutoff = now - dt.timedelta(days=keep_days)
    decisions = []
    for f in files:
        m = f.manifest
        if m is None:
            decisions.append(Decision(f, False, "no manifest: not a file biztalk-dr shipped and verified (being "
                                                "shipped, or left by hand)"))
            continue
        if not f.verified:
            decisions.append(Decision(f, False, "not shipped and verified (manifest unverified or another size)"))
            continue
        last = next((v for k, v in restored.items() if k.lower() == m.database_name.lower()), None)
        if last is None:
            decisions.append(Decision(f, False, f"{m.database_name} has no restore on the standby yet: the standby "
                                                "may still need it"))
        elif m.set_id > last:
            decisions.append(Decision(f, False, f"not restored on the standby yet ({m.database_name}'s last restored "
                                                f"set is {last})"))
        elif keep_from is None:
            decisions.append(Decision(f, False, f"fewer than {keep_full_chains} complete full chain(s) at the "
                                                f"standby site ({len(complete_fulls)}): every file is kept"))
        elif m.set_id >= keep_from:
            decisions.append(Decision(f, False, f"in the newest {keep_full_chains} complete full chain(s) (full set "
                                                f"{keep_from} and later; the newest restorable chain starts at "
                                                f"full set {complete_fulls[-1]})"))
        elif validated is not None and validated[0] <= m.set_id <= validated[1]:
            decisions.append(Decision(f, False, f"in the newest validated chain (full set {validated[0]} to set "
                                                f"{validated[1]}, proved by restore validation {validated[2]})"))
        elif _time(m) > cutoff:
            decisions.append(Decision(f, False, f"younger than the standby retention of {keep_days} day(s)"))
        else:
            decisions.append(Decision(f, True, f"older than {keep_days} day(s), restored on the standby (last set "
                                               f"{last}), before the newest {keep_full_chains} complete full "
                                               f"chain(s) (full set {keep_from} and later)"
                                               + ("" if validated is None else
                                                  f" and the newest validated chain (sets {validated[0]}-"
                                                  f"{validated[1]})")))
    return decisions


def newest_validated_chain(landing_dir: str | Path) -> tuple[int, int, str] | None:
    """(full set, proved set, run) of the newest passed restore validation recorded at the standby site."""
    best: tuple[int, int, str] | None = None
    for report in (Path(landing_dir) / ".biztalk-dr" / "validation").glob("*/report.json"):
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            plan = json.loads((report.parent / "plan.json").read_text(encoding="utf-8"))
            if data.get("passed") is True and isinstance(data.get("set_id"), int):
                found = (int(plan["full_set_id"]), int(data["set_id"]), str(data.get("run_id") or report.parent.name))
                best = found if best is None or found[1] > best[1] else best
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("validation report %s cannot be read (%s): not counted", report, exc)
    return best


def landing_files(landing_dir: str | Path) -> list[ShippedFile]:
    """Every plain file of the landing folder (not its manifests, temporary files or sub-folders), with its
    manifest."""
    root = Path(landing_dir)
    files = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False) or entry.name.endswith(MANIFEST_SUFFIX) \
                or entry.name.startswith("."):
            continue
        manifest = None
        try:
            manifest = read_manifest(root, entry.name)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("the manifest of %s cannot be read (%s): the file is kept", entry.name, exc)
        files.append(ShippedFile(entry.name, entry.stat(follow_symlinks=False).st_size, manifest))
    return files


def _finish_interrupted(root: Path, *, delete: bool) -> list[str]:
    """Deletions a crash interrupted: a retired manifest whose file is still there, with no manifest of its own."""
    done = []
    retired = root / RETIRED_DIR
    if not retired.is_dir():
        return done
    for entry in sorted(retired.glob(f"*{MANIFEST_SUFFIX}")):
        name = entry.name.removesuffix(MANIFEST_SUFFIX)
        file = root / plain_file_name(name)
        if not file.exists() or manifest_path(root, name).exists():
            continue  # gone already, or shipped again since (its new manifest makes it a file like any other)
        if delete:
            inside_root(file, root).unlink()
            log.info("deleted %s: finishing its deletion, begun at %s (its manifest was retired, then the run "
                     "stopped)", name, dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC))
        else:
            log.info("would delete %s: its deletion was begun (manifest retired) and not finished", name)
        done.append(name)
    return done


def _prune_retired(root: Path, keep_days: int) -> int:
    cutoff = dt.datetime.now(dt.UTC).timestamp() - keep_days * 86400
    pruned = 0
    for entry in (root / RETIRED_DIR).glob(f"*{MANIFEST_SUFFIX}"):
        try:
            if entry.stat().st_mtime < cutoff and not (root / entry.name.removesuffix(MANIFEST_SUFFIX)).exists():
                entry.unlink()
                pruned += 1
        except OSError:
            pass
    return pruned


def apply_standby_retention(landing_dir: str | Path, *, databases: Sequence[str], restored: Mapping[str, int | None],
                            now: dt.datetime, keep_days: int, keep_full_chains: int, delete: bool,
                            retired_days: int) -> dict[str, Any]:
    """Plan and (``delete``) carry out the retention of the landing folder; every decision is logged. The
    caller holds the standby lock (no restore reads a file while it goes). ``retired_days``: how long a retired
    manifest is kept."""
    root = Path(landing_dir)
    finished = _finish_interrupted(root, delete=delete)
    decisions = plan_standby_retention(landing_files(root), databases=databases, restored=restored,
                                       validated=newest_validated_chain(root), now=now, keep_days=keep_days,
                                       keep_full_chains=keep_full_chains)
    deleted, freed = [], 0
    for d in decisions:
        if not d.delete:
            log.info("%s", d)
            continue
        if not delete:
            log.info("would %s (dry run: retention.standby.delete is false)", d)
            deleted.append(d.file.name)
            continue
        retire_manifest(root, d.file.name)  # from here nothing trusts the file
        inside_root(root / d.file.name, root).unlink()
        log.info("deleted %s", str(d).removeprefix("delete "))
        deleted.append(d.file.name)
        freed += d.file.size
    pruned = _prune_retired(root, retired_days) if delete else 0
    kept = sum(not d.delete for d in decisions)
    return {"dry_run": not delete, "deleted" if delete else "would_delete": deleted, "kept": kept,
            "bytes_freed": freed, "finished_interrupted": finished, "retired_manifests_pruned": pruned,
            "free_bytes": disk_free(root), "full_set_bytes": _newest_full_set_bytes(decisions, databases)}


def _newest_full_set_bytes(decisions: Sequence[Decision], databases: Sequence[str]) -> int:
    """The size of the newest complete full set still in the landing folder (0: none)."""
    fulls: dict[int, dict[str, int]] = {}
    for d in decisions:
        m = d.file.manifest
        if not d.delete and d.file.verified and m.backup_type == "db":
            fulls.setdefault(m.set_id, {})[m.database_name.lower()] = d.file.size
    complete = [of for _, of in sorted(fulls.items()) if set(of) >= {n.lower() for n in databases}]
    return sum(complete[-1].values()) if complete else 0


def disk_free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def space_warning(result: Mapping[str, Any], landing_dir: str | Path) -> str:
    """A warning when the landing folder cannot take two more full sets of the group's size (the next full set,
    and the one after it while retention still keeps the older chain); empty otherwise."""
    need = 2 * int(result.get("full_set_bytes") or 0)
    free = int(result.get("free_bytes") or 0)
    if not need or free >= need:
        return ""
    return (f"WARNING: {landing_dir} has {free / 1024**3:.2f} GB free; two full sets of the group need "
            f"{need / 1024**3:.2f} GB (the newest is {need / 2 / 1024**3:.2f} GB)"
            + (" — and retention is a dry run (retention.standby.delete: false)" if result.get("dry_run") else ""))


def retain_landing_folder(cfg: GroupConfig) -> dict[str, Any]:
    """dr_standby_retention's work: the landing folder's retention under the standby lock (never while a
    restore, a re-seed or a failover reads its files), with the standby state's last restored sets."""
    landing = cfg.sites.standby.landing_dir
    policy = cfg.retention.standby
    now = dt.datetime.now() if cfg.backup.use_local_time else dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with locked_state(landing, purpose="dr_standby_retention") as session:
        restored = {d.name: session.state.of(d.name).last_restored_set for d in cfg.databases}
        return apply_standby_retention(
            landing, databases=[d.name for d in cfg.databases], restored=restored, now=now,
            keep_days=policy.keep_days, keep_full_chains=policy.keep_full_chains, delete=policy.delete,
            retired_days=max(cfg.retention.history_days, cfg.retention.file_days) + 1)
