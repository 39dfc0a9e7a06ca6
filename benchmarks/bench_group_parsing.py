"""How parsing the DAG files grows with the number of BizTalk groups in one deployment (issue 20): the DAG
processor re-parses every file every 30 s by default, and each file builds one DAG per group.

Baseline, in the same run: one group named by a file (the simple case). Then a folder of 1, 2 and 4 groups. Each
measurement is a fresh interpreter (Airflow and biztalk_dr already imported, as in the DAG processor) filling a
DagBag from dags/: its CPU time (the figure a shared machine changes least) and wall-clock time; median of RUNS,
the group counts interleaved. A task's own process builds only its DAG's group (``groups.dag_groups``): its
parse is measured too (4 groups, the task runner's parsing context set).
Usage: python benchmarks/bench_group_parsing.py [RUNS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "include" / "config" / "example_group.yaml"
_PROBE = f"""
import json, time
import airflow.sdk, airflow.serialization.encoders, biztalk_dr  # loaded once by the DAG processor
from airflow.dag_processing.dagbag import DagBag
cpu, wall = time.process_time(), time.perf_counter()
bag = DagBag(dag_folder={str(ROOT / "dags")!r})
print(json.dumps({{"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "dags": len(bag.dags),
                  "errors": len(bag.import_errors)}}))
"""


def _groups(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"group{n + 1}.yaml").write_text(EXAMPLE.read_text(encoding="utf-8").replace(
            "CONTOSO-BTS", f"GROUP-{n + 1}"), encoding="utf-8")
    return folder


def _parse(config: Path, state: Path, parsing_dag_id: str | None = None) -> dict:
    env = {**os.environ, "BIZTALK_DR_CONFIG": str(config), "BIZTALK_DR_STATE_DIR": str(state),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if parsing_dag_id:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = parsing_dag_id
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True,
                          timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory(prefix="bench-groups-") as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("AIRFLOW_HOME", str(tmp_path / "airflow"))
        cases = {"1 file (baseline)": (EXAMPLE, None)}
        for count in (1, 2, 4):
            cases[f"{count} group(s), folder"] = (_groups(tmp_path / f"g{count}", count), None)
        cases["4 groups, a task's process"] = (tmp_path / "g4", "dr_log_shipping__group3")
        seen: dict[str, list[dict]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, (config, parsing) in cases.items():
                seen[name].append(_parse(config, tmp_path / "state", parsing))
    print(f"parsing dags/ ({len(list((ROOT / 'dags').glob('dr_*.py')))} files), median of {runs} fresh interpreters")
    print(f"{'deployment':<30}{'DAGs':>6}{'errors':>8}{'CPU s':>9}{'wall s':>9}{'x baseline (CPU)':>19}")
    base = statistics.median(r["cpu"] for r in seen["1 file (baseline)"])
    for name, results in seen.items():
        cpu = statistics.median(r["cpu"] for r in results)
        wall = statistics.median(r["wall"] for r in results)
        print(f"{name:<30}{results[0]['dags']:>6}{results[0]['errors']:>8}{cpu:>9.2f}{wall:>9.2f}{cpu / base:>19.2f}")


if __name__ == "__main__":
    main()
