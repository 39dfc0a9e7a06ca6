"""A local SMTP server that keeps every mail it receives, so tests assert what an operator would read.

Just enough of RFC 5321 for Airflow's SmtpHook (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
without TLS or login.
"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass
class SmtpSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None

    def texts(self) -> list[tuple[str, str]]:
        """(subject, body text) of every mail, the body decoded from its transfer encoding."""
        out = []
        for msg in self.messages:
            body = "\n".join(part.get_content() for part in msg.walk() if part.get_content_maintype() == "text")
            out.append((str(msg["Subject"]), body))
        return out

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def start_smtp_sink() -> SmtpSink:
    sink = SmtpSink(port=0)

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 sink ESMTP")
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    self.reply("250-sink")
                    self.reply("250 8BITMIME")
                elif verb == b"DATA":
                    self.reply("354 end with .")
                    data = bytearray()
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    sink.messages.append(email.message_from_bytes(bytes(data), policy=email.policy.default))
                    self.reply("250 queued")
                elif verb == b"QUIT":
                    self.reply("221 bye")
                    return
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    self.reply("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    sink._server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return sink


def smtp_connection(sink: SmtpSink) -> dict:
    """An Airflow connection (as JSON for AIRFLOW_CONN_*) to the sink."""
    return {"conn_type": "smtp", "host": "127.0.0.1", "port": sink.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "biztalk-dr@example.test"}}
