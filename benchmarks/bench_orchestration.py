"""Orchestration overhead of one log cycle: CeleryExecutor (make run-celery: PostgreSQL, Redis, two workers)
against standalone (make run: SQLite, LocalExecutor), in the same run, on the same stand-in group.

One cycle: dr_log_backup triggered through the REST API -> its set verified and published (Asset event) ->
the asset-triggered dr_log_shipping run ships and verifies it (restorable at the standby) and restores the one
before. Figures per engine, median of N cycles:

  cycle     wall time from the trigger to the end of that shipping run
  in tasks  the tasks' own time on the critical path (per task id the longest of its mapped boxes, summed)
  overhead  cycle - in tasks: scheduling, queueing, task start (process, DAG parse, execution API), Asset
            event to the next run

Issue 20's goal: a cycle well under 60 s, so a 5-minute log interval stays sustainable. The deployments run one
after the other (never both at once on a shared machine); their first scheduled runs finish before the clock
starts. Usage: python benchmarks/bench_orchestration.py [cycles] (default 3). Needs PostgreSQL at
127.0.0.1:5432 and Redis at 127.0.0.1:6379 for the Celery half (otherwise it says so and measures standalone).
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


def _busy(run) -> bool:
    return any(r["state"] not in FINISHED for d in ("dr_full_backup", "dr_log_backup", "dr_log_shipping")
               for r in run.api(f"/api/v2/dags/{d}/dagRuns?limit=100")["dag_runs"])


def _critical(run, dag_id: str, run_id: str) -> float:
    tis = run.api(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]
    longest: dict[str, float] = {}
    for ti in tis:
        if ti["start_date"] and ti["end_date"]:
            longest[ti["task_id"]] = max(longest.get(ti["task_id"], 0.0), _ts(ti["end_date"]) - _ts(ti["start_date"]))
    return sum(longest.values())


def one_cycle(run) -> tuple[float, float]:
    before = {r["dag_run_id"] for r in run.api("/api/v2/dags/dr_log_shipping/dagRuns?limit=200")["dag_runs"]}
    start = time.time()
    backup = run.api("/api/v2/dags/dr_log_backup/dagRuns", method="POST", body={"logical_date": None})["dag_run_id"]
    if _wait(run, "dr_log_backup", backup)["state"] != "success":
        raise SystemExit("the log backup failed: see its run in the UI")
    deadline = time.monotonic() + 600
    while True:
        new = [r for r in run.api("/api/v2/dags/dr_log_shipping/dagRuns?limit=200")["dag_runs"]
               if r["dag_run_id"] not in before and r["run_type"] == "asset_triggered"]
        if new:
            shipped = _wait(run, "dr_log_shipping", new[0]["dag_run_id"])
            break
        if time.monotonic() > deadline:
            raise SystemExit("no shipping run was triggered by the backup set's Asset event")
        time.sleep(0.5)
    cycle = _ts(shipped["end_date"]) - start
    return cycle, _critical(run, "dr_log_backup", backup) + _critical(run, "dr_log_shipping", shipped["dag_run_id"])


def measure(name: str, cycles: int, **kw) -> tuple[str, list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory(prefix=f"bench-orchestration-{name}-") as folder:
        run = start_make_run(Path(folder) / "var", **kw)
        try:
            run.wait_for(r"^Airflow UI: ", timeout=600)
            run.first_runs(("dr_full_backup",), timeout=600)
            deadline = time.monotonic() + 600
            while _busy(run) and time.monotonic() < deadline:
                time.sleep(1)
            return name, [one_cycle(run) for _ in range(cycles)]
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
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = [measure("standalone (SQLite, LocalExecutor)", cycles)]
    if _reachable(5432) and _reachable(6379):
        database, redis_db = f"biztalk_dr_bench_{os.getpid()}", _empty_redis_db()
        try:
            results.append(measure("celery (PostgreSQL, Redis, 2 workers)", cycles, celery=True, env={
                "BIZTALK_DR_POSTGRES_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
                "BIZTALK_DR_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}"}))
        finally:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {database} "
                            "WITH (FORCE)"], capture_output=True, timeout=60)
            subprocess.run(["redis-cli", "-n", str(redis_db), "FLUSHDB"], capture_output=True, timeout=60)
    else:
        print("PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) does not answer: the Celery half is not measured")
    print(f"one log cycle (log backup triggered -> set shipped, verified, the one before restored), median of {cycles}:")
    print(f"  {'engine':40} {'cycle s':>8} {'in tasks s':>11} {'overhead s':>11}")
    for name, runs in results:
        cycle, work = statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)
        overhead = statistics.median(c - w for c, w in runs)
        print(f"  {name:40} {cycle:8.1f} {work:11.1f} {overhead:11.1f}")


if __name__ == "__main__":
    main()
