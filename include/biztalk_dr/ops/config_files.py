"""Where the group's file is and reading it: the file named by $BIZTALK_DR_CONFIG (or the group whose DAG runs
now, when it names several), read once per file version and validated by config.parse_config.

While the group's file is broken, the DAGs run on its last valid version (config_fallback); only a file never
valid is a ConfigError here.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import biztalk_dr
from biztalk_dr.domain.config import GroupConfig, parse_config
from biztalk_dr.domain.errors import ConfigError, ConfigProblem

__all__ = ["CONFIG_ENV_VAR", "DEFAULT_CONFIG_PATH", "config_path", "load_config", "read_config"]

CONFIG_ENV_VAR = "BIZTALK_DR_CONFIG"
# include/config/group.yaml, beside the package (include/biztalk_dr), whichever layer folder holds this module
DEFAULT_CONFIG_PATH = Path(biztalk_dr.__file__).resolve().parents[1] / "config" / "group.yaml"


def config_path() -> Path:
    """The group's file: $BIZTALK_DR_CONFIG, else include/config/group.yaml. When the variable names several
    groups (a folder, a list: ``groups``), the file of the group whose DAG runs now."""
    from biztalk_dr.edge.groups import current_group  # noqa: I001 - the edge; imported here: it imports this module

    return current_group().path


def load_config(path: str | os.PathLike[str] | None = None) -> GroupConfig:
    """The group's configuration.

    With ``path``: that file, validated (``ConfigError`` lists every problem with its line). Without: the
    group's file ($BIZTALK_DR_CONFIG) as the DAGs run on it: while it is broken, its last valid version,
    with the problems logged and alerted (``config_fallback``); ``ConfigError`` only when no valid version
    was ever seen. Cached per file version, so DAG parsing reads it once."""
    if path is not None:
        return read_config(Path(path))[0]
    from biztalk_dr.ops import config_fallback  # noqa: I001 - imported here: it imports this module

    return config_fallback.group_config(config_path())


def read_config(path: Path) -> tuple[GroupConfig, str]:
    """``path`` validated, and the exact text that validated (what a last-valid copy keeps)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        hint = (f"; set {CONFIG_ENV_VAR} to the group's file (for make run's group: source var/env.sh)"
                if os.environ.get(CONFIG_ENV_VAR) is None else "")
        raise ConfigError([ConfigProblem(str(path), None, "", f"no such file{hint}")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "", f"cannot be read: {exc.strerror}")]) from None
    return _read_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(path))


@functools.lru_cache(maxsize=16)
def _read_cached(path: str, mtime_ns: int, size: int, source: str) -> tuple[GroupConfig, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(source, None, "", "is a directory, expected a YAML file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(source, None, "", f"is not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(source, None, "", f"cannot be read: {exc.strerror}")]) from None
    return parse_config(text, source=source), text
