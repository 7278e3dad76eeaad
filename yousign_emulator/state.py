"""In-memory state: records, webhook events, mailbox, counters, and the control methods tests use.

Everything runs on the server's event loop and state changes are synchronous, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import kyc, lifecycle, serializers, signing
from .errors import not_found
from .faults import Fault, FaultInjector
from .models import (
    Document,
    Email,
    IdentityDocument,
    RecordedRequest,
    RequestStamp,
    SignatureRequest,
    Signer,
    WebhookDelivery,
    WebhookEvent,
    new_id,
)
from .rate_limit import RateLimiter
from .settings import EmulatorSettings
from .timeutil import now_utc

EventSink = Callable[[WebhookEvent, list[str]], None]


class EmulatorState:
    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.public_url = f"http://{settings.host}:{settings.port}"  # replaced once the port is known
        self.signature_requests: dict[str, SignatureRequest] = {}
        self.documents: dict[str, Document] = {}
        self.signers: dict[str, Signer] = {}
        self.identity_documents: dict[str, IdentityDocument] = {}
        self.recorded_requests: list[RecordedRequest] = []
        self.accepted_requests: list[RequestStamp] = []  # admitted by the rate limiter
        self.rejected_requests: list[RequestStamp] = []  # every 429 given (rate limit or injected)
        self.webhook_events: list[WebhookEvent] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.mailbox: list[Email] = []
        self.webhook_urls: list[str] = list(settings.webhook_urls)
        self.faults = FaultInjector(settings.fault_5xx_rate, settings.fault_429_rate, settings.seed)
        self.rate_limiter = self._new_rate_limiter()
        self.event_sink: EventSink | None = None  # set by the webhook dispatcher
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _new_rate_limiter(self) -> RateLimiter:
        s = self.settings
        return RateLimiter(s.requests_per_minute, s.requests_per_hour, s.minute_seconds, s.hour_seconds)

    # ---- lookups (404 as YouSign) ----------------------------------------------------------------
    def signature_request(self, sr_id: str) -> SignatureRequest:
        """Deleted (not permanently) requests stay readable, like YouSign's `deleted` status."""
        sr = self.signature_requests.get(sr_id)
        if sr is None:
            raise not_found("signature request", sr_id)
        lifecycle.check_expiry(self, sr)  # expiry is evaluated lazily on every access (plus a sweep)
        return sr

    def signer_of(self, sr: SignatureRequest, signer_id: str) -> Signer:
        if signer_id not in sr.signer_ids or signer_id not in self.signers:
            raise not_found("signer", signer_id)
        return self.signers[signer_id]

    def signer(self, signer_id: str) -> Signer:
        signer = self.signers.get(signer_id)
        if signer is None:
            raise not_found("signer", signer_id)
        self.signature_request(signer.signature_request_id)
        return signer

    def identity_document(self, verification_id: str) -> IdentityDocument:
        verification = self.identity_documents.get(verification_id)
        if verification is None:
            raise not_found("identity document verification", verification_id)
        return verification

    def sr_documents(self, sr: SignatureRequest) -> dict[str, Document]:
        return {did: self.documents[did] for did in sr.document_ids if did in self.documents}

    def sr_signers(self, sr: SignatureRequest) -> list[Signer]:
        return [self.signers[sid] for sid in sr.signer_ids if sid in self.signers]

    # ---- JSON views -------------------------------------------------------------------------------
    def sr_json(self, sr: SignatureRequest) -> dict[str, Any]:
        return serializers.signature_request(sr, self.signers, self.documents)

    def sr_activated_json(self, sr: SignatureRequest) -> dict[str, Any]:
        return serializers.signature_request_activated(sr, self.signers, self.documents)

    # ---- side channels: webhooks and e-mails ------------------------------------------------------
    def emit(self, event_name: str, data: dict[str, Any]) -> WebhookEvent:
        """Freeze the event (body bytes included) and hand it to the dispatcher; never sent inline."""
        s = self.settings
        payload = {
            "event_id": str(uuid.uuid4()),
            "event_name": event_name,
            "event_time": str(int(time.time())),
            "subscription_id": s.webhook_subscription_id,
            "subscription_description": s.webhook_subscription_description,
            "sandbox": s.sandbox,
            "data": data,
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        event = WebhookEvent(payload["event_id"], event_name, payload["event_time"], body, payload)
        self.webhook_events.append(event)
        if self.event_sink is not None and self.webhook_urls:
            self.event_sink(event, list(self.webhook_urls))
        return event

    def send_email(self, to: str, subject: str, body: str, kind: str, **links: Any) -> Email:
        email = Email(id=new_id(), to=to, subject=subject, body=body, kind=kind, sent_at=now_utc(), **links)
        self.mailbox.append(email)
        return email

    def schedule(self, key: str, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` later on the running loop (KYC completion); replaced if `key` is scheduled again."""
        self.cancel_scheduled(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._run_timer, key, callback)

    def _run_timer(self, key: str, callback: Callable[[], None]) -> None:
        self._timers.pop(key, None)
        callback()

    def cancel_scheduled(self, key: str) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all_scheduled(self) -> None:
        for key in list(self._timers):
            self.cancel_scheduled(key)

    def sweep_expired(self) -> list[str]:
        """Expire every ongoing request past its expiration date; returns their ids."""
        expired = []
        for sr in list(self.signature_requests.values()):
            if lifecycle.check_expiry(self, sr):
                expired.append(sr.id)
        return expired

    # ---- control API (also exposed over HTTP under /_emulator/) -----------------------------------
    def sign_signer(self, signer_id: str) -> dict[str, Any]:
        """What the signer does on the signing page: ongoing request, notified signer, else ApiError."""
        signer = self.signer(signer_id)
        signing.sign(self, signer)
        return serializers.signer(signer)

    def decline_signer(self, signer_id: str, reason: str = "Refusé depuis l'émulateur") -> dict[str, Any]:
        signer = self.signer(signer_id)
        signing.decline(self, signer, reason)
        return serializers.signer(signer)

    def expire_signature_request(self, sr_id: str) -> dict[str, Any]:
        sr = self.signature_request(sr_id)
        lifecycle.expire(self, sr)
        return self.sr_json(sr)

    def complete_identity_document(
        self, verification_id: str, status: str = "verified", status_codes: list[str] | None = None
    ) -> dict[str, Any]:
        verification = self.identity_document(verification_id)
        kyc.complete(self, verification, status, list(status_codes or []))
        return serializers.identity_document_full(verification)

    def add_fault(
        self,
        method: str = "POST",
        path_regex: str = r"^/v3/signature_requests$",
        kind: str = "500",
        times: int | None = 1,
        delay_seconds: float | None = None,
    ) -> Fault:
        return self.faults.add(method, path_regex, kind, times, delay_seconds)

    def clear_faults(self) -> None:
        self.faults.clear()

    def replay_webhook(self, event_id: str) -> WebhookEvent:
        """Send an already-emitted event again, byte for byte (same event_id, event_time, signature)."""
        event = next((e for e in self.webhook_events if e.event_id == event_id), None)
        if event is None:
            raise not_found("webhook event", event_id)
        if self.event_sink is not None and self.webhook_urls:
            self.event_sink(event, list(self.webhook_urls))
        return event

    def set_webhook_urls(self, urls: list[str]) -> None:
        self.webhook_urls = list(urls)

    def set_rate_limits(
        self,
        requests_per_minute: int | None,
        requests_per_hour: int | None,
        minute_seconds: float | None = None,
        hour_seconds: float | None = None,
    ) -> None:
        """Swap the limiter (windows restart now): lets one emulator serve several benchmark scenarios."""
        update: dict[str, Any] = {
            "requests_per_minute": requests_per_minute,
            "requests_per_hour": requests_per_hour,
        }
        if minute_seconds is not None:
            update["minute_seconds"] = minute_seconds
        if hour_seconds is not None:
            update["hour_seconds"] = hour_seconds
        self.settings = self.settings.model_copy(update=update)
        self.rate_limiter = self._new_rate_limiter()

    def reset(self) -> None:
        """Forget everything (records, events, mailbox, counters, faults); settings are kept."""
        self.cancel_all_scheduled()
        for store in (self.signature_requests, self.documents, self.signers, self.identity_documents):
            store.clear()
        for log in (
            self.recorded_requests,
            self.accepted_requests,
            self.rejected_requests,
            self.webhook_events,
            self.webhook_deliveries,
            self.mailbox,
        ):
            log.clear()
        self.faults.clear()
        self.rate_limiter = self._new_rate_limiter()

    def stats(self) -> dict[str, Any]:
        """Counters a benchmark needs to compute the achieved request rate."""
        return {
            "accepted": len(self.accepted_requests),
            "rate_limited": len(self.rejected_requests),
            "accepted_times": [r.wall_time for r in self.accepted_requests],
            "rate_limited_times": [r.wall_time for r in self.rejected_requests],
            "webhook_events": len(self.webhook_events),
            "webhook_deliveries": len(self.webhook_deliveries),
        }
