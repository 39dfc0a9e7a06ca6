"""The DR roles record: the backup schedule held during a failover, and backups of the acting primary after it."""

from __future__ import annotations

import pytest

from biztalk_dr.domain.config import parse_config
from biztalk_dr.domain.errors import PreflightError
from biztalk_dr.ops import site_roles
from tests.biztalk_dr.test_config import replace


def cfg_text(tmp_path) -> str:
    text = replace("/data/landing", str(tmp_path / "landing"), replace("roots: [/data]", f"roots: [/data, {tmp_path}]"))
    return replace("landing_path: 'E:\\Landing\\'\n", "landing_path: 'E:\\Landing\\'\n    backup_path: "
                   "'E:\\Backups\\'\n    backup_dir: /data/dr-backups\n", text)


@pytest.fixture
def cfg(tmp_path):
    return parse_config(cfg_text(tmp_path))


def test_before_any_failover_the_backups_run_against_the_primary(cfg):
    assert site_roles.read_roles(cfg.sites.standby.landing_dir) == site_roles.SiteRoles()
    assert site_roles.acting_config(cfg) is cfg and site_roles.backups_held(cfg) == ""


def test_a_hold_is_per_failover_run_taken_over_by_a_later_run_and_released(cfg):
    assert "backup schedule held" in site_roles.hold_backups(cfg, "run-1")
    assert "held by the failover run run-1" in site_roles.backups_held(cfg)
    assert "already held by this failover run" in site_roles.hold_backups(cfg, "run-1")
    assert "taken over from the earlier failover run run-1" in site_roles.hold_backups(cfg, "run-2")
    assert "backup schedule resumed" in site_roles.release_backups(cfg)
    assert site_roles.backups_held(cfg) == "" and "nothing to resume" in site_roles.release_backups(cfg)


def test_after_a_failover_the_standby_site_is_backed_up_into_its_own_folder(cfg):
    site_roles.write_roles(cfg.sites.standby.landing_dir, site_roles.SiteRoles(primary_site="standby"))
    acting = site_roles.acting_config(cfg)
    assert acting.sites.primary.instances["main"].conn_id == "s"
    assert acting.sites.primary.instances["main"].server_name == "SQL2"
    assert (acting.sites.primary.backup_path, acting.sites.primary.backup_dir) == ("E:\\Backups\\", "/data/dr-backups")
    assert acting.sites.standby.landing_dir == cfg.sites.standby.landing_dir  # the DR records stay where they are
    assert acting.sites.standby.instances == {}  # no standby until the old primary is re-seeded as one
    assert cfg.sites.primary.instances["main"].conn_id == "p"  # the configuration itself is unchanged


def test_without_a_standby_backup_folder_the_new_primary_cannot_be_backed_up(tmp_path):
    text = replace("/data/landing", str(tmp_path / "landing"), replace("roots: [/data]", f"roots: [/data, {tmp_path}]"))
    cfg = parse_config(text)
    site_roles.write_roles(cfg.sites.standby.landing_dir, site_roles.SiteRoles(primary_site="standby"))
    with pytest.raises(PreflightError, match="sites.standby.backup_path and sites.standby.backup_dir are not configured"):
        site_roles.acting_config(cfg)


def test_an_abandoned_failover_hold_is_released_from_the_command_line(cfg, tmp_path, capsys):
    from biztalk_dr.cli import main

    config = tmp_path / "group.yaml"
    config.write_text(cfg_text(tmp_path))
    site_roles.hold_backups(cfg, "manual__called_off")
    assert site_roles.held_for(cfg) is not None and site_roles.held_for(cfg).total_seconds() >= 0
    assert main(["resume-backups", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "was: the backup schedule is held by the failover run manual__called_off since" in out
    assert "backup schedule resumed" in out and site_roles.held_for(cfg) is None
    assert main(["resume-backups", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_records_written_before_the_record_was_typed_still_read(cfg):
    """roles.json as earlier versions wrote it: a hold only, a released hold (nulls), a failover without a hold."""
    from biztalk_dr.ops.standby_state import state_dir

    folder = state_dir(cfg.sites.standby.landing_dir)
    folder.mkdir(parents=True)
    (folder / "roles.json").write_text('{"backups_held_by": "run-1", "backups_held_since": "2026-11-25T02:00:00+00:00"}')
    assert "held by the failover run run-1 since 2026-11-25T02:00:00+00:00" in site_roles.backups_held(cfg)
    assert not site_roles.standby_is_primary(cfg)
    (folder / "roles.json").write_text('{"backups_held_by": null, "backups_held_since": null, "mark": "BTS_4", '
                                       '"primary_site": "standby", "set_id": 4}')
    roles = site_roles.read_roles(cfg.sites.standby.landing_dir)
    assert roles.standby_is_primary and roles.mark == "BTS_4" and roles.set_id == 4 and roles.backups_held_by is None
    assert site_roles.SiteRoles.from_json(roles.to_json()) == roles


def test_a_roles_record_that_cannot_be_read_names_the_file_and_what_to_do(cfg):
    from biztalk_dr.domain.errors import StandbyStateUnreadable
    from biztalk_dr.ops.standby_state import state_dir

    folder = state_dir(cfg.sites.standby.landing_dir)
    folder.mkdir(parents=True)
    for text, why in (('{"primary_site": "standby", "markk": "BTS_4"}', "unknown key"), ("{", "Expecting")):
        (folder / "roles.json").write_text(text)
        with pytest.raises(StandbyStateUnreadable, match=why) as raised:
            site_roles.acting_config(cfg)
        assert str(folder / "roles.json") in str(raised.value) and "primary_site" in raised.value.advice
