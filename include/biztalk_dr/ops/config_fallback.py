"""The group's last valid configuration: what the DAGs run on while the group's file is broken.

An operator's typo in the group's file (a 9-character mark prefix, an unknown key, a YAML error, a file
moved away) must not stop backups and shipping, nor silence the alerts whose targets are in that very
file. So every valid version of the file is kept as its **last valid copy**, and while the file does not
validate the DAGs parse and run on that copy; every run alerts with the file's problems
(``config_alerts``) until it is fixed. With no valid version ever seen there is nothing to fall back on:
the ``ConfigError`` (file:line of each problem) is raised, and the DAG files show it as their import error.

Where the copy lives: ``$BIZTALK_DR_STATE_DIR`` when set, else ``.biztalk-dr/`` beside the group's file.
Beside the file is a folder every worker reads already (they all read the file), and it outlives Airflow's
home; set BIZTALK_DR_STATE_DIR when the file's folder is read-only or replaced as a whole (a git-synced
bundle, a Kubernetes ConfigMap). One copy per group's file: its name carries a digest of the file's path.
A copy is written only with text that validated, atomically (temporary file, fsync, rename, fsync of the
folder) under a lock, and never replaced by an older version of the file: a crash leaves the old copy or
the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import ConfigError, ConfigProblem
from biztalk_dr.ops.atomic_files import write_text_atomically
from biztalk_dr.ops.config_files import read_config

__all__ = ["STATE_DIR_ENV_VAR", "Fallback", "copy_path", "current_fallback", "group_config", "last_valid",
           "state_dir"]

log = logging.getLogger("biztalk_dr.domain.config")

STATE_DIR_ENV_VAR = "BIZTALK_DR_STATE_DIR"

_lock = threading.Lock()
_saved: dict[str, tuple[int, int]] = {}  # file -> (mtime_ns, size) of the version this process has kept
_reported: dict[str, tuple] = {}  # file -> the broken version this process has logged
_fallbacks: dict[str, Fallback] = {}  # file -> the fallback in use, for the alerts


@dataclass(frozen=True)
class Fallback:
    """The group's file does not validate; the DAGs run on its last valid version."""

    file: str
    problems: tuple[ConfigProblem, ...]
    copy: str  # the last valid version in use
    saved: dt.datetime  # when that version was written (the file's modification time then, UTC)
    config: GroupConfig

    def text(self) -> str:
        lines = [f"{self.file} has {len(self.problems)} problem(s):", *(f"  {p}" for p in self.problems),
                 f"Every run uses its last valid version (of {self.saved:%Y-%m-%d %H:%M:%S} UTC, kept in "
                 f"{self.copy}) until the file is fixed."]
        return "\n".join(lines)


def state_dir(config_file: Path) -> Path:
    value = os.environ.get(STATE_DIR_ENV_VAR)
    return Path(value).expanduser().absolute() if value else config_file.parent / ".biztalk-dr"


def copy_path(config_file: Path) -> Path:
    digest = hashlib.sha256(str(config_file).encode()).hexdigest()[:12]
    return state_dir(config_file) / f"{config_file.name}.{digest}.last-valid"


def group_config(config_file: Path) -> GroupConfig:
    """The group's file if it validates (kept as the last valid copy), else that copy (the problems logged
    once per broken version); ConfigError when the file is broken and no valid copy exists."""
    version = _version(config_file)
    try:
        cfg, text = read_config(config_file)
    except ConfigError as exc:
        fallback = _fall_back(config_file, exc)
        if fallback is None:
            raise
        return fallback.config
    _fallbacks.pop(str(config_file), None)
    _reported.pop(str(config_file), None)
    if version is not None:
        _keep(config_file, text, version)
    return cfg


def current_fallback(config_file: Path) -> Fallback | None:
    """The fallback in use for ``config_file`` now; None while the file validates (or nothing validates: then
    the DAGs do not load at all, and say why)."""
    with contextlib.suppress(ConfigError):
        group_config(config_file)
    return _fallbacks.get(str(config_file))


def last_valid(config_file: Path) -> tuple[GroupConfig, Path, dt.datetime] | None:
    """The last valid copy of ``config_file`` (its configuration, path and time), if there is one that still
    validates."""
    copy = copy_path(config_file)
    try:
        cfg, _text = read_config(copy)
    except ConfigError as exc:
        if copy.exists():
            log.error("the last valid copy %s of %s does not validate any more (%s): it cannot be used",
                      copy, config_file, exc.problems[0])
        return None
    saved = dt.datetime.fromtimestamp(copy.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return cfg, copy, saved


def _fall_back(config_file: Path, error: ConfigError) -> Fallback | None:
    found = last_valid(config_file)
    if found is None:
        return None
    cfg, copy, saved = found
    fallback = Fallback(str(config_file), tuple(error.problems), str(copy), saved, cfg)
    _fallbacks[str(config_file)] = fallback
    version = (_version(config_file), fallback.problems)
    if _reported.get(str(config_file)) != version:
        _reported[str(config_file)] = version
        log.error("the group's configuration file is broken; running on its last valid version. %s\n"
                  "Fix the file (biztalk-dr config check %s lists its problems).", fallback.text(), config_file)
    return fallback


def _version(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _keep(config_file: Path, text: str, version: tuple[int, int]) -> None:
    """Keep ``text`` (it validated, read from ``version`` of the file) as the last valid copy, unless this
    process did already or the file has changed since (whoever reads the newer version keeps that one).
    Never raises: a copy that cannot be written is logged."""
    if _saved.get(str(config_file)) == version:
        return
    copy = copy_path(config_file)
    try:
        with _lock, _locked(copy.parent):
            if _version(config_file) == version and not _same_text(copy, text):
                # readable by whoever may read the file itself (the workers may run as another user)
                write_text_atomically(copy, text, mtime_ns=version[0], mode=stat.S_IMODE(config_file.stat().st_mode))
    except OSError as exc:
        log.warning("cannot keep the last valid copy of %s in %s (%s): while the file is broken the DAGs cannot "
                    "fall back on it; set %s to a folder every Airflow worker can write", config_file, copy.parent,
                    exc.strerror or exc, STATE_DIR_ENV_VAR)
    _saved[str(config_file)] = version


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)




