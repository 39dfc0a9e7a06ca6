"""The group's configuration: every rule, with the exact line an operator reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from biztalk_dr.cli import main as cli_main
from biztalk_dr.domain.config import parse_config
from biztalk_dr.domain.errors import ConfigError
from biztalk_dr.ops.config_files import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "config" / "example_group.yaml"

MINIMAL = textwrap.dedent("""\
    group:
      name: G1
    databases:
      - {name: BizTalkMgmtDb, role: management}
      - {name: BizTalkMsgBoxDb, role: messagebox}
      - {name: BizTalkDTADb, role: tracking}
      - {name: SSODB, role: sso}
    sites:
      primary:
        instances:
          main: {conn_id: p, server_name: SQL1}
        backup_path: 'D:\\Backups\\'
        backup_dir: /data/backups
      standby:
        instances:
          main: {conn_id: s, server_name: SQL2}
        landing_dir: /data/landing
        landing_path: 'E:\\Landing\\'
    files:
      roots: [/data]
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="g.yaml")
    return [str(p) for p in info.value.problems]


def replace(old: str, new: str, text: str = MINIMAL) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_example_config_is_valid_and_complete():
    cfg = load_config(EXAMPLE)
    assert cfg.group.name == "CONTOSO-BTS"
    assert {d.role for d in cfg.databases} >= {"management", "messagebox", "tracking", "sso", "custom"}
    assert cfg.sites.validation is not None
    assert cfg.schedules.log_backup_minutes == 15


def test_minimal_config_takes_documented_defaults():
    cfg = parse_config(MINIMAL)
    assert cfg.group.time_zone == "UTC"
    assert cfg.backup.mark_prefix == "BTS"
    assert cfg.schedules.full_backup.frequency == "d" and cfg.schedules.full_backup.hour == 1
    assert cfg.schedules.log_backup_minutes == 15
    assert cfg.retention.history_days == 14
    assert cfg.instance_of(cfg.databases[0], "standby") == "main"


def test_unknown_key_names_its_line_and_the_allowed_keys():
    text = replace("  name: G1\n", "  name: G1\n  timezone: UTC\n")
    assert problems(text) == [
        "g.yaml:3: group.timezone: unknown key 'timezone' (allowed here: name, time_zone)"]


def test_wrong_type_says_what_is_expected():
    text = MINIMAL + "schedules:\n  log_backup_minutes: often\n"
    assert problems(text) == ["g.yaml:22: schedules.log_backup_minutes: expected a whole number, got 'often'"]


def test_number_as_text_is_not_silently_converted():
    text = MINIMAL + "schedules:\n  log_backup_minutes: '15'\n"
    assert problems(text) == ["g.yaml:22: schedules.log_backup_minutes: expected a whole number, got '15'"]


def test_nine_character_mark_prefix_is_refused():
    text = MINIMAL + "backup:\n  mark_prefix: BIZTALKDR\n"
    assert problems(text) == [
        "g.yaml:22: backup.mark_prefix: expected 1 to 8 characters (BizTalk's limit for @MarkName), got 9: 'BIZTALKDR'"]


def test_mark_prefix_must_start_with_a_letter():
    text = MINIMAL + "backup:\n  mark_prefix: 1BTS\n"
    assert problems(text) == ["g.yaml:22: backup.mark_prefix: expected a letter then letters, digits or '_' "
                              "(it starts every mark name), got '1BTS'"]


def test_missing_connection_id_points_at_its_instance():
    text = replace("main: {conn_id: s, server_name: SQL2}", "main: {server_name: SQL2}")
    assert problems(text) == ["g.yaml:16: sites.standby.instances.main.conn_id: missing: this field is required"]


def test_backup_path_longer_than_biztalk_allows():
    long_path = "D:\\" + "b" * 126 + "\\"
    text = replace("'D:\\Backups\\'", f"'{long_path}'")
    assert problems(text) == [f"g.yaml:12: sites.primary.backup_path: {len(long_path)} characters; "
                              "BizTalk's @BackupPath takes at most 128"]


def test_relative_backup_path_is_refused():
    text = replace("'D:\\Backups\\'", "backups")
    assert problems(text) == [
        "g.yaml:12: sites.primary.backup_path: expected an absolute path as SQL Server sees it "
        "(D:\\Backups\\, \\\\server\\share\\ or /var/opt/mssql/backup/), got 'backups'"]


def test_azure_blob_backup_path_is_refused_with_reason():
    text = replace("'D:\\Backups\\'", "https://acct.blob.core.windows.net/bts")
    assert "Azure blob URLs are not supported" in problems(text)[0]


def test_database_name_with_file_name_characters():
    text = replace("{name: SSODB, role: sso}", "{name: 'SSO/DB', role: sso}")
    assert problems(text) == ["g.yaml:7: databases[3].name: 'SSO/DB' contains '/'; database names become part "
                              "of backup file names, so these characters are not allowed"]


def test_unknown_role_lists_the_roles():
    text = replace("role: sso}", "role: single_sign_on}")
    [problem] = problems(text)
    assert problem.startswith("g.yaml:7: databases[3].role: expected one of 'management', 'messagebox'")
    assert problem.endswith("got 'single_sign_on'")


def test_required_roles_are_enforced():
    text = replace("  - {name: SSODB, role: sso}\n", "")
    assert problems(text) == ["g.yaml:3: databases: a BizTalk group always has a database with role 'sso'; "
                              "none is listed"]


def test_duplicate_database_names_case_insensitive():
    text = replace("{name: SSODB, role: sso}", "{name: SSODB, role: sso}\n  - {name: ssodb, role: custom}")
    assert problems(text) == ["g.yaml:8: databases[4].name: 'ssodb' is listed twice (also databases[3]); "
                              "SQL Server compares names case-insensitively"]


def test_master_flag_only_on_a_messagebox():
    text = replace("{name: BizTalkDTADb, role: tracking}", "{name: BizTalkDTADb, role: tracking, master: true}")
    assert problems(text) == ["g.yaml:6: databases[2].master: only a MessageBox database (role: messagebox) "
                              "can be the master"]


def test_several_messageboxes_need_one_master():
    text = replace("{name: BizTalkMsgBoxDb, role: messagebox}",
                   "{name: BizTalkMsgBoxDb, role: messagebox}\n  - {name: MsgBox2, role: messagebox}")
    assert problems(text) == ["g.yaml:5: databases[1].master: several MessageBox databases: mark exactly one "
                              "with master: true"]


def test_database_instance_must_exist_in_every_site():
    text = replace("{name: SSODB, role: sso}", "{name: SSODB, role: sso, instance: sso}")
    assert problems(text) == [
        "g.yaml:7: databases[3].instance: no instance 'sso' in sites.primary.instances (there: main)",
        "g.yaml:7: databases[3].instance: no instance 'sso' in sites.standby.instances (there: main)",
    ]


def test_worker_paths_must_be_inside_file_roots():
    text = replace("roots: [/data]", "roots: [/data/backups]")
    assert problems(text) == ["g.yaml:17: sites.standby.landing_dir: '/data/landing' is not inside any of "
                              "files.roots (/data/backups)"]


def test_worker_path_with_dotdot_is_refused():
    text = replace("landing_dir: /data/landing", "landing_dir: /data/../etc")
    assert problems(text) == ["g.yaml:17: sites.standby.landing_dir: expected a plain absolute path without "
                              "'..', got '/data/../etc'"]


def test_rpo_thresholds_are_ordered_and_above_log_interval():
    text = MINIMAL + "rpo:\n  warn_minutes: 10\n  critical_minutes: 5\n"
    assert problems(text) == [
        "g.yaml:22: rpo.warn_minutes: 10 must be less than rpo.critical_minutes (5)",
        "g.yaml:22: rpo.warn_minutes: 10 would warn on every log backup interval (schedules.log_backup_minutes "
        "= 15); make it larger than the interval",
    ]


def test_bad_time_zone():
    text = replace("  name: G1\n", "  name: G1\n  time_zone: Mars/Olympus\n")
    assert problems(text) == ["g.yaml:3: group.time_zone: expected an IANA time zone such as Europe/Berlin "
                              "or UTC, got 'Mars/Olympus'"]


def test_hour_out_of_range():
    text = MINIMAL + "schedules:\n  full_backup: {frequency: d, hour: 24}\n"
    assert problems(text) == ["g.yaml:22: schedules.full_backup.hour: input should be less than or equal to 23, "
                              "got 24"]


def test_validation_instance_must_not_be_a_production_instance():
    text = MINIMAL.replace("files:", "  validation:\n    conn_id: s\n    server_name: V\n"
                                     "    landing_path: 'E:\\L\\'\n    data_path: 'E:\\D\\'\n"
                                     "    log_path: 'E:\\G\\'\nfiles:")
    assert problems(text) == ["g.yaml:20: sites.validation.conn_id: 's' is also used at "
                              "sites.standby.instances.main.conn_id: never validate restores on a primary or "
                              "standby instance"]


def test_all_problems_are_reported_at_once():
    text = replace("name: G1", "name: G1\n  colour: blue") + "backup:\n  mark_prefix: TOOLONGPREFIX\n"
    assert len(problems(text)) == 2


def test_invalid_yaml_reports_its_line():
    assert problems("group:\n  name: [unclosed\n") [0].startswith("g.yaml:3: not valid YAML")


def test_not_a_mapping():
    assert problems("- a\n- b\n") == ["g.yaml:1: expected a YAML mapping with the keys group, databases, sites, "
                                      "files, ..."]


def test_load_config_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere.yaml: no such file"):
        load_config(tmp_path / "nothere.yaml")


def test_load_config_refuses_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, expected a YAML file"):
        load_config(tmp_path)


def test_load_config_is_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(MINIMAL)
    first = load_config(path)
    assert load_config(path) is first
    path.write_text(MINIMAL.replace("name: G1", "name: G2"))
    os.utime(path, ns=(first_ns := path.stat().st_mtime_ns + 10**9, first_ns))
    assert load_config(path).group.name == "G2"


def test_cli_check_ok(capsys):
    assert cli_main(["config", "check", str(EXAMPLE)]) == 0
    assert "OK: group 'CONTOSO-BTS', 7 databases" in capsys.readouterr().out


def test_cli_check_reports_each_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text()
    text = text.replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP")
    text = text.replace("log_backup_minutes: 15 ", "log_backup_minutes: x")
    text = text.replace("  compression: true", "  compresion: true")
    text = text.replace("        conn_id: biztalk_standby\n", "")
    bad.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "config", "check", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[-1] == f"4 problem(s) in {bad}"
    fields = [line.split(": ")[1] for line in lines[:-1]]
    assert fields == ["sites.standby.instances.main.conn_id", "schedules.log_backup_minutes", "backup.mark_prefix", "backup.compresion"]
    assert all(line.startswith(f"{bad}:") and line.split(":")[1].isdigit() for line in lines[:-1])


def test_make_run_group_template_renders_to_a_valid_config(tmp_path):
    template = (ROOT / "include" / "config" / "standin_group.yaml").read_text()
    cfg = parse_config(template.replace("@VAR@", str(tmp_path)), source="standin_group.yaml")
    assert cfg.sites.primary.backup_dir == f"{tmp_path}/backups"
    assert cfg.sites.validation is not None


def test_standby_backup_folder_needs_both_paths_inside_the_roots():
    only_sql = replace("landing_path: 'E:\\Landing\\'\n", "landing_path: 'E:\\Landing\\'\n    backup_path: 'E:\\Backups\\'\n")
    assert problems(only_sql) == ["g.yaml:19: sites.standby.backup_path: sites.standby.backup_dir is missing: give "
                                  "both (the standby site's backup folder as its SQL Server sees it and as the Airflow "
                                  "workers see it)"]
    outside = replace("landing_path: 'E:\\Landing\\'\n", "landing_path: 'E:\\Landing\\'\n    backup_path: "
                      "'E:\\Backups\\'\n    backup_dir: /srv/backups\n")
    assert problems(outside) == ["g.yaml:20: sites.standby.backup_dir: '/srv/backups' is not inside any of files.roots "
                                 "(/data)"]
    good = replace("landing_path: 'E:\\Landing\\'\n", "landing_path: 'E:\\Landing\\'\n    backup_path: "
                   "'E:\\Backups\\'\n    backup_dir: /data/dr-backups\n")
    assert parse_config(good).sites.standby.backup_dir == "/data/dr-backups"
