"""`make run`: a whole DR setup on one machine, for trying biztalk-dr out.

Starts three SQL Server stand-ins (primary with a seeded BizTalk group, standby, validation) and Airflow's
components (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor) with this project's DAGs,
each in a process group of its own, and supervises them:

- it refuses to start while a port it needs is taken, naming the process that holds it;
- it starts the scheduler, dag processor and triggerer only once its API server answers (a task started before
  it listens fails without running: its execution API is there);
- it prints the UI address and login only once its own API server answers, its scheduler, dag processor and
  triggerer heartbeat (the health endpoint, with heartbeats newer than their start) and the stand-ins listen;
- a component that dies later is reported by name, with the end of its log and what to do;
- SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal) stop everything it started: every process group,
  then any process left under it (it is their subreaper, so none escapes by losing its parent), SIGKILL after
  a grace period; `make stop` does the same for the groups of a `make run` that was killed with SIGKILL.

The group's configuration is written once, to var/config/group.yaml, from include/config/standin_group.yaml:
after that it is the operator's file and never rewritten. `var/env.sh` (mode 0600: it holds the stand-ins'
password) gives a second terminal the same environment: `source var/env.sh`, then any `biztalk-dr` or
`airflow` command works against the running group.

Ports and folders come from the environment (defaults in brackets): BIZTALK_DR_API_PORT [8080],
BIZTALK_DR_API_HOST [127.0.0.1], BIZTALK_DR_STANDIN_PORTS [14331,14332,14333] (primary, standby,
validation), BIZTALK_DR_LOG_PORTS [8793,8794] (the scheduler's and the triggerer's log servers),
BIZTALK_DR_VAR [var/].

BIZTALK_DR_GROUPS [1] (make's GROUPS=N) runs N stand-in BizTalk groups at once: group k has a primary SQLPRD0k
and a standby SQLDR0k of its own (one validation instance, SQLVAL01, serves them all, each group with its own
database prefix), its file var/config/groups/groupk.yaml (BIZTALK_DR_CONFIG is that folder: DAG ids
dr_log_backup__groupk, ...) and its folders under var/groups/groupk/. BIZTALK_DR_STANDIN_PORTS then takes 2N+1
ports [14331,...]: group 1's primary and standby, the validation instance, then each further group's primary and
standby.

`make run-celery` (``--celery``) runs the same DAGs in Airflow's production shape: PostgreSQL as the metadata
database, CeleryExecutor with Redis as its broker and two Celery workers (each with its own log server port and
pid file), its Airflow settings read from deploy/airflow.env, the file docker-compose.yml reads too. It needs
BIZTALK_DR_POSTGRES_URL [postgresql+psycopg2://postgres@127.0.0.1:5432/biztalk_dr_celery] (the database is
created when missing) and BIZTALK_DR_REDIS_URL [redis://127.0.0.1:6379/0]; when either does not answer it says
which one, where, and what to do, in one line, and starts nothing. BIZTALK_DR_LOG_PORTS then takes three ports
[8793,8794,8795]: the first worker's, the triggerer's and the second worker's log servers.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("BIZTALK_DR_VAR") or ROOT / "var").absolute()
LOGS = VAR / "logs"
STATE = VAR / "make-run.json"  # the process groups of the running make run, for `make stop`
TEMPLATE = ROOT / "include" / "config" / "standin_group.yaml"
BIN = Path(sys.executable).parent
LOGIN = "biztalk_dr"
SITES = {"primary": "SQLPRD01", "standby": "SQLDR01", "validation": "SQLVAL01"}  # site -> @@SERVERNAME (group 1)
CELERY = "--celery" in sys.argv[1:]
SHARED_SETTINGS = ROOT / "deploy" / "airflow.env"  # the production shape's Airflow settings, docker-compose's too
WORKERS = ("celery-worker-1", "celery-worker-2") if CELERY else ()
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
MODE = "make run-celery" if CELERY else "make run"
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
READY_SECONDS = float(os.environ.get("BIZTALK_DR_READY_SECONDS", "420"))  # generous: a loaded 2-core machine
STOP_GRACE_SECONDS = 15


def _ports(name: str, default: str, count: int) -> list[int]:
    text = os.environ.get(name, default)
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        ports = []
    if len(ports) != count or not all(0 < p < 65536 for p in ports):
        raise SystemExit(f"make run: {name}={text!r}: expected {count} port number(s) separated by commas "
                         f"(default {default})")
    return ports


def _group_count() -> int:
    text = os.environ.get("BIZTALK_DR_GROUPS", "").strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= 9:
        raise SystemExit(f"make run: BIZTALK_DR_GROUPS={text!r} (GROUPS= of make): expected how many stand-in BizTalk "
                         "groups to run, 1 to 9 (default 1)")
    return int(text)


@dataclass(frozen=True)
class Standin:
    """One SQL Server stand-in make run starts: which group's (None: the only group's, or the validation
    instance every group shares) and which site."""

    group: str | None
    site: str  # primary, standby, validation
    server: str  # @@SERVERNAME
    port: int
    data_dir: Path
    conn_id: str

    @property
    def label(self) -> str:
        return f"stand-in {self.group + ' ' if self.group else ''}{self.site} ({self.server}, 127.0.0.1:{self.port})"


@dataclass(frozen=True)
class DemoGroup:
    """A stand-in BizTalk group: its key (None: the only one, DAG ids without a key), its folder (@VAR@ of the
    template) and its file."""

    key: str | None
    number: int
    root: Path
    config: Path

    def replacements(self) -> dict[str, str]:
        """What makes the template group number ``number``: its own servers, name, connections, and its own
        database prefix on the validation instance the groups share."""
        if self.key is None:
            return {}
        n = f"{self.number:02d}"
        return {"SQLPRD01": f"SQLPRD{n}", "SQLDR01": f"SQLDR{n}", "BTSPRD01": f"BTSPRD{n}", "BTSDR01": f"BTSDR{n}",
                "name: DEMO-BTS\n": f"name: DEMO-BTS-{self.number}\n",
                "conn_id: biztalk_primary": f"conn_id: biztalk_{self.key}_primary",
                "conn_id: biztalk_standby": f"conn_id: biztalk_{self.key}_standby",
                "    server_name: SQLVAL01\n": f"    server_name: SQLVAL01\n    database_prefix: drv{self.number}_\n"}


GROUP_COUNT = _group_count()
# one group: var/config/group.yaml (DAG ids without a key, as before); several: var/config/groups/groupN.yaml
# (a folder: DAG ids dr_log_backup__group1, ...), each group's folders under var/groups/groupN/
GROUPS = ([DemoGroup(None, 1, VAR, VAR / "config" / "group.yaml")] if GROUP_COUNT == 1 else
          [DemoGroup(f"group{n}", n, VAR / "groups" / f"group{n}", VAR / "config" / "groups" / f"group{n}.yaml")
           for n in range(1, GROUP_COUNT + 1)])
CONFIG = GROUPS[0].config if GROUP_COUNT == 1 else VAR / "config" / "groups"  # BIZTALK_DR_CONFIG
API_HOST = os.environ.get("BIZTALK_DR_API_HOST", "127.0.0.1")
[API_PORT] = _ports("BIZTALK_DR_API_PORT", "8080", 1)


def _standins() -> list[Standin]:
    """Group 1's primary and standby and the validation instance (the ports' order since one group), then each
    further group's primary and standby."""
    ports = _ports("BIZTALK_DR_STANDIN_PORTS", ",".join(str(14331 + i) for i in range(2 * GROUP_COUNT + 1)),
                   2 * GROUP_COUNT + 1)
    validation = Standin(None, "validation", SITES["validation"], ports[2], VAR / "standin" / "validation",
                         "biztalk_validation")
    pairs = iter([ports[0], ports[1], *ports[3:]])
    standins = []
    for g in GROUPS:
        for site in ("primary", "standby"):
            if g.key is None:
                standins.append(Standin(None, site, SITES[site], next(pairs), VAR / "standin" / site, f"biztalk_{site}"))
            else:
                standins.append(Standin(g.key, site, SITES[site].replace("01", f"{g.number:02d}"), next(pairs),
                                        VAR / "standin" / g.key / site, f"biztalk_{g.key}_{site}"))
    return [*standins[:2], validation, *standins[2:]]


STANDINS = _standins()
if CELERY:
    WORKER_LOG_PORT, TRIGGER_LOG_PORT, WORKER2_LOG_PORT = _ports("BIZTALK_DR_LOG_PORTS", "8793,8794,8795", 3)
    WORKER_LOG_PORTS = {"celery-worker-1": WORKER_LOG_PORT, "celery-worker-2": WORKER2_LOG_PORT}
else:
    WORKER_LOG_PORT, TRIGGER_LOG_PORT = _ports("BIZTALK_DR_LOG_PORTS", "8793,8794", 2)
    WORKER_LOG_PORTS = {}
POSTGRES_URL = os.environ.get("BIZTALK_DR_POSTGRES_URL") or "postgresql+psycopg2://postgres@127.0.0.1:5432/biztalk_dr_celery"
REDIS_URL = os.environ.get("BIZTALK_DR_REDIS_URL") or "redis://127.0.0.1:6379/0"
UI = f"http://127.0.0.1:{API_PORT}"


class Stop(Exception):
    """A stop signal arrived (SIGINT, SIGTERM or SIGHUP)."""


def say(text: str = "") -> None:
    """Print, and never fail: after SIGHUP the terminal is gone and writing to it raises."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


# ---------------------------------------------------------------------------------------------- components
@dataclass
class Component:
    name: str  # as reported: "stand-in standby (SQLDR01, 127.0.0.1:14332)", "scheduler", ...
    process: subprocess.Popen
    log: Path
    advice: str  # what to do when it dies
    started: float = field(default_factory=time.time)
    reported: bool = False
    log_offset: int = 0  # where this start's output begins in ``log``

    def said_since_start(self, text: str) -> bool:
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self.log_offset)
                return text.encode() in fh.read()
        except OSError:
            return False

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text[-lines:])


def exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child in a session (and process group) of its own, its output appended to ``log``."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n===== {dt.datetime.now().isoformat(timespec='seconds')} make run: {shlex.join(command)}\n")
        out.flush()
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


# ---------------------------------------------------------------------------------------------- stopping
def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process instead of init, so a stop finds every one."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def reap_orphans(ours: set[int]) -> None:
    """Collect the exit status of re-parented orphans (never of our own Popen children: theirs is reported)."""
    for child in descendants():
        with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
            if child.pid not in ours and child.ppid() == os.getpid() and child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)


def signal_all(processes: list[psutil.Process], sig: int) -> None:
    """``sig`` to each process group (never our own) and to each process of our own group."""
    own_group, groups = os.getpgrp(), set()
    for proc in processes:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            group = os.getpgid(proc.pid)
            if group != own_group and group not in groups:
                groups.add(group)
                os.killpg(group, sig)
            elif group == own_group:
                proc.send_signal(sig)


def stop_everything(components: list[Component]) -> list[str]:
    """Stop every process started under this one; returns the names of those that needed SIGKILL."""
    ours = {c.process.pid for c in components}
    signal_all(descendants(), signal.SIGINT)  # Airflow and the stand-ins stop cleanly on SIGINT
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and any(_alive(p) for p in descendants()):
        for c in components:
            c.process.poll()
        reap_orphans(ours)
        time.sleep(0.2)
    killed = []
    for _ in range(3):  # SIGKILL whatever is left, and whatever a dying process started meanwhile
        left = [p for p in descendants() if _alive(p)]
        if not left:
            break
        killed += [c.name for c in components if c.process.poll() is None]
        signal_all(left, signal.SIGKILL)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.wait(timeout=5)
        reap_orphans(ours)
    for c in components:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.process.wait(timeout=5)
    return sorted(set(killed))


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def write_state(components: list[Component]) -> None:
    groups = [{"name": c.name, "pid": c.process.pid, "created": _created(c.process.pid)} for c in components]
    write_private(STATE, json.dumps({"pid": os.getpid(), "created": _created(os.getpid()), "groups": groups}, indent=2))


def _created(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def stop_leftovers() -> int:
    """`make stop`: the process groups of a `make run` that is gone (killed with SIGKILL, say)."""
    try:
        state = json.loads(STATE.read_text())
    except (OSError, ValueError):
        say(f"make stop: no running make run recorded in {STATE}")
        return 0
    if _created(state["pid"]) == state["created"]:
        say(f"make stop: make run (pid {state['pid']}) is running: stopping it")
        os.kill(state["pid"], signal.SIGTERM)
        return 0
    groups = [g for g in state["groups"] if _still_ours(g)]
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group["pid"], signal.SIGINT)
            say(f"make stop: stopping {group['name']} (process group {group['pid']})")
    stopped = len(groups)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and any(_group_alive(group["pid"]) for group in groups):
        time.sleep(0.2)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _group_alive(group["pid"]):
                os.killpg(group["pid"], signal.SIGKILL)
    STATE.unlink(missing_ok=True)
    say(f"make stop: {stopped} process group(s) of an earlier make run stopped" if stopped else
        "make stop: nothing of an earlier make run is running")
    return 0


def _still_ours(group: dict) -> bool:
    """The process group recorded is still the one make run started: its leader is that very process, or the
    leader is gone and members remain (Linux hands out no pid that is still a process group's id)."""
    leader = _created(group["pid"])
    if leader is not None:
        return leader == group["created"]
    return _group_alive(group["pid"])


def _group_alive(group: int) -> bool:
    """A process of process group ``group`` is still running (not a zombie)."""
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == group and proc.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


# ---------------------------------------------------------------------------------------------- starting
def taken_ports() -> list[str]:
    """Each port make run needs that something listens on, with that process (pid and command line)."""
    needed = {API_PORT: "the Airflow API server", WORKER_LOG_PORT: "the scheduler's log server",
              TRIGGER_LOG_PORT: "the triggerer's log server",
              **{s.port: f"the {s.label.split(' (')[0]}" for s in STANDINS},
              **{port: f"the {name}'s log server" for name, port in WORKER_LOG_PORTS.items()}}
    if len(needed) != (4 if CELERY else 3) + len(STANDINS):
        return ["the ports of BIZTALK_DR_API_PORT, BIZTALK_DR_STANDIN_PORTS and BIZTALK_DR_LOG_PORTS must all differ"]
    problems = []
    for port, what in needed.items():
        if _free(port):
            continue
        owners = _listeners(port)
        who = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in owners) or "a process this user cannot see"
        problems.append(f"port {port} ({what}) is in use by {who}")
    return problems


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a connection in TIME_WAIT does not count
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _listeners(port: int) -> list[tuple[int, str]]:
    found = {}
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    found[conn.pid] = shlex.join(psutil.Process(conn.pid).cmdline())[:300]
    return sorted(found.items())


def write_private(path: Path, text: str) -> None:
    """Atomically, mode 0600 from the first byte (it may hold a password)."""
    from biztalk_dr.ops.atomic_files import write_text_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, text)  # its temporary file is created 0600 and keeps that mode


def standin_password() -> str:
    path = VAR / "standin" / "password"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(18))
    path.chmod(0o600)
    return path.read_text().strip()


def group_configs() -> dict[str | None, object]:
    """Each group's file, written from the template the first time only; then the operator's. Its
    configuration as the DAGs will see it (its last valid version while it is broken), by group key."""
    if GROUP_COUNT > 1 and (stray := sorted(p.name for p in CONFIG.glob("group*.yaml")
                                            if p not in {g.config for g in GROUPS})):
        raise SystemExit(f"make run: {CONFIG} holds {', '.join(stray)}, a group BIZTALK_DR_GROUPS={GROUP_COUNT} starts "
                         "no stand-ins for (its DAGs would fail): set BIZTALK_DR_GROUPS (GROUPS=) to include it, or "
                         "delete the file")
    return {g.key: _group_config(g) for g in GROUPS}


def _group_config(group: DemoGroup) -> object:
    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.ops.config_fallback import group_config as dag_config
    from biztalk_dr.ops.config_files import read_config
    from sqlserver_standin.launcher import GROUP_FOLDERS, render_group_config

    path = group.config
    if not path.exists():
        render_group_config(TEMPLATE, group.root, path, group.replacements())
        say(f"Group configuration written to {path} (from {TEMPLATE.relative_to(ROOT)}); it is yours now: make run "
            "never rewrites it (delete it to start again from the template).")
    else:
        for folder in GROUP_FOLDERS:
            (group.root / folder).mkdir(parents=True, exist_ok=True)
        say(f"Group configuration: {path} (yours: never rewritten; delete it to start again from the template)")
    try:
        read_config(path)
    except ConfigError as exc:
        try:
            cfg = dag_config(path)
        except ConfigError:
            raise SystemExit("make run: the group's file is not valid, and no valid version of it was ever seen:\n"
                             + "\n".join(f"  {p}" for p in exc.problems)
                             + f"\nfix it (biztalk-dr config check {path}) or delete it to start again from the "
                               "template") from None
        say(f"warning: {path} is not valid ({len(exc.problems)} problem(s); biztalk-dr config check {path}): the DAGs "
            "run on its last valid version and alert until it is fixed")
        return cfg
    return dag_config(path)


def start_standins(cfgs: dict, password: str, env: dict[str, str]) -> list[Component]:
    from sqlserver_standin.launcher import start_standin
    from sqlserver_standin.seed import prepare_dr_instance, seed_biztalk_group

    components = []
    for standin in STANDINS:
        data_dir, name = standin.data_dir, standin.server
        if not (data_dir / ".seeded").exists():
            shutil.rmtree(data_dir, ignore_errors=True)  # what a seed interrupted by a signal left
            if standin.site == "primary":
                seed_biztalk_group(data_dir, cfgs[standin.group], instance_name=name)
            else:
                prepare_dr_instance(data_dir, instance_name=name)  # the group's logins, as DR instances have them
            (data_dir / ".seeded").touch()
        port, label = standin.port, standin.label
        log = LOGS / f"standin-{standin.group + '-' if standin.group else ''}{standin.site}.log"
        try:
            instance = start_standin(data_dir, name, port, LOGIN, password, log=log)
        except RuntimeError as exc:
            raise StartFailed(f"the {label} did not start: {exc}; see {log}", components) from None
        restart = (f"source {VAR / 'env.sh'}; biztalk-dr-standin serve --data-dir {data_dir} --port {port} --name "
                   f"{name} --login {LOGIN} --password-file {VAR / 'standin' / 'password'}")
        components.append(Component(label, instance.process, log, advice=(
            "Airflow keeps running: the DAG tasks that need this SQL Server fail and alert, as with a lost "
            f"server. To start it again with the same data, in another terminal: {restart}")))
        say(f"  {(standin.group + ' ' if standin.group else '') + standin.site:17} SQL Server stand-in {name} on "
            f"127.0.0.1:{port}")
    return components


class StartFailed(Exception):
    def __init__(self, message: str, components: list[Component]) -> None:
        super().__init__(message)
        self.components = components


def airflow_env(config: Path, password: str) -> dict[str, str]:
    """What every Airflow component and every CLI command of the group needs (also written to env.sh)."""
    from sqlserver_standin.launcher import odbc_connection

    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(VAR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": UI,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(WORKER_LOG_PORT),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(TRIGGER_LOG_PORT),
        "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA": "True",
        "BIZTALK_DR_CONFIG": str(config),
    }
    env.update({f"AIRFLOW_CONN_{s.conn_id.upper()}": json.dumps(odbc_connection(s.port, LOGIN, password))
                for s in STANDINS})
    if CELERY:
        env.update(shared_settings())
        env.update(celery_endpoints())
    return env


def shared_settings(path: Path = SHARED_SETTINGS) -> dict[str, str]:
    """deploy/airflow.env: the production shape's Airflow settings (docker-compose.yml's env_file too)."""
    settings = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or value[:1] in ("'", '"') or "${" in value:
            raise SystemExit(f"{MODE}: {path}, line {number}: expected KEY=VALUE (no quotes, no ${{...}}): {line!r}")
        settings[key] = value
    return settings


def celery_endpoints() -> dict[str, str]:
    """This machine's metadata database, broker and execution API (what deploy/airflow.env leaves out)."""
    db = POSTGRES_URL.split("://", 1)[1]
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": POSTGRES_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{db}",
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{UI}/execution/"}


def check_services() -> str | None:
    """make run-celery's PostgreSQL and Redis, reachable (its database created when missing); None, or the one
    line that says which one is not, where, and what to do."""
    import psycopg2
    import redis
    from sqlalchemy.engine import make_url

    try:
        url = make_url(POSTGRES_URL)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's ArgumentError and ValueError alike
        return f"BIZTALK_DR_POSTGRES_URL={POSTGRES_URL!r} is not a database URL ({exc})"
    where = f"{url.host or '127.0.0.1'}:{url.port or 5432}"
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=5).close()
    except OSError as exc:
        return (f"PostgreSQL is not reachable at {where} as {url.username} (BIZTALK_DR_POSTGRES_URL): "
                f"{exc.strerror or exc}; start it (service postgresql start) or point BIZTALK_DR_POSTGRES_URL at yours")
    try:
        with contextlib.closing(psycopg2.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                                                 user=url.username, password=url.password, dbname="postgres",
                                                 connect_timeout=5)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
                if cur.fetchone() is None:
                    from psycopg2 import sql

                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
                    say(f"  PostgreSQL database {url.database} created on {where}")
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split())[:200]
        return (f"PostgreSQL at {where} answers but refused {url.username} or database {url.database} "
                f"(BIZTALK_DR_POSTGRES_URL): {reason}; fix the user, password or database in BIZTALK_DR_POSTGRES_URL")
    shown = _without_password(REDIS_URL)
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        return (f"Redis is not reachable at {shown} (BIZTALK_DR_REDIS_URL): {exc}; start it (service "
                "redis-server start) or point BIZTALK_DR_REDIS_URL at yours")
    return None


def _without_password(url: str) -> str:
    """``url`` as it may be shown: its password, if any, left out."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def write_env_sh(env: dict[str, str]) -> Path:
    lines = [f"# make run's group ({dt.datetime.now().isoformat(timespec='seconds')}), for a second terminal:",
             f"#   source {VAR / 'env.sh'}",
             "# then biztalk-dr and airflow commands work against it. Mode 0600: it holds the stand-ins' password."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items() if key != "PATH"]
    lines.append(f"export PATH={shlex.quote(str(BIN))}:\"$PATH\"")
    path = VAR / "env.sh"
    write_private(path, "\n".join(lines) + "\n")
    return path


def migrate(env: dict[str, str]) -> None:
    log = LOGS / "airflow-db-migrate.log"
    process = start_process([str(BIN / "airflow"), "db", "migrate"], env, log)
    while process.poll() is None:
        time.sleep(0.2)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StartFailed(f"airflow db migrate failed ({exit_status(process.returncode)}); the end of {log}:\n{tail}",
                          [])


def create_pools(cfgs: list, env: dict[str, str]) -> None:
    """The pools the DAGs' tasks run in (biztalk_dr.domain.pools), every group's: Airflow schedules no task whose pool
    is missing."""
    from biztalk_dr.domain.pools import airflow_import_json

    path = VAR / "airflow" / "biztalk-dr-pools.json"
    path.write_text(airflow_import_json(cfgs), encoding="utf-8")
    log = LOGS / "airflow-pools-import.log"
    process = start_process([str(BIN / "airflow"), "pools", "import", str(path)], env, log)
    while process.poll() is None:
        time.sleep(0.2)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StartFailed(f"airflow pools import failed ({exit_status(process.returncode)}); the end of {log}:\n{tail}",
                          [])


def start_airflow(env: dict[str, str], started: list[Component], names: tuple[str, ...] = AIRFLOW_COMPONENTS,
                  ) -> list[Component]:
    """Airflow's components ``names``, each recorded (with ``started``) for `make stop` as soon as it runs."""
    worker = ("tasks queued for it go to the other worker; the task it was running fails once its heartbeat times "
              "out and the next run continues: stop make run-celery (Ctrl-C) and start it again")
    advice = {"celery-worker-1": worker, "celery-worker-2": worker,
        "api-server": "the UI and the REST API are gone (DAGs still run): stop make run (Ctrl-C) and start it again",
        "scheduler": "no DAG run is scheduled or started any more: stop make run (Ctrl-C) and start it again",
        "dag-processor": "DAG file changes are not picked up any more: stop make run (Ctrl-C) and start it again",
        "triggerer": "deferred tasks and deadline alerts wait: stop make run (Ctrl-C) and start it again",
    }
    components = []
    for name in names:
        command = [str(BIN / "airflow"), name]
        own_env = env
        if name == "api-server":
            command += ["--host", API_HOST, "--port", str(API_PORT)]
        elif name in WORKERS:  # two on one machine: each its own Celery name, pid file and log server port
            command = [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h",
                       "--pid", str(VAR / "airflow" / f"{name}.pid")]
            own_env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(WORKER_LOG_PORTS[name])}
        log = LOGS / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        components.append(Component(name, start_process(command, own_env, log), log,
                                    advice=f"{advice[name]}; why it stopped is in {log}", log_offset=offset))
        write_state(started + components)
    return components


def health() -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{API_PORT}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def not_ready(components: dict[str, Component], status: dict | None) -> list[str]:
    """What is not ready yet: our API server answering on its port, each job heartbeating since it started."""
    api = components["api-server"]
    if status is None:
        return ["the API server does not answer yet"]
    if not _serves_port(api.process.pid, API_PORT):
        return [f"port {API_PORT} is answered by another process than this make run's API server"]
    waiting = []
    for name, key in HEALTH_KEYS.items():
        entry = status.get(key) or {}
        beat = _time(entry.get(f"latest_{key}_heartbeat"))
        if entry.get("status") != "healthy" or beat is None or beat < components[name].started - 5:
            waiting.append(f"the {name} has not sent its first heartbeat")
    for name in WORKERS:  # Celery says "<name>@<host> ready." once it consumes from the broker
        if not components[name].said_since_start(" ready."):
            waiting.append(f"the {name} is not consuming tasks yet")
    return waiting


def _serves_port(pid: int, port: int) -> bool:
    tree = {pid, *(p.pid for p in _children(pid))}
    return any(owner in tree for owner, _cmd in _listeners(port)) or not _listeners(port)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def login_line() -> str:
    passwords = VAR / "airflow" / "simple_auth_manager_passwords.json.generated"
    try:
        password = json.loads(passwords.read_text()).get("admin")
    except (OSError, ValueError):
        password = None
    return f"login: admin   password: {password}" if password else f"login: admin   password: see {passwords}"


# ---------------------------------------------------------------------------------------------- supervision
def report_deaths(components: list[Component]) -> list[Component]:
    died = []
    for c in components:
        if not c.reported and c.process.poll() is not None:
            c.reported = True
            died.append(c)
            say(f"\nmake run: the {c.name} (pid {c.process.pid}) stopped ({exit_status(c.process.returncode)}) at "
                f"{dt.datetime.now():%H:%M:%S}. What to do: {c.advice}.")
            if tail := c.tail():
                say(f"  the end of {c.log}:\n{tail}")
    return died


class ParentGone(Exception):
    """make (or the terminal's shell) that started make run is gone: nobody can stop it any more."""


def check_parent(parent: int) -> None:
    if os.getppid() != parent:
        raise ParentGone()


def wait_for_api_server(components: list[Component], api: Component, parent: int) -> None:
    """Until our API server answers on its port. The scheduler starts only then: every task it queues calls the
    API server's execution API as it starts, and one started before it listens fails (connection refused) before
    it has run — a red first run of a new group for no reason of its own."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        check_parent(parent)
        if died := report_deaths(components):
            raise StartFailed(f"the {died[0].name} stopped while starting; nothing was left running", components)
        if health() is not None and _serves_port(api.process.pid, API_PORT):
            return
        time.sleep(0.5)
    raise StartFailed(f"the API server did not answer on port {API_PORT} within {READY_SECONDS:.0f} s; its log: "
                      f"{api.log}", components)


def wait_until_ready(components: list[Component], airflow: dict[str, Component], parent: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    waiting = ["the API server does not answer yet"]
    while time.monotonic() < deadline:
        check_parent(parent)
        if died := report_deaths(components):
            raise StartFailed(f"the {died[0].name} stopped while starting; nothing was left running", components)
        waiting = not_ready(airflow, health())
        if not waiting:
            return
        time.sleep(1)
    raise StartFailed(f"Airflow was not ready within {READY_SECONDS:.0f} s: {'; '.join(waiting)}. The logs are in "
                      f"{LOGS}", components)


def supervise(components: list[Component], airflow: dict[str, Component], parent: int) -> int:
    """Until a stop signal: report each component that dies and a scheduler that stops heartbeating."""
    heartbeat_ok, last_health = True, time.monotonic()
    while True:
        report_deaths(components)
        reap_orphans({c.process.pid for c in components})
        check_parent(parent)
        if all(c.reported for c in components):
            say("make run: every component has stopped")
            return 1
        if time.monotonic() - last_health > 15 and airflow["scheduler"].process.poll() is None:
            last_health = time.monotonic()
            status = health()
            entry = (status or {}).get("scheduler") or {}
            if status is not None and (entry.get("status") == "healthy") != heartbeat_ok:
                heartbeat_ok = not heartbeat_ok
                say(f"\nmake run: the scheduler is {'heartbeating again' if heartbeat_ok else 'running but not heartbeating'}"
                    f" (last heartbeat {entry.get('latest_scheduler_heartbeat')})"
                    + ("" if heartbeat_ok else f": runs are not scheduled; see {airflow['scheduler'].log}"))
        time.sleep(1)


def main() -> int:
    if "--stop" in sys.argv[1:]:
        return stop_leftovers()
    stopping = {"signal": None}

    def on_signal(signum: int, _frame) -> None:  # noqa: ANN001
        if stopping["signal"] is None:
            stopping["signal"] = signum
            raise Stop()
        say(f"make run: {signal.Signals(signum).name} again: still stopping (SIGKILL follows after "
            f"{STOP_GRACE_SECONDS} s)")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    become_subreaper()
    parent = os.getppid()
    components: list[Component] = []
    try:
        if CELERY and (missing := check_services()):  # first: the deployment's own services, then this machine's ports
            say(f"{MODE}: cannot start: {missing}")
            return 2
        if problems := taken_ports():
            say("make run: cannot start:\n" + "\n".join(f"  {p}" for p in problems)
                + "\nStop that process (an earlier make run killed hard? `make stop`), or choose other ports: "
                  "BIZTALK_DR_API_PORT, BIZTALK_DR_STANDIN_PORTS, BIZTALK_DR_LOG_PORTS")
            return 2
        from biztalk_dr.domain.errors import PrerequisiteMissing
        from biztalk_dr.edge.prerequisites import check_driver, check_driver_manager, require

        try:
            require(check_driver_manager(), check_driver("FreeTDS", "which the stand-ins' connections use"))
        except PrerequisiteMissing as exc:
            say(f"make run: cannot start: {exc}")
            return 2
        LOGS.mkdir(parents=True, exist_ok=True)
        cfgs, config = group_configs(), CONFIG
        password = standin_password()
        env = {**os.environ, **airflow_env(config, password)}
        what = ("a BizTalk group on the primary" if GROUP_COUNT == 1 else
                f"{GROUP_COUNT} BizTalk groups, each on a primary and a standby of its own; one validation instance")
        say(f"Starting the SQL Server stand-ins ({what}; standby databases are seeded by log shipping):")
        components += start_standins(cfgs, password, env)
        write_state(components)
        say(f"Environment for a second terminal: source {write_env_sh(airflow_env(config, password))}")
        engine = (f"PostgreSQL {POSTGRES_URL.rsplit('@', 1)[-1]}, CeleryExecutor with Redis {_without_password(REDIS_URL)}, "
                  "two Celery workers") if CELERY else "SQLite, LocalExecutor"
        say(f"Starting Airflow ({engine}; logs in {LOGS}) ...")
        migrate(env)
        create_pools(list(cfgs.values()), env)
        airflow_components = start_airflow(env, components, ("api-server",))
        components += airflow_components
        wait_for_api_server(components, airflow_components[0], parent)
        rest = start_airflow(env, components, tuple(n for n in AIRFLOW_COMPONENTS if n != "api-server"))
        airflow_components += rest
        components += rest
        airflow = {c.name: c for c in airflow_components}
        wait_until_ready(components, airflow, parent)
        say(f"\nAirflow UI: {UI}   {login_line()}\n{'Group configuration' if GROUP_COUNT == 1 else 'Group files (one per group)'}: {config}\nLogs: {LOGS}\n"
            f"Second terminal: source {VAR / 'env.sh'}\nCtrl-C stops everything.")
        return supervise(components, airflow, parent)
    except Stop:
        name = signal.Signals(stopping["signal"]).name
        say(f"\nmake run: {name}: stopping everything it started ...")
        return 0
    except ParentGone:
        stopping["signal"] = stopping["signal"] or signal.SIGTERM
        say("\nmake run: make (or the terminal that started it) is gone: stopping everything it started ...")
        return 0
    except StartFailed as exc:
        stopping["signal"] = stopping["signal"] or signal.SIGTERM  # a signal now must not interrupt the stop
        say(f"make run: cannot start: {exc}")
        return 1
    finally:
        stopping["signal"] = stopping["signal"] or signal.SIGTERM
        began = time.monotonic()
        killed = stop_everything(components)
        if killed:
            say(f"make run: {', '.join(killed)} did not stop within {STOP_GRACE_SECONDS} s: killed")
        STATE.unlink(missing_ok=True)
        say(f"make run: stopped ({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Stop:  # a signal in the instant between a failure and its handling; the stop has run (finally)
        sys.exit(0)
