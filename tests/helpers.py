"""Small helpers that keep tests short: polling, unique settings, an SMTP sink, a ready dossier."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from email.message import Message
from typing import TypeVar

from aiosmtpd.controller import Controller

from config.settings import Settings
from config.temporal import data_converter
from domain.identifiers import luhn_complete
from domain.models import ClientRepresentative, LegalRepresentative, Platform
from store import dossiers, firms, kyc
from store.records import Dossier, Firm, KycFile

T = TypeVar("T")

CLIENT_REP = ClientRepresentative(
    first_name="Jeanne", last_name="Martin", birth_name="Durand", email="jeanne.martin@acme.example"
)
FIRM_REP = LegalRepresentative(first_name="Paul", last_name="Expert", email="paul@cabinet.example")

WEBHOOK_SECRET = "test-webhook-secret"


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 10.0, interval: float = 0.05) -> T:
    """Await `check` until it returns a truthy value, or fail with its last result."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


async def truthy_or_none(value: T) -> T | None:
    """`value` as an awaitable for `eventually`, when the check needs no await of its own."""
    return value or None


# A fixed key, so tests encrypt Temporal payloads exactly as production does.
TEST_ENCRYPTION_KEYS = "test:" + base64.b64encode(bytes(range(32))).decode()


def test_settings(**overrides) -> Settings:
    """Settings with task queues of their own, so tests never pick up each other's tasks."""
    suffix = uuid.uuid4().hex[:8]
    values = {
        "temporal_task_queue": f"mandates-{suffix}",
        "yousign_task_queue": f"yousign-{suffix}",
        "yousign_requests_per_minute": 6000,
        "yousign_requests_per_hour": 360000,
        "payload_encryption_keys": TEST_ENCRYPTION_KEYS,
        "payload_encryption_key_id": "test",
    }
    return Settings(**(values | overrides))


test_settings.__test__ = False  # not a test, despite its name
TEST_CONVERTER = data_converter(test_settings())


def establishment_siret(number: int, siren: str = "552081317") -> str:
    """A valid SIRET of `siren`'s establishment `number`: a firm's dossiers need distinct SIRETs."""
    return luhn_complete(f"{siren}{number:04d}")


async def verified_firm_with_dossier(db, firm: Firm, siret: str = "73282932000074") -> Dossier:
    """A firm whose representative is verified, with its platform, and one dossier ready for a mandate."""
    await firms.set_platform(db, firm.id, Platform(name="PA Exemple", siren="552081317"))
    submission = await kyc.create_submission(
        db, firm.id, FIRM_REP, "passport", [KycFile(side="front", content_type="image/png", content=b"x")]
    )
    await kyc.complete_submission(
        db, submission.id, status="verified", reason=None, status_codes=[], completed_at=submission.created_at
    )
    return await dossiers.create_dossier(
        db, firm.id, name="ACME SAS", siret=siret, legal_representative=CLIENT_REP
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """A real SMTP server on loopback keeping what it receives, as a mailbox for tests."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def start(self) -> str:
        self._controller.start()
        return self.url

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def answer_lost(start):
    """`start`, whose effect happens but whose answer is lost (a deadline), as a network can do."""
    from temporalio.service import RPCError, RPCStatusCode

    async def started_but_answer_lost(*args, **kwargs):
        await start(*args, **kwargs)
        raise RPCError("Deadline Exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")

    return started_but_answer_lost
