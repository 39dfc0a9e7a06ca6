"""The failover timeline reads as a person writes: who approved what and when in words, DRY RUN at its top."""

from __future__ import annotations

import json

from biztalk_dr.ops import failover_jobs
from biztalk_dr.ops.failover_jobs import (
    describe_answer,
    record_answer,
    run_folder,
    timed_step,
    write_timeline,
)
from tests.biztalk_dr.test_standby_status import cfg  # noqa: F401 - the fixture


def test_answers_are_said_in_words_not_as_python_values():
    approved = {"chosen_options": ["Approve"], "responded_by_user": {"id": "admin", "name": "Ann Operator"},
                "responded_at": "2026-11-25T02:13:04.123456+00:00"}
    assert describe_answer("assess.approve_failover", approved) == \
        "assess.approve_failover: Approve by Ann Operator at 2026-11-25 02:13:04 UTC"
    assert describe_answer("repoint_biztalk.update_registry[BTSDR01]", {"server": "BTSDR01", "dry_run": True}) == \
        "repoint_biztalk.update_registry[BTSDR01]: DRY RUN on BTSDR01: nobody was asked, nothing was run"
    assert describe_answer("x", {"server": "BTSDR01", "ran_through": "winrm"}) == "x: run through WINRM on BTSDR01"
    assert describe_answer("x", "no answer recorded (not reached, or marked done)") == \
        "x: no answer recorded (not reached, or marked done)"


def test_a_dry_run_timeline_says_so_at_its_top_and_names_who_rejected(cfg):  # noqa: F811
    run_id = "manual__2026-11-25T02:00:00+00:00"
    with timed_step(cfg, run_id, "assess.assess_standby"):
        pass
    record_answer(cfg, run_id, "assess.approve_failover", "rejected", {"id": "bob", "name": "Bob"},
                  "2026-11-25T02:05:00+00:00")
    write_timeline(cfg, run_id, {}, dry_run=True, mode="disaster", mark="BTS_4")
    text = (run_folder(cfg, run_id) / "timeline.md").read_text()
    assert text.startswith("# DRY RUN — nothing was changed: Failover timeline of DEMO-BTS\n")
    assert "- assess.approve_failover: rejected by Bob at 2026-11-25 02:05:00 UTC" in text
    assert "{'" not in text and "':" not in text  # no Python dict anywhere
    data = json.loads((run_folder(cfg, run_id) / "timeline.json").read_text())
    assert (data["dry_run"], data["mode"], data["mark"]) == (True, "disaster", "BTS_4")


def test_a_real_failover_timeline_says_real_failover(cfg):  # noqa: F811
    write_timeline(cfg, "r2", {"assess.approve_failover": failover_jobs.answers_of(
        {"chosen_options": ["Approve"], "responded_by_user": {"name": "Ann"}, "responded_at": "2026-11-25T02:13:04"})},
        dry_run=False, mode="planned", mark="BTS_9")
    text = (run_folder(cfg, "r2") / "timeline.md").read_text()
    assert text.startswith("# REAL FAILOVER — Failover timeline") and "DRY RUN" not in text
    assert "- assess.approve_failover: Approve by Ann at 2026-11-25 02:13:04 UTC" in text
