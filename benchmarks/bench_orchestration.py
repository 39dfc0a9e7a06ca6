"""Orchestration overhead of one log cycle, and how it grows from 1 to 4 BizTalk groups: CeleryExecutor
(make run-celery: PostgreSQL, Redis, two workers) against standalone (make run: SQLite, LocalExecutor), in the
same run, on the same stand-in groups.

One cycle of a group: its dr_log_backup triggered through the REST API -> its set verified and published (Asset
event) -> the asset-triggered dr_log_shipping run ships and verifies it (restorable at the standby) and restores
the one before. Each engine runs one deployment of 4 stand-in groups (GROUPS=4: each its own primary, standby,
DAGs and pool); k of them (1, 2, then 4) start a cycle at the same moment, as groups on one log interval do.
Figures per engine and k, over every group's cycle of N rounds:

  cycle     wall time from the trigger to the end of that group's shipping run (median; max: the slowest group)
  in tasks  the tasks' own time on the critical path (per task id the longest of its mapped boxes, summed)
  overhead  cycle - in tasks: scheduling, queueing, task start (process, DAG parse, execution API), Asset
            event to the next run, and waiting for a free slot behind the other groups' tasks

Issue 20's goal: a cycle under 60 s at 4 groups, so a 5-minute log interval stays sustainable. The deployments
run one after the other (never both at once on a shared machine); their first scheduled runs finish before the
clock starts, and each round starts once no backup or shipping run of any group is left. Usage:
python benchmarks/bench_orchestration.py [rounds] [standalone|celery] (default 2, both). Needs PostgreSQL at 127.0.0.1:5432 and Redis at
127.0.0.1:6379 for the Celery half (otherwise it says so and measures standalone).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scripts.make_run import start_make_run  # noqa: E402 - the harness the tests drive make run with

FINISHED = {"success", "failed"}


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _wait(run, dag_id: str, run_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while (found := run.api(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))["state"] not in FINISHED:
        if time.monotonic() > deadline:
            raise SystemExit(f"{dag_id} {run_id} not finished within {timeout:.0f} s")
        time.sleep(0.5)
    return found


GROUPS = 4
CONCURRENCY = (1, 2, 4)


class _Patient:
    """The deployment's REST API, asked again while a loaded machine's API server is slow to answer (never wrong)."""

    def __init__(self, run) -> None:  # noqa: ANN001 - MakeRun
        self.run = run

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.run, name)

    def api(self, path: str, **kw) -> dict:
        return self.run.patient_api(path, **kw)


def _dag(base: str, n: int) -> str:
    return f"{base}__group{n}"


def _busy(run) -> bool:
    return any(r["state"] not in FINISHED for n in range(1, GROUPS + 1)
               for d in ("dr_full_backup", "dr_log_backup", "dr_log_shipping")
               for r in run.api(f"/api/v2/dags/{_dag(d, n)}/dagRuns?limit=100")["dag_runs"])


def _quiet(run, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while _busy(run):
        if time.monotonic() > deadline:
            raise SystemExit(f"backup or shipping runs still busy after {timeout:.0f} s")
        time.sleep(1)


def _critical(run, dag_id: str, run_id: str) -> float:
    tis = run.api(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]
    longest: dict[str, float] = {}
    for ti in tis:
        if ti["start_date"] and ti["end_date"]:
            longest[ti["task_id"]] = max(longest.get(ti["task_id"], 0.0), _ts(ti["end_date"]) - _ts(ti["start_date"]))
    return sum(longest.values())


def cycles_at_once(run, groups: list[int]) -> list[tuple[float, float]]:
    """Each of ``groups`` starts a log cycle at the same moment: (cycle, in tasks) of each."""
    shipping = {n: _dag("dr_log_shipping", n) for n in groups}
    before = {n: {r["dag_run_id"] for r in run.api(f"/api/v2/dags/{shipping[n]}/dagRuns?limit=200")["dag_runs"]}
              for n in groups}
    start = time.time()
    backups = {n: run.api(f"/api/v2/dags/{_dag('dr_log_backup', n)}/dagRuns", method="POST",
                          body={"logical_date": None})["dag_run_id"] for n in groups}
    out = []
    for n in groups:
        if _wait(run, _dag("dr_log_backup", n), backups[n])["state"] != "success":
            raise SystemExit(f"group{n}'s log backup failed: see its run in the UI")
        deadline = time.monotonic() + 600
        while True:  # the shipping run this backup's Asset event triggered (not a scheduled backup's)
            new = [r for r in run.api(f"/api/v2/dags/{shipping[n]}/dagRuns?limit=200")["dag_runs"]
                   if r["dag_run_id"] not in before[n] and r["run_type"] == "asset_triggered"
                   and any(e["source_run_id"] == backups[n] for e in run.api(
                       f"/api/v2/dags/{shipping[n]}/dagRuns/{r['dag_run_id']}/upstreamAssetEvents")["asset_events"])]
            if new:
                shipped = _wait(run, shipping[n], new[0]["dag_run_id"])
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no shipping run of group{n} was triggered by the backup set's Asset event")
            time.sleep(0.5)
        if shipped["state"] != "success":
            raise SystemExit(f"group{n}'s shipping run {shipped['dag_run_id']} failed: see it in the UI")
        out.append((_ts(shipped["end_date"]) - start, _critical(run, _dag("dr_log_backup", n), backups[n])
                    + _critical(run, shipping[n], shipped["dag_run_id"])))
    return out


def measure(name: str, rounds: int, **kw) -> tuple[str, dict[int, list[tuple[float, float]]]]:
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as folder:
        run = start_make_run(Path(folder) / "var", groups=GROUPS, **kw)
        try:
            run.wait_for(r"^Airflow UI: ", timeout=900)
            run = _Patient(run)
            type(run.run).first_runs(run, tuple(_dag("dr_full_backup", n) for n in range(1, GROUPS + 1)), timeout=900)
            results: dict[int, list[tuple[float, float]]] = {k: [] for k in CONCURRENCY}
            for _ in range(rounds):
                for k in CONCURRENCY:
                    _quiet(run)
                    results[k] += cycles_at_once(run, list(range(1, k + 1)))
                    print(f"  {name}: {k} group(s) at once: " + ", ".join(f"{c:.1f}" for c, _ in results[k][-k:]),
                          flush=True)
            return name, results
        finally:
            if run.process.poll() is None:
                run.stop_with(signal.SIGTERM)


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except OSError:
        return False
    return True


def _empty_redis_db() -> int:
    """The highest Redis database nobody uses now (others share this Redis)."""
    for db in range(14, 0, -1):  # 15 is the engine tests' first choice
        size = subprocess.run(["redis-cli", "-n", str(db), "DBSIZE"], capture_output=True, text=True, timeout=30)
        if size.stdout.strip() == "0":
            return db
    raise SystemExit("no empty Redis database (1-14) to measure with")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    engines = sys.argv[2:] or ["standalone", "celery"]  # one of them only: [rounds] standalone|celery
    results = [measure("standalone (SQLite, LocalExecutor)", rounds)] if "standalone" in engines else []
    if "celery" not in engines:
        pass
    elif _reachable(5432) and _reachable(6379):
        database, redis_db = f"biztalk_dr_bench_{os.getpid()}", _empty_redis_db()
        try:
            results.append(measure("celery (PostgreSQL, Redis, 2 workers)", rounds, celery=True, env={
                "BIZTALK_DR_POSTGRES_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
                "BIZTALK_DR_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}"}))
        finally:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {database} "
                            "WITH (FORCE)"], capture_output=True, timeout=60)
            subprocess.run(["redis-cli", "-n", str(redis_db), "FLUSHDB"], capture_output=True, timeout=60)
    else:
        print("PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) does not answer: the Celery half is not measured")
    print(f"one log cycle per group (log backup triggered -> set shipped, verified, the one before restored), "
          f"a deployment of {GROUPS} groups, k of them at once, {rounds} round(s), over every group's cycle:")
    print(f"  {'engine':40} {'k':>2} {'cycle s':>8} {'max s':>6} {'in tasks s':>11} {'overhead s':>11}")
    for name, by_k in results:
        for k, runs in by_k.items():
            cycle, work = statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)
            overhead = statistics.median(c - w for c, w in runs)
            print(f"  {name:40} {k:2} {cycle:8.1f} {max(c for c, _ in runs):6.1f} {work:11.1f} {overhead:11.1f}")


if __name__ == "__main__":
    main()
