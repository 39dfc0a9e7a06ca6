"""Restore plans checked by executing them: random histories are made on the stand-in (rows, fulls, differentials,
logs, copy-only backups, stripes, marks, a recovery fork made by restoring the database over itself and
recovering, a second database of the same name, lost files), ``biztalk_dr.domain.restore_planner`` plans from the files
alone (read by the product's reader), the plan runs on the stand-in, and the rows restored must be exactly those an
independent oracle expects — or the planner refuses where the oracle finds no restore sequence.

The oracle does not look at LSNs: it records, as the history is made, which backup continues which (a log backup
carries on from the previous log backup of its branch and from every full/differential taken since), which
branch each backup is on and where each branch forked, and the rows each backup holds; reachability is a graph
search over the files still present.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from biztalk_dr.backup_files import read_backup_files
from biztalk_dr.domain import tsql
from biztalk_dr.domain.errors import RestorePlanError
from biztalk_dr.domain.restore_planner import Target, plan_restore
from tests.sqlserver_standin.conftest import Client


@dataclass
class Node:
    nid: int
    kind: str                  # full | diff | log
    files: list[Path]
    branch: int
    family: int
    rows: frozenset[int]
    copy_only: bool = False
    preds: list[int] = field(default_factory=list)  # logs: the backups whose end this log covers
    base: int | None = None    # differentials: their base full
    mark: str | None = None    # a log named after the mark written just before it
    mark_rows: frozenset[int] | None = None

    def present(self) -> bool:
        return all(f.exists() for f in self.files)


@dataclass
class Branch:
    bid: int
    family: int
    parent: int | None = None
    fork_at: float = 0.0          # nodes of the parent with a smaller id are on this branch's path
    covering: int | None = None   # the parent's log the fork point lies inside (restored up to it)
    fork_rows: frozenset[int] = frozenset()
    fork_node: int | None = None  # the backup the restore that made the branch ended with (the fork point)


def _next_second() -> None:
    started = dt.datetime.now().replace(microsecond=0)
    while dt.datetime.now().replace(microsecond=0) <= started:
        time.sleep(0.02)


class History:
    """Makes a history on the stand-in and keeps the oracle's record of it."""

    def __init__(self, sql: Client, folder: Path, name: str) -> None:
        self.sql, self.folder, self.name = sql, folder, name
        self.nodes: dict[int, Node] = {}
        self.branches: dict[int, Branch] = {}
        self.rows: set[int] = set()
        self.next_row = 1
        self.family = 0
        self._new_database()

    # ---------------------------------------------------------------------------------------- actions
    def _new_database(self) -> None:
        self.family += 1
        branch = Branch(len(self.branches) + 1, self.family)
        self.branches[branch.bid] = branch
        self.branch = branch.bid
        self.cursor: int | None = None        # the log chain's position: the last log of the branch, or the fork
        self.pending: list[int] = []          # backups since the cursor: the next log carries on from them too
        self.base: int | None = None          # the differential base
        self.chain: list[int] = []            # the newest full that is a base, and the logs after it
        self.rows = set()
        self.sql.run(f"CREATE DATABASE [{self.name}]")
        self.sql.run(f"ALTER DATABASE [{self.name}] SET RECOVERY FULL")
        self.sql.run(f"USE [{self.name}]; CREATE TABLE dbo.T (id int NOT NULL PRIMARY KEY); USE master")

    def recreate(self) -> None:
        """DROP and CREATE: another database of the same name (a new FamilyGUID), created a second later."""
        self.sql.run(f"DROP DATABASE [{self.name}]")
        _next_second()  # creation dates have whole seconds
        self._new_database()

    def insert(self, n: int) -> None:
        for _ in range(n):
            self.sql.run(f"INSERT INTO [{self.name}].dbo.T (id) VALUES ({self.next_row})")
            self.rows.add(self.next_row)
            self.next_row += 1

    def _files(self, stripes: int) -> list[Path]:
        stem = f"{uuid.uuid4().hex[:10]}"
        return [self.folder / f"{stem}_{n}.bak" for n in range(1, stripes + 1)]

    def _node(self, kind: str, files: list[Path], **extra) -> Node:
        node = Node(len(self.nodes) + 1, kind, files, self.branch, self.family, frozenset(self.rows), **extra)
        self.nodes[node.nid] = node
        return node

    def full(self, stripes: int, copy_only: bool) -> None:
        files = self._files(stripes)
        disks = ", ".join(f"DISK = N'{f}'" for f in files)
        self.sql.run(f"BACKUP DATABASE [{self.name}] TO {disks}" + (" WITH COPY_ONLY" if copy_only else ""))
        node = self._node("full", files, copy_only=copy_only)
        self.pending.append(node.nid)
        if not copy_only:
            self.base, self.chain = node.nid, [node.nid]

    def diff(self, stripes: int) -> None:
        if self.base is None:
            return
        files = self._files(stripes)
        disks = ", ".join(f"DISK = N'{f}'" for f in files)
        self.sql.run(f"BACKUP DATABASE [{self.name}] TO {disks} WITH DIFFERENTIAL")
        self.pending.append(self._node("diff", files, base=self.base).nid)

    def log(self, copy_only: bool, mark: bool) -> None:
        if not self.chain and self.cursor is None:
            return  # no log chain yet (4214)
        mark_name = None
        mark_rows = None
        if mark and not copy_only:
            mark_name = f"BTS_{uuid.uuid4().hex[:12]}"
            row = self.next_row
            self.sql.run(f"BEGIN TRANSACTION [{mark_name}] WITH MARK N'{mark_name}'; "
                         f"INSERT INTO [{self.name}].dbo.T (id) VALUES ({row}); COMMIT")
            self.rows.add(row)
            self.next_row += 1
            mark_rows = frozenset(self.rows)
            self.insert(1)  # after the mark, still in the log: restoring to the mark leaves it out
        name = f"SQLPRD01_{self.name}_Log_{mark_name}.bak" if mark_name else f"{uuid.uuid4().hex[:10]}_log.bak"
        path = self.folder / name
        self.sql.run(f"BACKUP LOG [{self.name}] TO DISK = N'{path}'" + (" WITH COPY_ONLY" if copy_only else ""))
        preds = ([self.cursor] if self.cursor is not None else []) + self.pending
        node = self._node("log", [path], copy_only=copy_only, preds=preds, mark=mark_name, mark_rows=mark_rows)
        if copy_only:
            self.pending.append(node.nid)
        else:
            self.cursor, self.pending = node.nid, []
            if self.chain:
                self.chain.append(node.nid)

    def fork(self, logs: int, at_mark: bool) -> None:
        """Restore the database over itself from the newest base full and ``logs`` log backups after it (into the
        next one to its mark if ``at_mark``), WITH RECOVERY: a new recovery branch, as a failover makes."""
        if not self.chain:
            return
        _next_second()  # the branches' backups then differ in time, by which latest tells siblings apart
        full, after = self.chain[0], self.chain[1:]
        logs = min(logs, len(after))
        into = after[logs] if at_mark and logs < len(after) and self.nodes[after[logs]].mark else None
        disks = ", ".join(f"DISK = N'{f}'" for f in self.nodes[full].files)
        self.sql.run(f"RESTORE DATABASE [{self.name}] FROM {disks} WITH REPLACE, NORECOVERY")
        for nid in after[:logs]:
            self.sql.run(f"RESTORE LOG [{self.name}] FROM DISK = N'{self.nodes[nid].files[0]}' WITH NORECOVERY")
        last = after[logs - 1] if logs else full
        if into is not None:
            node = self.nodes[into]
            self.sql.run(f"RESTORE LOG [{self.name}] FROM DISK = N'{node.files[0]}' WITH STOPATMARK = N'{node.mark}', "
                         "RECOVERY")
            fork_at, rows, cursor = into - 0.5, node.mark_rows, into  # nodes made before the mark: before it
        else:
            self.sql.run(f"RESTORE DATABASE [{self.name}] WITH RECOVERY")
            fork_at, rows, cursor = last + 0.5, self.nodes[last].rows, last
        parent = self.nodes[into if into is not None else last].branch  # the branch the restore ended on
        branch = Branch(len(self.branches) + 1, self.family, parent, fork_at, into, rows, cursor)
        self.branches[branch.bid] = branch
        self.branch, self.cursor, self.pending = branch.bid, cursor, []
        self.rows = set(rows)
        self.base = full  # the restored full is the differential base (it travels in the database)
        # a later fork restores this chain again; after a fork inside a log it would need that log up to the fork
        # point only, which the history does not do: the next fork waits for a new full
        self.chain = [full] + after[:logs] if into is None else []

    # ---------------------------------------------------------------------------------------- oracle
    def on_path(self, bid: int) -> dict[int, float]:
        """The nodes on a branch's path, with their position along it."""
        branch = self.branches[bid]
        nodes = {n.nid: float(n.nid) for n in self.nodes.values() if n.branch == bid}
        if branch.parent is not None:
            nodes.update({nid: pos for nid, pos in self.on_path(branch.parent).items() if pos < branch.fork_at})
            if branch.covering is not None:
                nodes[branch.covering] = branch.fork_at  # restored up to the fork point only
        return nodes

    def reachable(self, bid: int) -> tuple[set[int], dict[int, float]]:
        path = self.on_path(bid)
        present = {nid for nid in path if self.nodes[nid].present()}
        starts = {nid for nid in present if self.nodes[nid].kind == "full"}
        starts |= {nid for nid in present if self.nodes[nid].kind == "diff" and self.nodes[nid].base in present}
        reached = set(starts)
        changed = True
        while changed:
            changed = False
            for nid in present - reached:
                node = self.nodes[nid]
                if node.kind != "log":
                    continue
                if set(node.preds) & reached:
                    reached.add(nid)
                    changed = True
        return reached, path

    def leaf(self, family: int) -> int | None:
        """The branch latest follows: of the branches with backups, those no other branched from, the one backed
        up last."""
        backed_up = {n.branch for n in self.nodes.values() if n.family == family and n.present()}
        ancestors = set()
        for bid in backed_up:
            parent = self.branches[bid].parent
            while parent is not None:
                ancestors.add(parent)
                parent = self.branches[parent].parent
        leaves = backed_up - ancestors
        if not leaves:
            return None
        return max(leaves, key=lambda bid: max(n.nid for n in self.nodes.values() if n.branch == bid and n.present()))

    def expect_latest(self):
        """Latest restores the database created last (of those with backups here), or nothing."""
        backed_up = {n.family for n in self.nodes.values() if n.present()}
        for family in sorted(backed_up, reverse=True)[:1]:
            leaf = self.leaf(family)
            if leaf is None:
                return ("refuse", "no-start")
            reached, path = self.reachable(leaf)
            if not reached:
                return ("refuse", "no-start")
            final = max(reached, key=lambda nid: path[nid])
            later = [nid for nid in path if self.nodes[nid].kind == "log" and self.nodes[nid].present()
                     and path[nid] > path[final] and nid not in reached]
            if later:
                return ("refuse", "gap")
            branch = self.branches[leaf]
            if self.nodes[final].branch != leaf and final != branch.fork_node:
                return ("refuse", "gap")  # the restore cannot get onto the branch latest follows
            rows = branch.fork_rows if final == branch.covering else self.nodes[final].rows
            return ("rows", rows)
        return ("refuse", "no-start")


# ------------------------------------------------------------------------------------------------ strategy
ACTION = st.one_of(
    st.tuples(st.just("insert"), st.integers(1, 3)),
    st.tuples(st.just("full"), st.sampled_from([1, 1, 2]), st.sampled_from([False, False, True])),
    st.tuples(st.just("diff"), st.sampled_from([1, 1, 2])),
    st.tuples(st.just("log"), st.sampled_from([False, False, False, True]), st.booleans()),
    st.tuples(st.just("log"), st.just(False), st.booleans()),
    st.tuples(st.just("fork"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("recreate")) | st.tuples(st.just("insert"), st.just(1)),
)


_REASONS = ("gap in the log chain", "a later log backup is missing", "no usable full backup", "stripe(s)", "ends at LSN",
            "no log backup continues", "none of that branch's backups can be reached", "can start or continue the restore")


def _run(history: History, action: tuple) -> None:
    kind, *args = action
    getattr(history, kind)(*args)


def _restore(sql: Client, plan, folder: Path) -> list[int]:
    name = f"r_{uuid.uuid4().hex[:8]}"
    for n, step in enumerate(plan.steps):
        if n == 0:
            moves = [tsql.Move(f.logical_name, str(folder / f"{name}_{f.logical_name}.{'ldf' if f.type == 'L' else 'mdf'}"))
                     for f in step.backup.header.files]
            sql.run(step.statement(name, moves=moves))
        else:
            sql.run(step.statement(name))
    return [r[0] for r in sql.rows(f"SELECT id FROM [{name}].dbo.T ORDER BY id")]


@pytest.mark.standin
@settings(max_examples=int(__import__('os').environ.get('PLAN_EXAMPLES', 20)), deadline=None, derandomize=not __import__('os').environ.get('PLAN_EXAMPLES'), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=st.lists(ACTION, min_size=4, max_size=14), lost=st.lists(st.integers(0, 50), max_size=2),
       target=st.tuples(st.sampled_from(["latest", "latest", "lsn", "mark"]), st.integers(0, 100), st.booleans()))
def test_a_plan_executed_on_the_standin_restores_exactly_the_rows_the_oracle_expects(sql, tmp_path_factory, actions,
                                                                                     lost, target):
    folder = tmp_path_factory.mktemp("plans")
    name = f"p_{uuid.uuid4().hex[:8]}"
    history = History(sql, folder, name)
    history.insert(2)
    history.full(1, False)
    for action in actions:
        _run(history, action)
    files = sorted(p for p in folder.iterdir())
    for n in lost:
        if files:
            files[n % len(files)].unlink(missing_ok=True)
    headers = [h for r in read_backup_files([folder]) for h in r.sets]
    by_path = {h.path: h for h in headers}
    kind, pick, after_end = target
    if kind == "latest":
        expected = history.expect_latest()
        plan_target = Target()
    else:
        logs = [n for n in history.nodes.values() if n.kind == "log" and n.present() and (kind == "lsn" or n.mark)]
        if not logs:
            return
        node = logs[pick % len(logs)]
        header = by_path[str(node.files[0])]
        reached, path = history.reachable(node.branch)
        if kind == "mark":
            plan_target = Target(mark=node.mark)
            expected = ("rows", node.mark_rows) if node.nid in reached else ("refuse", "gap")
        else:
            lsn = header.last_lsn if after_end else header.last_lsn - 1
            plan_target = Target(lsn=lsn, family_guid=header.family_guid, recovery_fork_id=header.recovery_fork_id)
            followers = [n for n in history.nodes.values() if node.nid in n.preds and n.present() and n.nid in path
                         and n.nid in reached]
            ok = node.nid in reached and (not after_end or followers)
            expected = ("rows", node.rows) if ok else ("refuse", "gap")
    event(f"target {kind}, oracle: {expected[0]}, {len(history.branches)} branch(es), "
          f"{history.family} database(s) of the name")
    try:
        plan = plan_restore(headers, name, plan_target)
    except RestorePlanError as exc:
        assert expected[0] == "refuse", (f"refused {plan_target.text()} where the oracle expects a restore: {exc}",
                                         actions, lost, target)
        assert any(reason in str(exc) for reason in _REASONS), str(exc)
        return
    assert expected[0] == "rows", (f"planned {plan_target.text()} ({[s.backup.paths for s in plan.steps]}) where the "
                                   f"oracle expects a refusal ({expected[1]})", actions, lost, target)
    assert _restore(sql, plan, folder) == sorted(expected[1]), (actions, lost, target, plan_target.text(), plan.notes,
                                                               [(s.backup.paths, s.with_options()) for s in plan.steps])
