"""The group's configuration: the schema of its YAML file, validated once, with every problem named by field and
line. Text in, GroupConfig or ConfigError out: reading the file is config_files' part.

Operators edit this file by hand, so a mistake must be reported where it is (file, line, field) with
what is expected, all problems at once, before any DAG touches a server. Unknown keys are errors: a
misspelt key silently ignored is a setting silently lost.

Credentials never live here: SQL instances, mail, Slack and WinRM are named by Airflow connection id.
"""

from __future__ import annotations

import re
import types
import typing
import zoneinfo
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from biztalk_dr.domain.errors import ConfigError, ConfigProblem

__all__ = ["DatabaseRole", "Database", "GroupConfig", "parse_config"]

DatabaseRole = Literal[
    "management",
    "messagebox",
    "tracking",
    "sso",
    "rules_engine",
    "bam_primary_import",
    "bam_star_schema",
    "bam_archive",
    "bam_alerts_application",
    "bam_alerts_ns_main",
    "custom",
]
_SINGLE_ROLES = ("management", "tracking", "sso", "rules_engine", "bam_primary_import", "bam_star_schema",
                 "bam_archive", "bam_alerts_application", "bam_alerts_ns_main")
_REQUIRED_ROLES = ("management", "messagebox", "tracking", "sso")  # biztalk-dr.md section 1: "always"


# ---------------------------------------------------------------------------------------------- checks
def _database_name(value: str) -> str:
    if not 1 <= len(value) <= 123:
        raise ValueError(f"a database name has 1 to 123 characters, got {len(value)}")
    bad = sorted({ch for ch in value if ch in '\\/:*?"<>|' or ord(ch) < 32})
    if bad:
        raise ValueError(f"{value!r} contains {' '.join(repr(c) for c in bad)}; database names become part of "
                         "backup file names, so these characters are not allowed")
    if value != value.strip():
        raise ValueError(f"{value!r} has leading or trailing spaces")
    return value


def _mark_prefix(value: str) -> str:
    if not 1 <= len(value) <= 8:
        raise ValueError(f"expected 1 to 8 characters (BizTalk's limit for @MarkName), got {len(value)}: {value!r}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
        raise ValueError(f"expected a letter then letters, digits or '_' (it starts every mark name), got {value!r}")
    return value


def _sql_path(value: str) -> str:
    """A folder as SQL Server sees it: absolute Windows, UNC or Linux path."""
    if not value or "\x00" in value:
        raise ValueError("expected a folder path")
    if value.lower().startswith(("http://", "https://")):
        raise ValueError("Azure blob URLs are not supported: biztalk-dr ships files from a folder the Airflow "
                         "workers can read; give a disk or UNC path")
    if not (re.match(r"[A-Za-z]:\\", value) or value.startswith("\\\\") or value.startswith("/")):
        raise ValueError(f"expected an absolute path as SQL Server sees it (D:\\Backups\\, \\\\server\\share\\ or "
                         f"/var/opt/mssql/backup/), got {value!r}")
    return value


def _backup_path(value: str) -> str:
    _sql_path(value)
    if len(value) > 128:
        raise ValueError(f"{len(value)} characters; BizTalk's @BackupPath takes at most 128")
    return value


def _worker_path(value: str) -> str:
    """A folder as the Airflow workers see it."""
    if not value.startswith("/"):
        raise ValueError(f"expected an absolute path as the Airflow workers see it, got {value!r}")
    if "\x00" in value or ".." in PurePosixPath(value).parts:
        raise ValueError(f"expected a plain absolute path without '..', got {value!r}")
    return value


def _conn_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,250}", value):
        raise ValueError(f"expected an Airflow connection id (letters, digits, '_', '.', '-'), got {value!r}")
    return value


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as Europe/Berlin or UTC, got {value!r}") from None
    return value


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"expected an e-mail address, got {value!r}")
    return value


DatabaseName = Annotated[str, AfterValidator(_database_name)]
ConnId = Annotated[str, AfterValidator(_conn_id)]
SqlPath = Annotated[str, AfterValidator(_sql_path)]
WorkerPath = Annotated[str, AfterValidator(_worker_path)]
ServerName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\\/]+(\\[^\s\\/]+)?$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------------------------------------- model
class Group(_Model):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "UTC"


class Database(_Model):
    name: DatabaseName
    role: DatabaseRole
    master: bool = False  # the master MessageBox
    instance: str | None = None  # the instance key in each site; may be left out when a site has one


class BizTalkServer(_Model):
    name: ServerName
    winrm_conn_id: ConnId | None = None  # None: Windows-side steps are shown to a person to run

    @property
    def manual(self) -> bool:
        return self.winrm_conn_id is None


class PrimaryInstance(_Model):
    conn_id: ConnId
    server_name: ServerName  # as BizTalk and @@SERVERNAME know it: SQLPRD01 or SQLPRD01\BIZTALK


class StandbyInstance(_Model):
    conn_id: ConnId
    server_name: ServerName
    data_path: SqlPath | None = None  # where restored data files go (WITH MOVE); None: the primary's paths
    log_path: SqlPath | None = None


class PrimarySite(_Model):
    instances: Annotated[dict[str, PrimaryInstance], Field(min_length=1)]
    backup_path: Annotated[str, AfterValidator(_backup_path)]  # as SQL Server sees it (@BackupPath)
    backup_dir: WorkerPath  # the same folder as the Airflow workers see it
    biztalk_servers: list[BizTalkServer] = []


class StandbySite(_Model):
    instances: Annotated[dict[str, StandbyInstance], Field(min_length=1)]
    landing_dir: WorkerPath  # where shipped files land, as the Airflow workers see it
    landing_path: SqlPath  # the same folder as the standby SQL Server sees it (RESTORE FROM DISK)
    biztalk_servers: list[BizTalkServer] = []
    # where the standby site backs up once a failover made it the primary (as SQL Server / the workers see it)
    backup_path: Annotated[str, AfterValidator(_backup_path)] | None = None
    backup_dir: WorkerPath | None = None


class ValidationSite(_Model):
    conn_id: ConnId
    server_name: ServerName
    landing_path: SqlPath  # the standby landing folder as the validation instance sees it
    data_path: SqlPath
    log_path: SqlPath
    database_prefix: Annotated[str, Field(min_length=1, max_length=5, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")] = "drv_"
    min_free_space_gb: Annotated[int, Field(ge=0)] = 0  # kept free beyond what the planned restore needs
    restore_objective_minutes: Annotated[int, Field(ge=1)] = 60  # the SQL part of the recovery-time objective


class Sites(_Model):
    primary: PrimarySite
    standby: StandbySite
    validation: ValidationSite | None = None


class FullBackupSchedule(_Model):
    frequency: Literal["h", "d", "w", "m", "y"] = "d"  # sp_BackupAllFull_Schedule @Frequency
    hour: Annotated[int, Field(ge=0, le=23)] = 1


class Schedules(_Model):
    full_backup: FullBackupSchedule = FullBackupSchedule()
    log_backup_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    log_shipping_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    restore_validation_cron: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")] = "0 3 * * 0"


class Backup(_Model):
    mark_prefix: Annotated[str, AfterValidator(_mark_prefix)] = "BTS"
    compression: bool = True
    force_full_after_partial_set: bool = True
    use_local_time: bool = False
    disable_sql_agent_job: bool = False  # disable "Backup BizTalk Server" when found enabled, instead of failing
    min_free_space_gb: Annotated[int, Field(ge=0)] = 10


class Rpo(_Model):
    warn_minutes: Annotated[int, Field(ge=1)] = 30
    critical_minutes: Annotated[int, Field(ge=1)] = 60
    # a new group's checks wait this long for its first full set to be shipped and restored (0: no grace)
    first_full_set_grace_minutes: Annotated[int, Field(ge=0, le=10080)] = 360


class StandbyRetention(_Model):
    """Deleting files at the standby site (dr_standby_retention): a file goes only when it is older than
    ``keep_days`` and outside the newest ``keep_full_chains`` complete full chains (and nothing still needs it)."""

    keep_days: Annotated[int, Field(ge=1, le=3650)] = 7
    keep_full_chains: Annotated[int, Field(ge=1, le=100)] = 2
    delete: bool = False  # False: a dry run, logging what it would delete and why


class Retention(_Model):
    history_days: Annotated[int, Field(ge=1, le=3650)] = 14  # sp_DeleteBackupHistory @DaysToKeep
    file_days: Annotated[int, Field(ge=1, le=3650)] = 7
    dry_run: bool = False
    standby: StandbyRetention = StandbyRetention()


class SmtpAlerts(_Model):
    conn_id: ConnId = "smtp_default"
    to: Annotated[list[Annotated[str, AfterValidator(_email)]], Field(min_length=1)]


class SlackAlerts(_Model):
    conn_id: ConnId  # a Slack incoming-webhook connection
    channel: str | None = None


class Alerts(_Model):
    smtp: SmtpAlerts | None = None
    slack: SlackAlerts | None = None


class Files(_Model):
    roots: Annotated[list[WorkerPath], Field(min_length=1)]  # the only folders biztalk-dr may write or delete in


class GroupConfig(_Model):
    group: Group
    databases: Annotated[list[Database], Field(min_length=1)]
    sites: Sites
    files: Files
    schedules: Schedules = Schedules()
    backup: Backup = Backup()
    rpo: Rpo = Rpo()
    retention: Retention = Retention()
    alerts: Alerts = Alerts()

    def databases_with_role(self, role: str) -> list[Database]:
        return [d for d in self.databases if d.role == role]

    @property
    def management_database(self) -> Database:
        return self.databases_with_role("management")[0]

    def instance_of(self, database: Database, site: Literal["primary", "standby"]) -> str:
        """The instance key of ``database`` in ``site`` (the only one when the database names none)."""
        instances = getattr(self.sites, site).instances
        return database.instance if database.instance is not None else next(iter(instances))


# ---------------------------------------------------------------------------------------------- cross-field
def _cross_checks(cfg: GroupConfig) -> Iterator[tuple[tuple, str]]:
    """Rules that span fields; each yields (location, message)."""
    seen: dict[str, int] = {}
    for i, db in enumerate(cfg.databases):
        key = db.name.lower()
        if key in seen:
            yield ("databases", i, "name"), (f"{db.name!r} is listed twice (also databases[{seen[key]}]); "
                                             "SQL Server compares names case-insensitively")
        seen.setdefault(key, i)
        if db.master and db.role != "messagebox":
            yield ("databases", i, "master"), "only a MessageBox database (role: messagebox) can be the master"
    for role in _REQUIRED_ROLES:
        if not cfg.databases_with_role(role):
            yield ("databases",), f"a BizTalk group always has a database with role {role!r}; none is listed"
    for role in _SINGLE_ROLES:
        found = [i for i, d in enumerate(cfg.databases) if d.role == role]
        for i in found[1:]:
            yield ("databases", i, "role"), f"only one database can have role {role!r} (databases[{found[0]}] has it)"
    boxes = [i for i, d in enumerate(cfg.databases) if d.role == "messagebox"]
    masters = [i for i in boxes if cfg.databases[i].master]
    if boxes and not masters:
        if len(boxes) == 1:
            pass  # a single MessageBox is the master; nothing to say
        else:
            yield ("databases", boxes[0], "master"), "several MessageBox databases: mark exactly one with master: true"
    for i in masters[1:]:
        yield ("databases", i, "master"), f"only one MessageBox can be the master (databases[{masters[0]}] is)"

    for site_name in ("primary", "standby"):
        instances = getattr(cfg.sites, site_name).instances
        for i, db in enumerate(cfg.databases):
            if db.instance is None and len(instances) > 1:
                yield ("databases", i, "instance"), (f"site {site_name!r} has several instances "
                                                     f"({', '.join(instances)}): say which one holds {db.name!r}")
            elif db.instance is not None and db.instance not in instances:
                yield ("databases", i, "instance"), (f"no instance {db.instance!r} in sites.{site_name}.instances "
                                                     f"(there: {', '.join(instances)})")

    roots = [PurePosixPath(r) for r in cfg.files.roots]
    for loc, path in ((("sites", "primary", "backup_dir"), cfg.sites.primary.backup_dir),
                      (("sites", "standby", "landing_dir"), cfg.sites.standby.landing_dir)):
        if not any(PurePosixPath(path).is_relative_to(r) for r in roots):
            yield loc, f"{path!r} is not inside any of files.roots ({', '.join(cfg.files.roots)})"
    if cfg.sites.primary.backup_dir == cfg.sites.standby.landing_dir:
        yield ("sites", "standby", "landing_dir"), "must differ from sites.primary.backup_dir: shipping copies between them"
    standby = cfg.sites.standby
    if (standby.backup_path is None) != (standby.backup_dir is None):
        given, missing = ("backup_path", "backup_dir") if standby.backup_dir is None else ("backup_dir", "backup_path")
        yield ("sites", "standby", given), (f"sites.standby.{missing} is missing: give both (the standby site's backup "
                                            "folder as its SQL Server sees it and as the Airflow workers see it)")
    if standby.backup_dir is not None:
        if not any(PurePosixPath(standby.backup_dir).is_relative_to(r) for r in roots):
            yield ("sites", "standby", "backup_dir"), (f"{standby.backup_dir!r} is not inside any of files.roots "
                                                       f"({', '.join(cfg.files.roots)})")
        if standby.backup_dir == standby.landing_dir:
            yield ("sites", "standby", "backup_dir"), "must differ from sites.standby.landing_dir (the shipped copies)"

    if cfg.rpo.warn_minutes >= cfg.rpo.critical_minutes:
        yield ("rpo", "warn_minutes"), (f"{cfg.rpo.warn_minutes} must be less than rpo.critical_minutes "
                                        f"({cfg.rpo.critical_minutes})")
    if cfg.rpo.warn_minutes <= cfg.schedules.log_backup_minutes:
        yield ("rpo", "warn_minutes"), (f"{cfg.rpo.warn_minutes} would warn on every log backup interval "
                                        f"(schedules.log_backup_minutes = {cfg.schedules.log_backup_minutes}); "
                                        "make it larger than the interval")
    grace = cfg.rpo.first_full_set_grace_minutes
    needed = cfg.schedules.log_backup_minutes + cfg.schedules.log_shipping_minutes
    if 0 < grace < needed:
        yield ("rpo", "first_full_set_grace_minutes"), (
            f"{grace} is shorter than a log backup and a shipping interval ({needed} min): the first full set is "
            "restored on the standby only once a log set follows it; give at least that, or 0 for no grace")
    conn_ids: dict[str, tuple] = {}
    for site_name in ("primary", "standby"):
        for key, inst in getattr(cfg.sites, site_name).instances.items():
            loc = ("sites", site_name, "instances", key, "conn_id")
            if inst.conn_id in conn_ids:
                yield loc, f"{inst.conn_id!r} is also used at {'.'.join(map(str, conn_ids[inst.conn_id]))}"
            conn_ids.setdefault(inst.conn_id, loc)
    if cfg.sites.validation and cfg.sites.validation.conn_id in conn_ids:
        yield ("sites", "validation", "conn_id"), (f"{cfg.sites.validation.conn_id!r} is also used at "
                                                   f"{'.'.join(map(str, conn_ids[cfg.sites.validation.conn_id]))}: "
                                                   "never validate restores on a primary or standby instance")


# ---------------------------------------------------------------------------------------------- YAML + errors
def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain Python, so strict validation sees str/int/bool/list/dict."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _line_of(tree: Any, loc: Iterable[Any]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    line = None
    node = tree
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(tree, CommentedMap):
        line = tree.lc.line + 1
    return line


def _field_name(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] to the type that holds the keys."""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class at ``loc`` (to list the keys allowed there)."""
    current: Any = GroupConfig
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif origin in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_EXPECTED = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list (lines starting with '- ')",
    "float_type": "expected a number",
}


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    given = error.get("input")
    if kind == "missing":
        return "missing: this field is required"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f" (allowed here: {', '.join(model.model_fields)})" if model else ""
        return f"unknown key {loc[-1]!r}{allowed}"
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {given!r}"
    if kind == "literal_error":
        return f"expected one of {error['ctx']['expected']}, got {given!r}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "string_pattern_mismatch":
        return f"{given!r} does not have the expected form"
    if kind == "string_too_long":
        return f"at most {error['ctx']['max_length']} characters, got {len(given)}: {given!r}"
    if kind == "string_too_short":
        return f"at least {error['ctx']['min_length']} character(s), got {given!r}"
    if kind == "too_short":
        return f"expected at least {error['ctx']['min_length']} item(s)"
    msg = error["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {given!r}"


def _problem_loc(loc: tuple) -> tuple:
    """Pydantic puts the validator name into some locations ('function-after[...]'); drop it."""
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p and p.endswith("]")))


def parse_config(text: str, *, source: str = "<config>") -> GroupConfig:
    """Validate configuration text; raises ConfigError listing every problem with its line."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(source, line, "", f"not valid YAML: {exc.problem or exc}")]) from None
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigProblem(source, 1, "", "expected a YAML mapping with the keys group, databases, "
                                                       "sites, files, ...")])
    try:
        cfg = GroupConfig.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = _problem_loc(tuple(err["loc"]))
            problems.append(ConfigProblem(source, _line_of(tree, loc), _field_name(loc), _message(err)))
        raise ConfigError(problems) from None
    problems = [ConfigProblem(source, _line_of(tree, loc), _field_name(loc), msg) for loc, msg in _cross_checks(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg
