"""File paths between SQL Server's view and the Airflow workers' view, confined to configured roots.

SQL Server writes ``\\\\fs01\\BizTalkBackups\\X.bak``; the worker reads the same file as
``/mnt/biztalk-backups/X.bak``. A name that comes from a server (history rows, file names) is data,
not trusted input: it may never lead a worker outside its configured folders (``..``, absolute names,
other drives), whatever separators it uses.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from biztalk_dr.domain.errors import PathOutsideRootError

__all__ = ["is_windows_path", "sql_join", "plain_file_name", "worker_path_for", "sql_path_for", "inside_root"]

_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS.match(path))


def sql_join(folder: str, name: str) -> str:
    """``folder`` + file name with the separator SQL Server expects for that kind of path."""
    name = plain_file_name(name)
    sep = "\\" if is_windows_path(folder) else "/"
    return folder.rstrip("\\/") + sep + name


def plain_file_name(name: str) -> str:
    """A bare file name: no folder part, no ``..``, nothing a join could escape with."""
    if not name or name in (".", "..") or any(ch in name for ch in "\\/\x00") or ":" in name:
        raise PathOutsideRootError(name, "(a plain file name)")
    return name


def _relative_parts(sql_path: str, sql_folder: str) -> list[str]:
    windows = is_windows_path(sql_folder)
    folder = PureWindowsPath(sql_folder) if windows else PurePosixPath(sql_folder)
    path = PureWindowsPath(sql_path) if windows else PurePosixPath(sql_path)
    fold = (lambda p: [s.lower() for s in p.parts]) if windows else (lambda p: list(p.parts))
    if fold(path)[: len(folder.parts)] != fold(folder):
        raise PathOutsideRootError(sql_path, sql_folder)
    parts = list(path.parts[len(folder.parts):])
    if not parts or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise PathOutsideRootError(sql_path, sql_folder)
    return parts


def worker_path_for(sql_path: str, *, sql_folder: str, worker_folder: str | Path) -> Path:
    """The worker's path of a file SQL Server knows as ``sql_path`` inside ``sql_folder``."""
    parts = _relative_parts(sql_path, sql_folder)
    return inside_root(Path(worker_folder).joinpath(*parts), worker_folder)


def sql_path_for(worker_path: str | Path, *, worker_folder: str | Path, sql_folder: str) -> str:
    """The path SQL Server (or a Windows server through the same share) knows for a file the worker has at
    ``worker_path`` inside ``worker_folder``: the other direction of ``worker_path_for``."""
    path = inside_root(worker_path, worker_folder)
    result = sql_folder
    for part in path.relative_to(Path(worker_folder).resolve()).parts:
        result = sql_join(result, part)
    return result


def inside_root(path: str | Path, root: str | Path) -> Path:
    """``path`` resolved, if it stays inside ``root`` (symbolic links followed); raises otherwise."""
    resolved = Path(path).resolve()
    root_resolved = Path(root).resolve()
    if resolved != root_resolved and not resolved.is_relative_to(root_resolved):
        raise PathOutsideRootError(str(path), str(root))
    return resolved
