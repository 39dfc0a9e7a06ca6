"""Several BizTalk groups in one deployment, as Airflow's DagBag loads them: one DAG per file per group, ids and
Assets carrying the group, each group's restores in its own standby instance's pool; a broken group's file breaks
only its own DAGs, with its file and line in each DAG file's import error; a group whose file breaks after it
validated goes on with its last valid version (per file).

Each DagBag is filled in a fresh interpreter: the DAG files read $BIZTALK_DR_CONFIG when they are imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "config" / "example_group.yaml"
DAG_FILES = sorted(p.stem for p in (ROOT / "dags").glob("dr_*.py"))

_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
out = []
for step in sys.argv[1:]:
    if step != "-":
        path, old, new = step.split("|")
        open(path, "w").write(open(path).read().replace(old, new))
    bag = DagBag(dag_folder={dags!r})
    dags = {{}}
    for dag in bag.dags.values():
        ship = getattr(dag.timetable, "asset_condition", None)
        dags[dag.dag_id] = {{"file": dag.fileloc.rsplit("/", 1)[-1], "tags": sorted(dag.tags),
                            "pools": sorted({{t.pool for t in dag.tasks if t.pool != "default_pool"}}),
                            "outlets": sorted({{o.uri for t in dag.tasks for o in t.outlets}}),
                            "schedule_assets": str(ship) if ship is not None else ""}}
    out.append({{"dags": dags, "errors": {{k.rsplit("/", 1)[-1]: v for k, v in bag.import_errors.items()}}}})
print(json.dumps(out))
"""


def _group(folder: Path, key: str, standby: str, text: str | None = None) -> Path:
    body = EXAMPLE.read_text(encoding="utf-8").replace("CONTOSO-BTS", f"GROUP-{key.upper()}")
    path = folder / f"{key}.yaml"
    path.write_text(text if text is not None else body.replace("server_name: SQLDR01", f"server_name: {standby}"),
                    encoding="utf-8")
    return path


def _dagbags(tmp_path: Path, config: str, *steps: str) -> list[dict]:
    env = {**os.environ, "BIZTALK_DR_CONFIG": config, "BIZTALK_DR_STATE_DIR": str(tmp_path / "state")}
    env.pop("AIRFLOW_CTX_DAG_ID", None)
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(dags=str(ROOT / "dags")), *(steps or ["-"])],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("groups")
    _group(folder, "east", "SQLDR01")
    _group(folder, "west", "SQLDR02")
    broken_text = EXAMPLE.read_text(encoding="utf-8").replace("mark_prefix: BTS", "mark_prefix: BIZTALKMARK")
    broken = _group(folder, "typo", "SQLDR03", text=broken_text)
    line = broken_text.splitlines().index(next(s for s in broken_text.splitlines() if "BIZTALKMARK" in s)) + 1
    [bag] = _dagbags(folder.parent, str(folder))
    return bag, broken, line


def test_each_group_gets_its_own_dags_from_each_file(deployment):
    bag, _broken, _line = deployment
    expected = {f"{stem}__{key}": stem for stem in DAG_FILES for key in ("east", "west")}
    assert {dag_id: d["file"].removesuffix(".py") for dag_id, d in bag["dags"].items()} == expected
    for dag_id, d in bag["dags"].items():
        assert f"GROUP-{dag_id.rpartition('__')[2].upper()}" in d["tags"], dag_id  # built on its own group's file


def test_each_groups_restores_hold_its_own_standby_pool(deployment):
    bag, _broken, _line = deployment
    for key, pool in (("east", "biztalk_dr_standby_SQLDR01"), ("west", "biztalk_dr_standby_SQLDR02")):
        for stem in ("dr_log_shipping", "dr_standby_reseed", "dr_failover"):
            assert bag["dags"][f"{stem}__{key}"]["pools"] == [pool]
        # the log backups take no pool of ours: another group's long restore cannot starve them
        assert bag["dags"][f"dr_log_backup__{key}"]["pools"] == []


def test_each_group_has_its_own_assets(deployment):
    bag, _broken, _line = deployment
    for key in ("east", "west"):
        assert bag["dags"][f"dr_log_backup__{key}"]["outlets"] == [f"biztalk-dr://{key}/primary/backup-sets"]
        assert bag["dags"][f"dr_full_backup__{key}"]["outlets"] == [f"biztalk-dr://{key}/primary/backup-sets"]
        shipping = bag["dags"][f"dr_log_shipping__{key}"]
        assert shipping["outlets"] == [f"biztalk-dr://{key}/standby/restored-sets"]
        assert f"biztalk-dr://{key}/primary/backup-sets" in shipping["schedule_assets"]
        other = "west" if key == "east" else "east"
        assert f"biztalk-dr://{other}/" not in shipping["schedule_assets"]  # never started by the other group


def test_a_broken_file_breaks_only_its_groups_dags_naming_file_and_line(deployment):
    bag, broken, line = deployment
    assert not any(dag_id.endswith("__typo") for dag_id in bag["dags"])
    assert sorted(bag["errors"]) == sorted(f"{stem}.py" for stem in DAG_FILES)
    for stem in DAG_FILES:
        error = bag["errors"][f"{stem}.py"]
        assert f"DAG {stem}__typo not loaded" in error
        assert f"{broken}:{line}" in error and "mark_prefix" in error
        assert "GROUP-EAST" not in error and "east" not in error.split("not loaded")[0]


def test_a_file_broken_after_it_validated_goes_on_with_its_last_valid_version(tmp_path):
    _group(tmp_path, "east", "SQLDR01")
    west = _group(tmp_path, "west", "SQLDR02")
    before, after = _dagbags(tmp_path.parent, str(tmp_path), "-", f"{west}|mark_prefix: BTS|mark_prefix: BIZTALKMARK")
    assert before["errors"] == {} and after["errors"] == {}
    assert sorted(after["dags"]) == sorted(before["dags"]) == sorted(
        f"{stem}__{key}" for stem in DAG_FILES for key in ("east", "west"))


def test_one_file_keeps_the_dag_ids_without_a_group(tmp_path):
    [bag] = _dagbags(tmp_path, str(_group(tmp_path, "only", "SQLDR01")))
    assert sorted(bag["dags"]) == DAG_FILES and bag["errors"] == {}
    assert bag["dags"]["dr_log_backup"]["outlets"] == ["biztalk-dr://primary/backup-sets"]


_TASK_PROCESS_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={path!r})
[module] = [m for m in sys.modules.values() if getattr(m, "__file__", None) == {path!r}]
print(json.dumps({{"dags": sorted(bag.dags), "errors": list(bag.import_errors),
                  "restored": module.STANDBY_RESTORED.uri, "backup_sets": module.BACKUP_SETS.uri,
                  "group": module.CONFIG.group.name}}))
"""


def test_a_tasks_process_parses_only_its_own_groups_dag(tmp_path):
    """What the task runner does before a task of dr_log_shipping__west runs: it parses the DAG file under Airflow's
    parsing context. Only west's DAG is built, so the module-level values the task body reads at run time (its
    Asset for outlet_events, the group's configuration) are west's, not those of the group built last."""
    _group(tmp_path, "east", "SQLDR01")
    _group(tmp_path, "west", "SQLDR02")
    _group(tmp_path, "zulu", "SQLDR03")  # built last when every group is built
    path = str(ROOT / "dags" / "dr_log_shipping.py")
    env = {**os.environ, "BIZTALK_DR_CONFIG": str(tmp_path), "BIZTALK_DR_STATE_DIR": str(tmp_path / "state"),
           "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "dr_log_shipping__west"}
    proc = subprocess.run([sys.executable, "-c", _TASK_PROCESS_PROBE.format(path=path)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"dags": ["dr_log_shipping__west"], "errors": [], "group": "GROUP-WEST",
                    "restored": "biztalk-dr://west/standby/restored-sets",
                    "backup_sets": "biztalk-dr://west/primary/backup-sets"}


def _reads_of_the_groups_loop(path: Path) -> list[str]:
    """Each name a @task body of ``path`` reads that the module's ``for GROUP, CONFIG in GROUPS`` loop assigns."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    loop_names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.For) and "GROUP" in {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}:
            for inner in [node.target, *node.body]:
                for n in ast.walk(inner):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        loop_names.add(n.id)
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and any("task" in ast.unparse(d) for d in fn.decorator_list):
            for stmt in fn.body:  # the body only: decorators are evaluated while the DAG is built, for its group
                found += [f"{path.name}:{n.lineno}: {fn.name} reads {n.id}" for n in ast.walk(stmt)
                          if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in loop_names]
    return found


def test_no_task_reads_the_group_the_dag_file_built_last():
    """A DAG file builds one DAG per group in a loop, so its module-level loop variables (CONFIG, GROUP, the
    group's Assets) hold the LAST group once the file is imported. A task's own process builds only its group's
    DAG (the parsing context), but dag.test() and any process that built every group's DAGs run the task with
    the module as it is: a task body must find its group from its DAG (load_config(), current_group()), never
    from those variables (dr_log_shipping's restore once set group 1's Asset extra on the last group's Asset)."""
    found = [line for path in sorted((ROOT / "dags").glob("dr_*.py")) for line in _reads_of_the_groups_loop(path)]
    assert found == []
