"""The failover trigger form fails fast and names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from biztalk_dr.domain.errors import FailoverRequestError
from biztalk_dr.domain.failover_request import parse_failover_request
from biztalk_dr.ops.config_files import load_config

CFG = load_config(Path(__file__).resolve().parents[2] / "include" / "config" / "example_group.yaml")


def test_defaults_are_a_dry_run_to_the_newest_safe_mark():
    req = parse_failover_request({"mode": "disaster"}, CFG)
    assert (req.mode, req.target_mark, req.dry_run) == ("disaster", None, True)
    assert req.describe() == ("DRY RUN (nothing is changed): disaster failover to the newest complete set shipped "
                              "and verified at the standby")


def test_a_real_run_needs_the_group_name():
    with pytest.raises(FailoverRequestError) as info:
        parse_failover_request({"mode": "planned", "dry_run": False, "confirm_group": "contoso-bts"}, CFG)
    assert info.value.problems == ["confirm_group: a real failover needs the group's name typed exactly "
                                   "('CONTOSO-BTS'); got 'contoso-bts'. Or run with dry_run first"]
    req = parse_failover_request({"mode": "planned", "dry_run": False, "confirm_group": "CONTOSO-BTS"}, CFG)
    assert req.dry_run is False


def test_mark_must_be_a_biztalk_mark_of_this_group():
    req = parse_failover_request({"mode": "disaster", "target_mark": " BTS_2026_11_25_03_15_00_123 "}, CFG)
    assert req.target_mark == "BTS_2026_11_25_03_15_00_123"
    with pytest.raises(FailoverRequestError, match=r"target_mark: expected a BizTalk mark such as BTS_2026"):
        parse_failover_request({"mode": "disaster", "target_mark": "XYZ_2026_11_25_03_15_00_123"}, CFG)


def test_every_problem_at_once():
    with pytest.raises(FailoverRequestError) as info:
        parse_failover_request({"mode": "now", "target_mark": "latest", "dry_run": "no"}, CFG)
    assert [p.split(":")[0] for p in info.value.problems] == ["mode", "target_mark", "dry_run"]


def test_the_request_crosses_to_the_assessment_as_json_and_back():
    req = parse_failover_request({"mode": "disaster", "leave_out": "BizTalkDTADb"}, CFG)
    data = req.to_json()
    assert data == {"mode": "disaster", "target_mark": None, "dry_run": True, "leave_out": ["BizTalkDTADb"]}
    assert type(req).from_json(data) == req
