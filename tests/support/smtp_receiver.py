"""A real SMTP server on a loopback port, for tests of the alerts: it speaks enough of RFC 5321 for smtplib
(``EHLO``/``HELO``, ``MAIL``, ``RCPT``, ``DATA``, ``RSET``, ``NOOP``, ``QUIT``) and keeps every message it accepts."""

from __future__ import annotations

import email
import socketserver
import threading
from dataclasses import dataclass
from email.message import Message


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def body(self) -> str:
        parts = self.message.walk() if self.message.is_multipart() else [self.message]
        texts = [part.get_payload(decode=True) for part in parts if part.get_content_maintype() == "text"]
        return "\n".join(text.decode("utf-8", "replace") for text in texts if isinstance(text, bytes))


class SmtpReceiver:
    """``with SmtpReceiver() as smtp:`` then send to ``127.0.0.1:smtp.port``; read ``smtp.messages``."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 supervisor-test SMTP ready")
                sender, recipients = "", []
                while raw := self.rfile.readline():
                    command = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-supervisor-test")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 supervisor-test")
                    elif verb == "MAIL":
                        sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip(" <>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        with receiver._lock:
                            receiver.messages.append(
                                Received(sender, recipients, email.message_from_bytes(b"".join(lines)))
                            )
                        self.reply("250 OK: queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 command not implemented")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])

    def __enter__(self) -> SmtpReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
