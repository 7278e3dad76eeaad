"""A mailbox for development: an SMTP sink writing .eml files, and a page to read them.

`python -m starter.mailbox` listens for SMTP on 127.0.0.1:SMTP_PORT (1025) and serves the page on
http://127.0.0.1:MAILBOX_PORT (8025); messages go to MAILBOX_DIR (<DATA_DIR>/mailbox). Nothing is
ever relayed: every message sent to it, whatever the recipient, ends up here.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from html import escape
from pathlib import Path

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from config.settings import Settings

MESSAGE_ID = re.compile(r"^[0-9A-Za-z_-]{1,80}$")
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}"
    "pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}.muted{color:#777}"
)


class Maildir:
    """Messages as `<id>.eml` files, newest id last (ids start with the UTC time they arrived)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def store(self, content: bytes) -> str:
        message_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        tmp = self.path / f".{message_id}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, self.path / f"{message_id}.eml")
        return message_id

    def ids(self) -> list[str]:
        return sorted((p.stem for p in self.path.glob("*.eml")), reverse=True)

    def raw(self, message_id: str) -> bytes | None:
        if not MESSAGE_ID.match(message_id):
            return None
        path = self.path / f"{message_id}.eml"
        return path.read_bytes() if path.is_file() else None

    def message(self, message_id: str) -> EmailMessage | None:
        raw = self.raw(message_id)
        return email.message_from_bytes(raw, policy=email.policy.default) if raw is not None else None  # type: ignore[return-value]


class SinkHandler:
    """aiosmtpd handler: accept any recipient, keep the message as it arrived."""

    def __init__(self, maildir: Maildir) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        await asyncio.to_thread(self.maildir.store, content)
        return "250 Message accepted for delivery"


def _arrived(message_id: str) -> str:
    stamp = message_id.split("-", 1)[0]
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return ""


def _summary(maildir: Maildir, message_id: str) -> dict[str, str]:
    message = maildir.message(message_id)
    if message is None:
        return {"id": message_id}
    return {
        "id": message_id,
        "date": str(message.get("Date", "")) or _arrived(message_id),
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
    }


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>",
        status_code=status_code,
    )


def build_app(maildir: Maildir, lifespan=None) -> Starlette:
    async def index(request: Request) -> Response:
        rows = [_summary(maildir, i) for i in maildir.ids()]
        lines = "".join(
            f"<tr><td>{escape(r.get('date', ''))}</td><td>{escape(r.get('to', ''))}</td>"
            f'<td><a href="/messages/{r["id"]}">{escape(r.get("subject") or "(sans objet)")}</a></td></tr>'
            for r in rows
        )
        body = (
            f"<h1>Boîte mail de développement</h1><p class=muted>{len(rows)} message(s) dans "
            f"<code>{escape(str(maildir.path))}</code>. Rien n'est envoyé à l'extérieur.</p>"
            + (
                f"<table><tr><th>Date</th><th>À</th><th>Objet</th></tr>{lines}</table>"
                if rows
                else "<p>Aucun message pour l'instant.</p>"
            )
        )
        return _page("Boîte mail", body)

    async def messages_json(request: Request) -> Response:
        return JSONResponse([_summary(maildir, i) for i in maildir.ids()])

    async def show(request: Request) -> Response:
        message_id = request.path_params["message_id"]
        message = maildir.message(message_id)
        if message is None:
            return _page("Introuvable", "<p>Message introuvable. <a href='/'>Retour</a></p>", 404)
        headers = "".join(
            f"<tr><th>{escape(name)}</th><td>{escape(str(message.get(name, '')))}</td></tr>"
            for name in ("Date", "From", "To", "Cc", "Subject")
            if message.get(name)
        )
        text = message.get_body(preferencelist=("plain", "html"))
        content = text.get_content() if text is not None else ""
        attachments = "".join(
            f'<li><a href="/messages/{message_id}/attachments/{n}">'
            f"{escape(part.get_filename() or f'pièce {n + 1}')}</a> ({escape(part.get_content_type())})</li>"
            for n, part in enumerate(message.iter_attachments())
        )
        body = (
            f"<p><a href='/'>← Tous les messages</a> · <a href='/messages/{message_id}.eml'>source</a></p>"
            f"<table>{headers}</table><pre>{escape(content)}</pre>"
            + (f"<h2>Pièces jointes</h2><ul>{attachments}</ul>" if attachments else "")
        )
        return _page(str(message.get("Subject", "Message")), body)

    async def source(request: Request) -> Response:
        raw = maildir.raw(request.path_params["message_id"])
        if raw is None:
            return Response("not found", status_code=404)
        return Response(raw, media_type="message/rfc822")

    async def attachment(request: Request) -> Response:
        message = maildir.message(request.path_params["message_id"])
        parts = list(message.iter_attachments()) if message is not None else []
        index = request.path_params["index"]
        if index >= len(parts):
            return Response("not found", status_code=404)
        part = parts[index]
        filename = (part.get_filename() or f"attachment-{index + 1}").replace('"', "")
        return Response(
            part.get_content(),
            media_type=part.get_content_type(),
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    return Starlette(
        routes=[
            Route("/", index),
            Route("/messages.json", messages_json),
            Route("/messages/{message_id}.eml", source),
            Route("/messages/{message_id}", show),
            Route("/messages/{message_id}/attachments/{index:int}", attachment),
        ],
        lifespan=lifespan,
    )


def mailbox_app(maildir: Maildir, host: str, smtp_port: int) -> Starlette:
    """The page, with the SMTP server living as long as it (started and closed by its lifespan)."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(SinkHandler(maildir), hostname="mailbox.localhost", data_size_limit=50 * 2**20),
            host,
            smtp_port,
        )
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    return build_app(maildir, lifespan)


def main() -> None:
    host = os.environ.get("MAILBOX_HOST", "127.0.0.1")
    smtp_port = int(os.environ.get("SMTP_PORT", "1025"))
    page_port = int(os.environ.get("MAILBOX_PORT", "8025"))
    directory = os.environ.get("MAILBOX_DIR") or str(Settings().data_dir / "mailbox")
    maildir = Maildir(Path(directory))
    print(
        f"Mailbox: SMTP {host}:{smtp_port} · page http://{host}:{page_port}/ · files {maildir.path}",
        flush=True,
    )
    uvicorn.run(mailbox_app(maildir, host, smtp_port), host=host, port=page_port, log_level="info")


if __name__ == "__main__":
    main()
