"""The DAGs on Airflow's distributed engine, as production runs them: `make run-celery` (PostgreSQL, CeleryExecutor,
Redis, the real scheduler and two Celery workers) driven through the REST API and checked through it and the
stand-ins — never dag.test(). Skipped, with the reason, where PostgreSQL or Redis does not answer.

The deployment runs two stand-in groups (`make run-celery GROUPS=2`: DAG ids dr_log_backup__group1, ...; each
group its own primary, standby and pool): the log cycle runs for both at once, group 1's restore held while
group 2's whole cycle runs beside it. The later tests drive group 1.

Each test leaves the group where the next can continue from it (the faults too): the module is one deployment's
life, in order — the log cycle, the standby pool across both workers, a failover dry run answered through the
REST API, then a worker killed in the middle of a restore, the scheduler killed and restarted, Redis's queue
wiped. After each, the next runs converge: no backup file restored twice, none lost, the standby continuable."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, standin_available
from tests.scripts.make_run import MakeRun, start_make_run

# a loaded 2-core machine runs a task in ~7 s (start, DAG parse, execution API): each test polls with deadlines
pytestmark = [pytest.mark.engine, pytest.mark.standin, pytest.mark.timeout(900)]

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
GROUP = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "BizTalkDTADb", "SSODB", "BizTalkRuleEngineDb", "BAMPrimaryImport",
         "DemoOrders"]
RESTORE_TASKS = {"dr_log_shipping": "restore_standby_set_by_set", "dr_standby_reseed": "reseed_standby"}
KEYS = ("group1", "group2")  # the deployment's groups (make run-celery GROUPS=2)
POOL = "biztalk_dr_standby_SQLDR01"  # group 1's standby; group 2's is SQLDR02
FINISHED = {"success", "failed"}
# a task whose worker died is failed after this long without a heartbeat (default 300 s): the faults' tests wait it
TIMEOUTS = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"}


def _unreachable() -> str | None:
    import shutil

    for tool in ("psql", "redis-cli"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: the engine tests use it for their own database and Redis number"
    for what, (host, port) in (("PostgreSQL", POSTGRES), ("Redis", REDIS)):
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            return f"{what} does not answer at {host}:{port} ({exc.strerror or exc}): the engine tests need it"
    return None


def _redis(db: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-h", REDIS[0], "-p", str(REDIS[1]), "-n", str(db), *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", POSTGRES[0], "-p", str(POSTGRES[1]), "-U", "postgres", "-d", "postgres", "-qc", sql],
                   capture_output=True, text=True, timeout=60, check=True)


def _empty_redis_db() -> int:
    """A Redis database number nobody uses now (others share this Redis): the highest empty one."""
    for db in range(15, 0, -1):
        if _redis(db, "DBSIZE") == "0":
            return db
    pytest.skip("no empty Redis database (1-15) for the engine tests")


class Deployment:
    """make run-celery, and what the tests ask it and one group's stand-ins (DAG ids are given without the
    group's key: ``dr_log_backup`` means this group's ``dr_log_backup__group1``)."""

    def __init__(self, run: MakeRun, redis_db: int, key: str = KEYS[0]) -> None:
        self.run, self.redis_db, self.key = run, redis_db, key
        self.var = run.var
        self.restarted: list[subprocess.Popen] = []  # components a test started again (outside make run)

    def group(self, key: str) -> Deployment:
        """The same deployment, as seen from group ``key``."""
        other = Deployment(self.run, self.redis_db, key)
        other.restarted = self.restarted
        return other

    def dag(self, base: str) -> str:
        return f"{base}__{self.key}"

    def stop_restarted(self) -> None:
        for process in self.restarted:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # its process group: airflow's children too
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    # -- REST API ----------------------------------------------------------------------------------
    def api(self, path: str, **kw) -> dict:
        return self.run.patient_api(path, **kw)  # the API server may be briefly busy (a loaded machine), never wrong

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return self.api(f"/api/v2/dags/{self.dag(dag_id)}/dagRuns", method="POST", body=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api(f"/api/v2/dags/{self.dag(dag_id)}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in FINISHED:
            assert time.monotonic() < deadline, f"{dag_id} {run_id} still {state} after {timeout:.0f} s: {self.tasks(dag_id, run_id)}"
            time.sleep(1)
        return state

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        tis = self.api(f"/api/v2/dags/{self.dag(dag_id)}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]
        return {t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]": t for t in tis}

    def runs(self, dag_id: str) -> list[dict]:
        return self.api(f"/api/v2/dags/{self.dag(dag_id)}/dagRuns?order_by=run_after&limit=200")["dag_runs"]

    def settle(self, dag_ids=("dr_full_backup", "dr_log_backup", "dr_log_shipping", "dr_standby_reseed"),
               timeout: float = 240) -> None:
        """Until no run of ``dag_ids`` of either group is queued or running (asset-triggered shipping included)."""
        deadline = time.monotonic() + timeout
        groups = [self.group(key) for key in KEYS]
        while busy := [(g.dag(d), r["dag_run_id"], r["state"]) for g in groups for d in dag_ids for r in g.runs(d)
                       if r["state"] not in FINISHED]:
            assert time.monotonic() < deadline, f"runs not finished within {timeout:.0f} s: {busy}"
            time.sleep(1)

    @contextlib.contextmanager
    def paused(self, *dag_ids: str):
        """``dag_ids`` of this group paused (as the UI's toggle does), their runs finished; unpaused after."""
        for dag_id in dag_ids:
            self.api(f"/api/v2/dags/{self.dag(dag_id)}", method="PATCH", body={"is_paused": True})
        try:
            self.settle()
            yield
        finally:
            for dag_id in dag_ids:
                self.api(f"/api/v2/dags/{self.dag(dag_id)}", method="PATCH", body={"is_paused": False})

    def shipped_by(self, backup_run: str, timeout: float = 400) -> dict:
        """The dr_log_shipping run that the backup set of ``backup_run`` (its Asset event) triggered, finished."""
        deadline = time.monotonic() + timeout
        while True:
            for run in self.runs("dr_log_shipping"):
                if run["run_type"] != "asset_triggered":
                    continue
                shipping = self.dag("dr_log_shipping")
                events = self.api(f"/api/v2/dags/{shipping}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
                if any(e["source_run_id"] == backup_run for e in events["asset_events"]):
                    self.wait_run("dr_log_shipping", run["dag_run_id"], timeout=max(deadline - time.monotonic(), 1))
                    return self.api(f"/api/v2/dags/{shipping}/dagRuns/{run['dag_run_id']}")
            assert time.monotonic() < deadline, f"no shipping run triggered by {backup_run}'s set"
            time.sleep(1)

    def log_cycle(self, timeout: float = 400) -> dict:
        """A log backup triggered through the REST API, and the shipping run its Asset event started (finished)."""
        backup = self.trigger("dr_log_backup")
        assert self.wait_run("dr_log_backup", backup, timeout=timeout) == "success", self.tasks("dr_log_backup", backup)
        return self.shipped_by(backup, timeout=timeout)

    def running(self, dag_id: str, task_id: str, timeout: float = 400) -> str:
        """The run of ``dag_id`` whose ``task_id`` is running, once one is."""
        deadline = time.monotonic() + timeout
        while True:
            for run in self.runs(dag_id):
                if (ti := self.tasks(dag_id, run["dag_run_id"]).get(task_id)) and ti["state"] == "running":
                    return run["dag_run_id"]
            assert time.monotonic() < deadline, f"no {task_id} of {self.dag(dag_id)} running within {timeout:.0f} s"
            time.sleep(1)

    def restore_tasks(self) -> list[dict]:
        """Every task instance that restored on the standby (its pool's), with its DAG and run."""
        out = []
        for dag_id, task_id in RESTORE_TASKS.items():
            for run in self.runs(dag_id):
                ti = self.tasks(dag_id, run["dag_run_id"]).get(task_id)
                if ti and ti["start_date"]:
                    out.append({**ti, "dag_id": dag_id, "dag_run_id": run["dag_run_id"]})
        return out

    # -- stand-ins ---------------------------------------------------------------------------------
    def query(self, site: str, sql: str) -> list[tuple]:
        import pyodbc

        from tests.sqlserver_standin.tds.conftest import odbc_connection_string

        # make run's order: group 1's primary and standby, the validation instance, each further group's pair
        n, ports = KEYS.index(self.key), self.run.standin_ports
        port = ports[2] if site == "validation" else ports[(0 if n == 0 else 1 + 2 * n) + (site == "standby")]
        password = (self.var / "standin" / "password").read_text().strip()
        conn = pyodbc.connect(odbc_connection_string("freetds", port, "biztalk_dr", password), autocommit=True)
        try:
            cursor = conn.cursor().execute(sql)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        finally:
            conn.close()

    def complete_sets(self) -> list[int]:
        return [r[0] for r in self.query("primary", "SELECT DISTINCT BackupSetId FROM BizTalkMgmtDb.dbo.adm_BackupHistory"
                                                    " WHERE SetComplete = 1 ORDER BY BackupSetId")]

    def positions(self) -> dict[str, int | None]:
        state = json.loads((self.root / "landing" / ".biztalk-dr" / "standby-state.json").read_text())
        return {db: state["databases"].get(db, {}).get("last_restored_set") for db in GROUP}

    def assert_converged(self) -> None:
        """Every standby database RESTORING at the newest complete set but one; no backup restored twice into
        a database; every shipped file still in the landing folder, with its manifest."""
        sets = self.complete_sets()
        assert len(sets) >= 2, sets
        assert self.positions() == dict.fromkeys(GROUP, sets[-2]), (sets, self.positions())
        states = dict(self.query("standby", "SELECT name, state_desc FROM sys.databases"))
        assert {db: states.get(db) for db in GROUP} == dict.fromkeys(GROUP, "RESTORING")
        restored = self.query("standby", "SELECT h.destination_database_name, b.first_lsn, b.last_lsn, h.restore_type "
                                         "FROM msdb.dbo.restorehistory AS h JOIN msdb.dbo.backupset AS b "
                                         "ON b.backup_set_id = h.backup_set_id")
        twice = {r for r in restored if restored.count(r) > 1}
        assert not twice, f"restored twice: {sorted(twice)}"
        landing = self.root / "landing"
        for manifest in landing.glob("*.manifest.json"):
            shipped = json.loads(manifest.read_text())
            assert (landing / manifest.name.removesuffix(".manifest.json")).is_file(), shipped

    @property
    def root(self) -> Path:
        """The group's folders (its backups, landing folder, ...)."""
        return self.var / "groups" / self.key

    def fault(self, site: str, *args: str) -> None:
        data_dir = self.var / "standin" / ("validation" if site == "validation" else f"{self.key}/{site}")
        subprocess.run([sys.executable, "-m", "sqlserver_standin.cli", "fault", *args, "--data-dir", str(data_dir)],
                       check=True, capture_output=True, timeout=60)

    # -- processes ---------------------------------------------------------------------------------
    def worker(self, name: str) -> psutil.Process:
        return self.run.component(rf"--celery-hostname {name}@")

    def ran_on(self) -> dict[str, set[tuple[str, str]]]:
        """worker -> the (dag_id, task_id) it executed, from its own log (Celery says each workload it runs)."""
        out = {}
        for name in ("celery-worker-1", "celery-worker-2"):
            text = (self.var / "logs" / f"{name}.log").read_text(errors="replace")
            out[name] = set(re.findall(r"Executing workload in Celery: .*?task_id='([^']+)', dag_id='([^']+)'", text))
            out[name] = {(dag, task) for task, dag in out[name]}
        return out


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    if reason := _unreachable():
        pytest.skip(reason)
    database, redis_db = f"biztalk_dr_engine_{os.getpid()}", _empty_redis_db()
    var = tmp_path_factory.mktemp("engine") / "var"
    run = start_make_run(var, celery=True, groups=len(KEYS), env={
        "BIZTALK_DR_POSTGRES_URL": f"postgresql+psycopg2://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{database}",
        "BIZTALK_DR_REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
        **TIMEOUTS})
    deployment = Deployment(run, redis_db)
    try:
        run.wait_for(r"^Airflow UI: ", timeout=420)
        # a new deployment: each group's first full backup set
        run.first_runs(tuple(deployment.group(key).dag("dr_full_backup") for key in KEYS), timeout=400)
        deployment.settle()
        yield deployment
    finally:
        deployment.stop_restarted()
        if run.process.poll() is None:
            survivors = run.stop_with(signal.SIGTERM)
            assert survivors == [], survivors
        with contextlib.suppress(subprocess.SubprocessError, AssertionError):
            _redis(redis_db, "FLUSHDB")
        with contextlib.suppress(subprocess.SubprocessError):
            _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_the_log_cycle_of_two_groups_at_once_on_the_scheduler_and_two_celery_workers(deployment):
    """Full backup -> log backups -> shipping triggered by their Asset events -> each group's standby RESTORING at
    the newest set but one; the first runs' full backup counts as the full. Group 1's restore is held (its
    standby's slow_restore, until cleared) while group 2's whole cycle runs: one group's long restore, in its
    standby's pool, starves neither the other group's log backup nor its restore."""
    d, other = deployment, deployment.group(KEYS[1])
    assert d.api("/api/v2/importErrors")["total_entries"] == 0
    for g in (d, other):
        full = g.runs("dr_full_backup")
        if not full or full[-1]["state"] != "success":
            assert g.wait_run("dr_full_backup", g.trigger("dr_full_backup")) == "success"
    d.fault("standby", "slow_restore", "--seconds", "600")  # held until cleared below
    try:
        backup = d.trigger("dr_log_backup")  # full set, then a log set: the standby restores the full one
        assert d.wait_run("dr_log_backup", backup, timeout=400) == "success", d.tasks("dr_log_backup", backup)
        held = d.running("dr_log_shipping", "restore_standby_set_by_set")
        shipped_other = other.log_cycle()  # group 2's whole cycle meanwhile
        assert shipped_other["state"] == "success", other.tasks("dr_log_shipping", shipped_other["dag_run_id"])
        assert d.tasks("dr_log_shipping", held)["restore_standby_set_by_set"]["state"] == "running"
        assert d.api(f"/api/v2/pools/{POOL}")["running_slots"] == 1  # group 1's pool, held all along
    finally:
        d.fault("standby", "clear")  # the held RESTORE goes on
    assert d.wait_run("dr_log_shipping", held, timeout=300) == "success", d.tasks("dr_log_shipping", held)
    shipped = d.shipped_by(backup)
    assert shipped["state"] == "success", d.tasks("dr_log_shipping", shipped["dag_run_id"])
    d.settle()
    d.assert_converged()
    other.assert_converged()
    workers = d.ran_on()
    assert workers["celery-worker-1"] and workers["celery-worker-2"], workers  # both workers took tasks


def test_restores_on_the_standby_take_turns_across_both_workers(deployment):
    """The standby's pool (one slot, created at start) keeps every restore task apart, whichever worker runs
    it: several reseed dry runs and a shipping run queued at once run one after another."""
    d = deployment
    pool = d.api(f"/api/v2/pools/{POOL}")
    assert pool["slots"] == 1
    d.fault("standby", "slow_restore", "--seconds", "1")  # a dry run restores nothing: shipping's restore takes time
    try:
        for attempt in range(6):  # Celery hands a task to whichever worker asks first: until both have restored
            if attempt and _restorers(d) == {"celery-worker-1", "celery-worker-2"}:
                break
            log_backup = d.trigger("dr_log_backup")  # its Asset event starts a shipping run, which restores
            d.trigger("dr_standby_reseed", {"dry_run": True})  # queued beside it, in the same pool
            assert d.wait_run("dr_log_backup", log_backup, timeout=300) == "success"
            d.shipped_by(log_backup)
            d.settle(timeout=400)
    finally:
        d.fault("standby", "clear")
    restores = sorted(d.restore_tasks(), key=lambda t: t["start_date"])
    assert all(t["state"] == "success" and t["pool"] == POOL for t in restores), restores
    for earlier, later in zip(restores, restores[1:], strict=False):
        assert earlier["end_date"] <= later["start_date"], f"overlapping restores: {earlier} and {later}"
    assert _restorers(d) == {"celery-worker-1", "celery-worker-2"}, d.ran_on()
    d.assert_converged()


def _restorers(d: Deployment) -> set[str]:
    """The workers that have run a restore task on the standby."""
    return {name for name, done in d.ran_on().items() if done & {(d.dag(dag), task) for dag, task in RESTORE_TASKS.items()}}


def test_a_failover_dry_run_answered_through_the_rest_api(deployment):
    """As the UI does it: the run triggered with its form, each approval answered on its HITL detail."""
    d = deployment
    # The source is alive here: a scheduled log backup (every 15 min by the clock) taken while the dry run runs is
    # shipped, and the standby restores the approved mark's set past its mark; the re-check before any restore
    # then refuses, rightly (a dry run holds no schedule). The backups are paused as an operator rehearsing does.
    with d.paused("dr_log_backup", "dr_full_backup"):
        before = d.positions()
        run_id = d.trigger("dr_failover", {"mode": "disaster", "dry_run": True})
        answered, deadline = set(), time.monotonic() + 240
        while (state := d.run_state("dr_failover", run_id)) not in FINISHED:
            assert time.monotonic() < deadline, f"failover dry run still {state}: {d.tasks('dr_failover', run_id)}"
            waiting = d.api(f"/api/v2/dags/{d.dag('dr_failover')}/dagRuns/{run_id}/hitlDetails"
                            "?response_received=false")
            for detail in waiting["hitl_details"]:
                ti = detail["task_instance"]
                # Airflow 3.3 resumes a task on its response only once the task is awaiting input: a response in
                # the instant between the detail's creation and that state is kept but resumes nothing (the task
                # then waits for its 4-hour timeout). A person never answers that fast; this loop could.
                if ti["state"] != "awaiting_input":
                    continue
                d.api(f"/api/v2/dags/{d.dag('dr_failover')}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/"
                      f"{ti['map_index']}/hitlDetails", method="PATCH",
                      body={"chosen_options": ["Approve"], "params_input": {}})
                answered.add(ti["task_id"])
            time.sleep(1)
    assert state == "success", d.tasks("dr_failover", run_id)
    assert answered == {"assess.approve_failover", "enable_processing.confirm_processing_enabled"}
    answers = d.api(f"/api/v2/dags/{d.dag('dr_failover')}/dagRuns/{run_id}/hitlDetails?response_received=true")[
        "hitl_details"]
    assert {a["responded_by_user"]["name"] for a in answers} == {"admin"}
    assert d.positions() == before  # a dry run changes nothing
    d.assert_converged()


def test_a_celery_worker_killed_in_the_middle_of_a_restore(deployment):
    d = deployment
    d.fault("standby", "slow_restore", "--seconds", "10")  # per RESTORE: the task lasts a minute or more
    try:
        backup = d.trigger("dr_log_backup")
        assert d.wait_run("dr_log_backup", backup, timeout=300) == "success"
        deadline, victim = time.monotonic() + 300, None
        while victim is None:  # the restore task running: the worker running it
            assert time.monotonic() < deadline, "no restore started"
            for run in d.runs("dr_log_shipping"):
                ti = d.tasks("dr_log_shipping", run["dag_run_id"]).get("restore_standby_set_by_set")
                if ti and ti["state"] == "running" and ti["pid"]:
                    victim, killed_run = _worker_of(d, ti["pid"]), run["dag_run_id"]
            time.sleep(0.5)
        os.kill(victim.pid, signal.SIGKILL)  # by its pid: the worker's main process
        d.run.wait_for(r"make run: the celery-worker-\d \(pid \d+\) stopped \(killed by SIGKILL\)", timeout=60)
    finally:
        d.fault("standby", "clear")
    d.shipped_by(backup)
    d.settle(timeout=300)
    # the restore it was running is failed (and alerted) once its heartbeat times out: never left "running"
    assert d.tasks("dr_log_shipping", killed_run)["restore_standby_set_by_set"]["state"] == "failed"
    # the next runs continue from whatever the killed restore left (the other worker runs them)
    assert d.log_cycle()["state"] == "success"
    d.settle()
    d.assert_converged()


def test_the_scheduler_killed_and_restarted(deployment):
    d = deployment
    scheduler = d.run.component(r"airflow scheduler$")
    os.killpg(scheduler.pid, signal.SIGKILL)
    d.run.wait_for(r"make run: the scheduler \(pid \d+\) stopped \(killed by SIGKILL\)", timeout=60)
    run_id = d.trigger("dr_log_backup")  # accepted by the API server while no scheduler runs
    d.restarted.append(_start_like(d, "scheduler"))  # the deployment's scheduler from now on
    assert d.wait_run("dr_log_backup", run_id, timeout=300) == "success"
    assert d.shipped_by(run_id)["state"] == "success"
    d.settle()
    d.assert_converged()


def test_redis_restarted_its_queue_lost(deployment):
    """The broker's database wiped (what a Redis restarted without persistence leaves): the scheduler sends the
    queued tasks again and the runs converge."""
    d = deployment
    for line in _redis(d.redis_db, "CLIENT", "LIST").splitlines():  # this deployment's connections, dropped
        if f" db={d.redis_db} " in f" {line} ":
            _redis(d.redis_db, "CLIENT", "KILL", "ID", line.split()[0].removeprefix("id="))
    _redis(d.redis_db, "FLUSHDB")
    assert d.log_cycle(timeout=420)["state"] == "success"
    d.settle(timeout=420)
    d.assert_converged()


def _worker_of(d: Deployment, pid: int) -> psutil.Process | None:
    """The Celery worker (main process) under which task process ``pid`` runs."""
    with contextlib.suppress(psutil.Error):
        chain = [psutil.Process(pid), *psutil.Process(pid).parents()]
        for name in ("celery-worker-1", "celery-worker-2"):
            worker = d.worker(name)
            if worker.pid in {p.pid for p in chain}:
                return worker
    return None


def _start_like(d: Deployment, component: str) -> subprocess.Popen:
    """``airflow <component>`` again, in the environment make run-celery gave it (var/env.sh)."""
    env_sh = d.var / "env.sh"
    log = d.var / "logs" / f"{component}-restarted.log"
    with open(log, "a") as out:
        return subprocess.Popen(["bash", "-c", f"source {env_sh} && exec airflow {component}"], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env={"PATH": os.environ["PATH"], "HOME": str(Path.home()), **TIMEOUTS})
