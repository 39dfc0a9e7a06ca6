"""Alerts reach the configured targets (a local SMTP server, a local Slack webhook) with what an operator
needs: which DAG and step, SQL Server's error number, what to do."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from types import SimpleNamespace

import pytest

from biztalk_dr.domain.errors import BackupDeviceError
from biztalk_dr.edge.alerts import DrAlertNotifier, missed_deadline_alert
from tests.conftest import EXAMPLE_CONFIG
from tests.smtp_sink import smtp_connection, start_smtp_sink


@pytest.fixture()
def slack_posts():
    posts = SimpleNamespace(received=[], url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            posts.received.append({"path": self.path,
                          "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    posts.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret"
    yield posts
    server.shutdown()


@pytest.fixture()
def targets(monkeypatch, slack_posts):
    """The example group's alert config (smtp_default, slack_biztalk_ops) pointed at local sinks."""
    mail = start_smtp_sink()
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(EXAMPLE_CONFIG))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp_connection(mail)))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_BIZTALK_OPS",
                       json.dumps({"conn_type": "slackwebhook", "password": slack_posts.url}))
    yield mail, slack_posts
    mail.stop()


def test_a_failed_task_alerts_by_mail_and_slack_with_error_number_and_advice(targets):
    mail, slack = targets
    error = BackupDeviceError(3201, "Cannot open backup device 'X:\\bk\\SSODB.bak'. Operating system error 3(The "
                                    "system cannot find the path specified.).", conn_id="biztalk_primary")
    ti = SimpleNamespace(dag_id="dr_full_backup", task_id="take_full_backup_set", run_id="scheduled__2026-11-25",
                         log_url="http://airflow/log")
    DrAlertNotifier().notify({"ti": ti, "exception": error})
    [(subject, body)] = mail.texts()
    assert subject == "[CONTOSO-BTS] biztalk-dr: dr_full_backup failed at take_full_backup_set"
    assert "SQL Server error 3201" in body and "Cannot open backup device" in body
    assert "What to do: SQL Server cannot open the backup file" in body and "Log: http://airflow/log" in body
    [post] = slack.received
    assert post["path"] == "/services/T000/B000/secret"
    assert "SQL Server error 3201" in post["body"]["text"]


def test_a_missed_deadline_alerts_with_the_expectation(targets):
    mail, slack = targets
    asyncio.run(missed_deadline_alert({"dag_run": {"run_id": "scheduled__2026-11-25T10:15"}},
                                      dag_id="dr_log_backup", expectation="a log backup set every 15 minutes"))
    [(subject, body)] = mail.texts()
    assert subject == "[CONTOSO-BTS] biztalk-dr: dr_log_backup missed its deadline"
    assert "run scheduled__2026-11-25T10:15" in body and "a log backup set every 15 minutes" in body
    assert len(slack.received) == 1


def test_an_unreachable_target_does_not_hide_the_failure(monkeypatch, caplog):
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(EXAMPLE_CONFIG))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": 9,
                                                                "extra": {"disable_ssl": True, "disable_tls": True,
                                                                          "from_email": "x@example.test"}}))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_BIZTALK_OPS", json.dumps({"conn_type": "slackwebhook",
                                                                     "password": "http://127.0.0.1:9/hook"}))
    ti = SimpleNamespace(dag_id="dr_log_backup", task_id="take_log_backup_set", run_id="r", log_url="")
    DrAlertNotifier().notify({"ti": ti, "exception": RuntimeError("boom")})
    assert "the alert mail could not be sent" in caplog.text and "the Slack alert could not be sent" in caplog.text
    assert "ALERT [CONTOSO-BTS] biztalk-dr: dr_log_backup failed at take_log_backup_set" in caplog.text
