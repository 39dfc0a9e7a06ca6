"""Source backup files whose read-back failed when they were taken (or that SQL Server found damaged in two copies
at the standby site): never shipped as good.

The backup DAGs read every new file back (``backup_jobs.read_back_file``: RESTORE VERIFYONLY and HEADERONLY by
the SQL Server that wrote it, then the worker's own read). SQL Server can report success for a file a network
share damaged (biztalk-dr.md section 2), and adm_BackupHistory still says the set is complete; log shipping
reads the history, so the failed read-back is recorded here, at the standby site beside the standby's other
records, one small file per source file. Shipping refuses a recorded file (the standby waits for the full
backup the failure requested); a later successful read-back of the same file clears the record.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from biztalk_dr.domain.paths import plain_file_name
from biztalk_dr.ops.standby_state import state_dir

__all__ = ["record_read_back_failure", "clear_read_back_failure", "read_back_failure"]

log = logging.getLogger("biztalk_dr.ops.source_checks")
_FOLDER = "source-read-back-failures"


def _record(landing_dir: str | Path, file_name: str) -> Path:
    return state_dir(landing_dir) / _FOLDER / (plain_file_name(file_name) + ".txt")


def record_read_back_failure(landing_dir: str | Path, file_name: str, reason: str) -> None:
    """Remember that this source file failed its read-back; a failure to write it is logged, not raised (the
    read-back error itself still fails the backup run and requests a full backup)."""
    path = _record(landing_dir, file_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} {reason}\n", encoding="utf-8")
    except OSError as exc:
        log.error("could not record the failed read-back of %s at %s (%s): log shipping may ship it; its restore "
                  "would then fail and quarantine it", file_name, path, exc)


def clear_read_back_failure(landing_dir: str | Path, file_name: str) -> None:
    try:
        _record(landing_dir, file_name).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not clear the read-back record of %s: %s", file_name, exc)


def read_back_failure(landing_dir: str | Path, file_name: str) -> str | None:
    """Why this source file is not to be shipped; None when its read-back did not fail."""
    try:
        return _record(landing_dir, file_name).read_text(encoding="utf-8").strip() or "read-back failed"
    except FileNotFoundError:
        return None
