"""The BizTalk groups of this deployment: one YAML file per group, found cheaply (no DB, no network).

``$BIZTALK_DR_CONFIG`` names either

- **one file**: one group, the simple case. DAG ids and Asset URIs carry no group (``dr_log_backup``);
- **a folder** (a name not ending in ``.yaml``): every ``*.yaml`` file in it is a group;
- **a list** separated by ``os.pathsep`` (``:`` on Linux) of files and folders.

With a folder or a list every group's DAG ids and Asset URIs carry its **key**, the file's name without
``.yaml`` (``groups/biztalk_prod.yaml`` -> ``dr_log_backup__biztalk_prod``), even while there is one: adding a
second group later renames nothing (a renamed DAG loses its history). Unset, the variable means
``include/config/group.yaml``.

Each group's file is read on its own, with its own last valid copy (``config_fallback``): a broken file
breaks only its group's DAGs. Its problems (file:line) are the import error of each DAG file
(``broken_groups_dag``), the other groups' DAGs of that file load.

Inside a task (or while a DAG is built) ``current_group`` is the group of the DAG being run, read from its
id; ``config_files.load_config()`` reads that group's file. Outside a DAG with several groups there is no
"current" group: a ConfigError says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import ConfigError, ConfigProblem
from biztalk_dr.ops.config_files import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH

__all__ = ["KEY_SEPARATOR", "GroupFile", "broken_groups_dag", "build_group_dags", "current_group", "dag_groups",
           "deployment_files", "group_files", "group_of_dag_id"]

KEY_SEPARATOR = "__"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class GroupFile:
    """One group's file and the key its DAG ids carry (None: the deployment's only group, named by a file)."""

    key: str | None
    path: Path

    def dag_id(self, base: str) -> str:
        return base if self.key is None else f"{base}{KEY_SEPARATOR}{self.key}"

    def load(self) -> GroupConfig:
        """The group's configuration as the DAGs run on it (its last valid version while the file is broken);
        ConfigError (file:line of each problem) when no valid version was ever seen."""
        from biztalk_dr.ops import config_fallback

        return config_fallback.group_config(self.path)


def _problem(source: str, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(source, None, "", message)])


def _folder(entry: Path) -> bool:
    # a name ending in .yaml is a group's file, even when a folder took its place (that file's problem, reported
    # when it is read, and its last valid version used meanwhile)
    return entry.suffix != ".yaml" and entry.is_dir()


def group_files(value: str | None = None) -> list[GroupFile]:
    """The deployment's groups from ``value`` (default: $BIZTALK_DR_CONFIG), in a stable order. ConfigError for
    a name that is neither a file nor a folder, a folder without ``*.yaml``, a key that cannot be part of a
    DAG id, or two files with the same key."""
    value = os.environ.get(CONFIG_ENV_VAR) if value is None else value
    if not value:
        return [GroupFile(None, DEFAULT_CONFIG_PATH)]
    entries = [Path(e).expanduser().absolute() for e in value.split(os.pathsep) if e.strip()]
    if len(entries) == 1 and not _folder(entries[0]):
        return [GroupFile(None, entries[0])]  # one file: the simple case (a missing file says so when read)
    found: dict[str, GroupFile] = {}
    for entry in entries:
        if _folder(entry):
            paths = sorted(entry.glob("*.yaml"))
            if not paths:
                raise _problem(str(entry), f"({CONFIG_ENV_VAR}) holds no *.yaml group file")
        elif entry.exists():
            paths = [entry]
        else:
            raise _problem(str(entry), f"({CONFIG_ENV_VAR}) no such file or folder")
        for path in paths:
            key = path.name.removesuffix(".yaml")
            if not _KEY.fullmatch(key) or KEY_SEPARATOR in key:
                raise _problem(str(path), f"the file's name gives the group's key {key!r}, which DAG ids carry: "
                                          "rename it to letters, digits, '_', '.', '-' (no '__'), e.g. "
                                          "biztalk_prod.yaml")
            if key in found:
                raise _problem(str(path), f"same group key {key!r} as {found[key].path} (DAG ids would clash): "
                                          "rename one of the files")
            found[key] = GroupFile(key, path)
    return list(found.values())


def deployment_files() -> set[Path]:
    """The group files of $BIZTALK_DR_CONFIG (none when it names no usable group)."""
    try:
        return {gf.path for gf in group_files()}
    except ConfigError:
        return set()


def group_of_dag_id(dag_id: str, files: list[GroupFile] | None = None) -> GroupFile:
    """The group whose DAG ``dag_id`` is (``dr_log_backup__biztalk_prod`` -> biztalk_prod's file)."""
    files = group_files() if files is None else files
    if len(files) == 1 and files[0].key is None:
        return files[0]
    key = dag_id.rpartition(KEY_SEPARATOR)[2] if KEY_SEPARATOR in dag_id else None
    for gf in files:
        if gf.key == key:
            return gf
    raise _problem(os.environ.get(CONFIG_ENV_VAR, ""), f"({CONFIG_ENV_VAR}) has no group for DAG {dag_id!r} "
                                                       f"(groups: {', '.join(f.key or '' for f in files)})")


def _current_dag_id() -> str | None:
    from airflow.sdk import get_current_context, get_parsing_context
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    try:
        return get_current_context()["dag"].dag_id  # a running task
    except (RuntimeError, KeyError):
        pass
    if (building := DagContext.get_current()) is not None:  # a DAG being built
        return building.dag_id
    # a task's callbacks and listeners: the task runner exports the first once the task starts, and parsed the
    # DAG file under the second (which it leaves set)
    return os.environ.get("AIRFLOW_CTX_DAG_ID") or get_parsing_context().dag_id


def current_group() -> GroupFile:
    """The group of the DAG running (or being built) now; the only group when there is one."""
    files = group_files()
    if len(files) == 1:
        return files[0]
    dag_id = _current_dag_id()
    if dag_id is None:
        raise _problem(os.environ.get(CONFIG_ENV_VAR, ""),
                       f"({CONFIG_ENV_VAR}) names {len(files)} groups ({', '.join(f.key or '' for f in files)}): "
                       "outside a DAG, say which one (biztalk-dr ... --config FILE)")
    return group_of_dag_id(dag_id, files)


def dag_groups() -> tuple[list[tuple[GroupFile, GroupConfig]], dict[GroupFile, ConfigError]]:
    """What a DAG file builds: the groups that load (with their configuration) and the broken ones (with their
    error). With one group named by a file its ConfigError is raised, as before: the DAG file's import error.
    In a task's process (Airflow's parsing context names its DAG) only that DAG's group: the task then reads
    that group's values from the DAG file's module (Airflow's documented way for generated DAGs)."""
    files = group_files()
    if len(files) == 1 and files[0].key is None:
        return [(files[0], files[0].load())], {}
    from airflow.sdk import get_parsing_context

    if (running := get_parsing_context().dag_id) is not None:  # a task's process parses the file for its DAG
        mine = [gf for gf in files if gf.key is not None and running.endswith(f"{KEY_SEPARATOR}{gf.key}")]
        files = mine or files  # only its group: module-level values the tasks read are that group's
    good, broken = [], {}
    for gf in files:
        try:
            good.append((gf, gf.load()))
        except ConfigError as exc:
            broken[gf] = exc
    return good, broken


def broken_groups_dag(base_dag_id: str, broken: dict[GroupFile, ConfigError]):  # noqa: ANN201 - DAG | None
    """A DAG that Airflow refuses when it bags it (its timetable's ``validate`` raises), so the broken groups'
    problems, file:line each, become the import error of the DAG file that builds it, while the other groups'
    DAGs of that file load. Airflow keeps one import error per DAG file: one DAG carries every broken group."""
    if not broken:
        return None
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowTimetableInvalid
    from airflow.timetables.simple import NullTimetable

    text = "\n".join(f"group {gf.key} ({gf.path}), DAG {gf.dag_id(base_dag_id)} not loaded:\n{exc}\n"
                     f"Fix the file (biztalk-dr config check {gf.path} lists its problems)." for gf, exc in broken.items())

    class BrokenGroups(NullTimetable):
        def validate(self) -> None:
            raise AirflowTimetableInvalid(f"{text}\nThe other groups' DAGs are not affected.")

    first = next(iter(broken))
    return DAG(dag_id=first.dag_id(base_dag_id), schedule=BrokenGroups(), auto_register=False,
               tags=["biztalk-dr", "broken-group-file"])


GroupValues = Callable[[GroupFile, GroupConfig], dict[str, Any]]


def build_group_dags(namespace: MutableMapping[str, Any], base_dag_id: str, kind: str, body: Callable[[], None], *,
                     schedule: Any, values: GroupValues | None = None, arguments: GroupValues | None = None,
                     **shared: Any) -> None:
    """What every DAG file does at its end: one DAG per group of the deployment (``dag_groups``), built from the
    file's ``@dag`` body with the shared defaults (``dag_defaults``, ``kind`` its tag), the file's docstring as
    its docs, ``schedule`` (a function ``(group, cfg)`` for a schedule of the group's own), ``shared`` (the
    same for every group) and ``arguments(group, cfg)`` (the group's own: params, deadline); the broken groups' problems become the file's import error (``broken_groups_dag``).

    ``namespace`` is the DAG file's ``globals()``: while a group's DAG is built its ``GROUP`` and ``CONFIG``, and
    the file's ``values(group, cfg)`` (its Assets, servers), are module values there, so the body and its tasks
    read them as Airflow's generated-DAG pattern has them do; ``GROUPS``, ``BROKEN`` and ``BROKEN_GROUPS`` stay
    there after. DAGs register themselves as they are built (Airflow's auto-register): nothing else to keep."""
    from airflow.sdk import dag

    from biztalk_dr.edge.dag_defaults import dag_defaults

    groups, broken = dag_groups()
    namespace["GROUPS"], namespace["BROKEN"] = groups, broken
    for group, cfg in groups:
        namespace["GROUP"], namespace["CONFIG"] = group, cfg
        namespace.update(values(group, cfg) if values else {})
        own = arguments(group, cfg) if arguments else {}
        dag(dag_id=group.dag_id(base_dag_id), schedule=schedule(group, cfg) if callable(schedule) else schedule,
            doc_md=namespace.get("__doc__"), **dag_defaults(cfg, kind), **shared, **own)(body)()
    namespace["BROKEN_GROUPS"] = broken_groups_dag(base_dag_id, broken)  # their file:line is the file's import error
