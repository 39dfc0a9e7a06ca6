"""The one way biztalk-dr writes a state file: whole or not at all, and on disk when the call returns.

A crash (power loss, a killed worker) at any moment leaves the old file or the new one, never a torn one:

1. the text goes to a temporary file in the same folder (same file system, so the rename is atomic);
2. the temporary file is flushed and fsynced (its bytes are on disk before its name is);
3. its mode (and, when asked, its modification time) is set;
4. it is renamed over the target (``os.replace``: atomic on POSIX);
5. the folder is fsynced, so the rename itself survives a crash.

On any failure before the rename the temporary file is removed and the target is untouched. Temporary files are
named ``.<name>.<random>.tmp``: hidden, and never taken for the file itself (no reader globs ``*.tmp``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["READABLE", "write_text_atomically", "write_json_atomically", "fsync_folder", "move_durably"]

# Reports and status other accounts read (operators, the web UI): rw-r--r--. State files keep 0600.
READABLE = 0o644


def fsync_folder(folder: str | Path) -> None:
    """fsync a folder, so a rename or a new file in it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomically(path: str | Path, text: str, *, mode: int | None = None,
                          mtime_ns: int | None = None) -> Path:
    """``text`` as the whole content of ``path`` (UTF-8), crash-safe (see the module). ``mode``: the file's
    permissions (default 0600, as the temporary file is created); ``mtime_ns``: its modification time."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)
    return path


def write_json_atomically(path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = False,
                          default: Any = None, mode: int | None = None) -> Path:
    """``data`` as JSON in ``path``, crash-safe (see the module). The JSON is made before anything is written, so
    data that cannot be serialised leaves no file behind."""
    return write_text_atomically(path, json.dumps(data, indent=indent, sort_keys=sort_keys, default=default),
                                 mode=mode)


def move_durably(source: str | Path, target: str | Path) -> Path:
    """``source`` renamed to ``target`` (one atomic rename, same file system), both folders fsynced: after a crash
    the file is at one place or the other, never both or neither."""
    source, target = Path(source), Path(target)
    os.replace(source, target)
    fsync_folder(target.parent)
    if source.parent != target.parent:
        fsync_folder(source.parent)
    return target
