"""The failover trigger form, checked before any server is touched.

At 3 a.m. a typo must stop the run at once with a message that names the field, not half-way
through a recovery. A real (not dry) run needs the group's name typed into the confirmation field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.confirmation import confirmation_problem
from biztalk_dr.domain.errors import FailoverRequestError

__all__ = ["FailoverRequest", "parse_failover_request", "MARK_PATTERN"]

# BizTalk's mark names: <prefix>_yyyy_MM_dd_HH_mm_ss_fff (biztalk-dr.md section 2)
MARK_PATTERN = r"^{prefix}_\d{{4}}_\d{{2}}_\d{{2}}_\d{{2}}_\d{{2}}_\d{{2}}_\d{{3}}$"




@dataclass(frozen=True)
class FailoverRequest:
    mode: Literal["planned", "disaster"]
    target_mark: str | None  # None: the newest complete set shipped and verified at the standby
    dry_run: bool
    leave_out: tuple[str, ...] = ()  # databases the operator accepts NOT to recover with the others

    def describe(self) -> str:
        target = self.target_mark or "the newest complete set shipped and verified at the standby"
        kind = "DRY RUN (nothing is changed)" if self.dry_run else "REAL FAILOVER"
        out = (f" LEAVING OUT {', '.join(self.leave_out)}: NOT recovered, left as they are on the standby"
               if self.leave_out else "")
        return f"{kind}: {self.mode} failover to {target}.{out}".rstrip(".")

    def to_json(self) -> dict[str, Any]:
        """The request as the check_request task hands it to assess_standby."""
        return {"mode": self.mode, "target_mark": self.target_mark, "dry_run": self.dry_run,
                "leave_out": list(self.leave_out)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailoverRequest:
        return cls(mode=data["mode"], target_mark=data["target_mark"], dry_run=data["dry_run"],
                   leave_out=tuple(data["leave_out"]))


def parse_failover_request(params: Mapping[str, Any], cfg: GroupConfig) -> FailoverRequest:
    problems = []
    mode = params.get("mode")
    if mode not in ("planned", "disaster"):
        problems.append(f"mode: expected 'planned' (the source is reachable: switchover) or 'disaster', got {mode!r}")
    mark = params.get("target_mark") or None
    if mark is not None:
        if not isinstance(mark, str) or not re.match(MARK_PATTERN.format(prefix=re.escape(cfg.backup.mark_prefix)),
                                                     mark.strip()):
            problems.append(f"target_mark: expected a BizTalk mark such as {cfg.backup.mark_prefix}_2026_11_25_03_15_00_123 "
                            f"(leave it empty for the newest safe mark), got {mark!r}")
        else:
            mark = mark.strip()
    dry_run = params.get("dry_run", True)
    if not isinstance(dry_run, bool):
        problems.append(f"dry_run: expected true or false, got {dry_run!r}")
    if unconfirmed := confirmation_problem(params, cfg, "failover"):
        problems.append(unconfirmed)
    leave_out: list[str] = []
    raw = params.get("leave_out") or ""
    names = {d.name.lower(): d.name for d in cfg.databases}
    for item in (raw if isinstance(raw, list) else str(raw).split(",")):
        name = str(item).strip()
        if not name:
            continue
        if name.lower() not in names:
            problems.append(f"leave_out: {name!r} is not a database of the group ({', '.join(names.values())})")
        elif name.lower() == cfg.management_database.name.lower():
            problems.append(f"leave_out: {name} is the management database: without it the group cannot run")
        else:
            leave_out.append(names[name.lower()])
    if problems:
        raise FailoverRequestError(problems)
    return FailoverRequest(mode=mode, target_mark=mark, dry_run=dry_run,  # type: ignore[arg-type]
                           leave_out=tuple(dict.fromkeys(leave_out)))
