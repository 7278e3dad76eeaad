"""Outgoing email over SMTP (aiosmtplib); SMTP_URL such as smtp://user:pass@host:port or smtps://..."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import unquote, urlparse

import aiosmtplib


class Mailer:
    def __init__(self, smtp_url: str, sender: str) -> None:
        url = urlparse(smtp_url)
        if url.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        self._options = {
            "hostname": url.hostname or "localhost",
            "port": url.port or (465 if url.scheme == "smtps" else 25),
            "use_tls": url.scheme == "smtps",
            "start_tls": False if url.scheme == "smtps" else None,
            "username": unquote(url.username) if url.username else None,
            "password": unquote(url.password) if url.password else None,
            "timeout": 15,
        }
        self._sender = sender

    async def send(
        self, *, to: str, subject: str, body: str, attachment: tuple[str, bytes] | None = None
    ) -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._sender, to, subject
        message.set_content(body)
        if attachment:
            filename, content = attachment
            message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
        await aiosmtplib.send(message, **self._options)
        return message["Message-ID"] or ""
