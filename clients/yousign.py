"""YouSign public API v3 over httpx: one client per process, errors typed retryable or final."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any, Literal

import httpx

from clients.yousign_errors import YouSignError, YouSignFinalError, YouSignRetryableError
from clients.yousign_models import (
    CancelReason,
    Document,
    IdentityDocumentType,
    IdentityVerification,
    NewSignatureRequest,
    NewSigner,
    SignatureRequest,
    Signer,
)

PDF = "application/pdf"
# A download not ready yet answers a JSON error: asking for the PDF alone could get a 406 instead.
PDF_OR_ERROR = f"{PDF}, application/json"
# httpcore checks every pooled connection (a poll each) on every request, so a big pool costs CPU per
# call: 32 concurrent sends took about 17 ms of worker CPU each with the default 100, 14 ms with 8.
# YouSign's own limits (60 requests a minute) never need more at once.
POOL_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)
SettledStatus = Literal["done", "declined"]


# Requests still allowed in the current `call_budget` block (a list, so the block sees the count).
_calls_left: ContextVar[list[int] | None] = ContextVar("yousign_calls_left", default=None)


# A 429 without a wait stated, whose X-RateLimit-Remaining-* says which budget is spent: a minute
# frees the per-minute budget; the hour's may take up to an hour, so it is asked again every 10 min
# (YouSign's docs show a 429 with only those headers).
SPENT_WINDOW_WAITS = (("X-RateLimit-Remaining-Hour", 600.0), ("X-RateLimit-Remaining-Minute", 60.0))


def _retry_after(response: httpx.Response) -> float | None:
    for header in ("Retry-After", "RateLimit-Reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    if response.status_code == 429:
        for header, wait in SPENT_WINDOW_WAITS:
            if response.headers.get(header, "").strip() == "0":
                return wait
    return None


# 4xx that only say "not yet": the signed document and audit trail exist once the request is `done`,
# which can follow the signer's own `done` by a moment.
NOT_READY_YET = frozenset(
    {"document.unable_to_download_signature_request_not_in_done", "audit_trail.not_ready_for_download"}
)


def _error_for(response: httpx.Response) -> YouSignError:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    fields = {
        "status": response.status_code,
        "error_type": body.get("type"),
        "detail": body.get("detail") or body.get("message"),
        "invalid_params": body.get("invalid_params"),
    }
    message = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    if response.status_code == 401:
        # Our key, not the request: retried until an operator sets YOUSIGN_API_KEY right, rather
        # than failing every send and identity check in the meantime.
        return YouSignRetryableError(
            f"{message}: YouSign refused YOUSIGN_API_KEY", maybe_done=False, **fields
        )
    if response.status_code == 429 or response.status_code >= 500 or fields["error_type"] in NOT_READY_YET:
        return YouSignRetryableError(
            message, retry_after=_retry_after(response), maybe_done=response.status_code != 429, **fields
        )
    return YouSignFinalError(message, **fields)


def _unsent(error: httpx.TransportError) -> bool:
    """The request never left: no connection was made, or none was free in the pool."""
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class YouSignClient:
    """A thin typed wrapper over the v3 endpoints this service uses; it never retries by itself.

    Retrying is the caller's decision (Temporal retries activities), except for creating a
    signature request, which must stay exactly-once: see `ensure_signature_request`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            limits=POOL_LIMITS,
        )
        # Told of every call: (method, outcome) with outcome a status code, "timeout" or "connection".
        self._observe = observe or (lambda method, outcome: None)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> YouSignClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextmanager
    def call_budget(self, calls: int) -> Iterator[None]:
        """At most `calls` requests inside the block (per asyncio task), so a rate cap counted in
        blocks holds: the request beyond is not sent and raises a retryable error instead."""
        token = _calls_left.set([calls])
        try:
            yield
        finally:
            _calls_left.reset(token)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        budget = _calls_left.get()
        if budget is not None:
            if budget[0] <= 0:
                raise YouSignRetryableError(
                    f"{method} {path}: not sent, this attempt's call budget is spent", maybe_done=False
                )
            budget[0] -= 1
        try:
            response = await self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as error:
            self._observe(method, "timeout")
            raise YouSignRetryableError(
                f"{method} {path}: timed out ({type(error).__name__})", maybe_done=not _unsent(error)
            ) from error
        except httpx.TransportError as error:
            self._observe(method, "connection")
            raise YouSignRetryableError(
                f"{method} {path}: {type(error).__name__}: {error}", maybe_done=not _unsent(error)
            ) from error
        self._observe(method, str(response.status_code))
        if response.is_success:
            return response
        raise _error_for(response)

    # Signature requests

    async def find_signature_request(self, external_id: str) -> SignatureRequest | None:
        """The newest signature request carrying our `external_id`, if YouSign has one."""
        response = await self._request(
            "GET", "signature_requests", params={"external_id[eq]": external_id, "limit": 1}
        )
        found = response.json().get("data") or []
        return SignatureRequest.model_validate(found[0]) if found else None

    async def list_settled_signature_requests(
        self, status: SettledStatus, since: date, after: str | None = None, limit: int = 100
    ) -> tuple[list[SignatureRequest], str | None]:
        """One page (newest first) of requests that became `status` after the day `since`, and the
        cursor of the next page (None on the last)."""
        date_field = {"done": "completed_at", "declined": "declined_at"}[status]
        params = {"status[eq]": status, f"{date_field}[after]": since.isoformat(), "limit": limit}
        if after:
            params["after"] = after
        page = (await self._request("GET", "signature_requests", params=params)).json()
        found = [SignatureRequest.model_validate(item) for item in page.get("data") or []]
        return found, (page.get("meta") or {}).get("next_cursor")

    async def create_signature_request(self, new: NewSignatureRequest) -> SignatureRequest:
        body = {
            "name": new.name,
            "delivery_mode": "email",
            "external_id": new.external_id,
            "expiration_date": new.expiration_date.isoformat(),
            "signers_allowed_to_decline": True,
            "audit_trail_locale": "fr",
            "timezone": "Europe/Paris",
        }
        response = await self._request("POST", "signature_requests", json=body)
        return SignatureRequest.model_validate(response.json())

    async def ensure_signature_request(
        self, new: NewSignatureRequest, *, look_up_first: bool = True
    ) -> SignatureRequest:
        """Exactly-once creation: YouSign has no idempotency key, so look up `external_id` first,
        and again after a failed create whose effect is unknown (timeout, connection loss, 5xx).

        `look_up_first=False` saves a request when the caller knows no earlier attempt was made.
        """
        existing = await self.find_signature_request(new.external_id) if look_up_first else None
        if existing is not None:
            return existing
        try:
            return await self.create_signature_request(new)
        except YouSignRetryableError as error:
            if error.status == 429:
                raise  # refused before processing: nothing was created
            created = await self.find_signature_request(new.external_id)
            if created is None:
                raise
            return created

    async def get_signature_request(self, signature_request_id: str) -> SignatureRequest:
        response = await self._request("GET", f"signature_requests/{signature_request_id}")
        return SignatureRequest.model_validate(response.json())

    async def update_expiration_date(
        self, signature_request_id: str, expiration_date: date
    ) -> SignatureRequest:
        """A draft's last day of validity (YouSign's own update; after activation it may refuse)."""
        response = await self._request(
            "PATCH",
            f"signature_requests/{signature_request_id}",
            json={"expiration_date": expiration_date.isoformat()},
        )
        return SignatureRequest.model_validate(response.json())

    async def upload_document(self, signature_request_id: str, filename: str, pdf: bytes) -> Document:
        response = await self._request(
            "POST",
            f"signature_requests/{signature_request_id}/documents",
            files={"file": (filename, pdf, PDF)},
            data={"nature": "signable_document"},
        )
        return Document.model_validate(response.json())

    async def list_documents(self, signature_request_id: str) -> list[Document]:
        response = await self._request("GET", f"signature_requests/{signature_request_id}/documents")
        return [Document.model_validate(d) for d in response.json()]

    async def add_signer(self, signature_request_id: str, document_id: str, signer: NewSigner) -> Signer:
        body = {
            "info": {
                "first_name": signer.first_name,
                "last_name": signer.last_name,
                "email": signer.email,
                "locale": "fr",
            },
            "signature_level": "electronic_signature",
            "signature_authentication_mode": "otp_email",
            "fields": [{"document_id": document_id, "type": "signature", **signer.field.model_dump()}],
        }
        if signer.date_mention:
            mention = signer.date_mention
            body["fields"].append(
                {
                    "document_id": document_id,
                    "type": "mention",
                    "mention": mention.text,
                    **mention.placement.model_dump(),
                }
            )
        response = await self._request(
            "POST", f"signature_requests/{signature_request_id}/signers", json=body
        )
        return Signer.model_validate(response.json())

    async def activate(self, signature_request_id: str) -> SignatureRequest:
        response = await self._request("POST", f"signature_requests/{signature_request_id}/activate")
        return SignatureRequest.model_validate(response.json())

    async def cancel(
        self, signature_request_id: str, reason: CancelReason, custom_note: str | None = None
    ) -> SignatureRequest:
        body: dict[str, Any] = {"reason": reason}
        if custom_note:
            body["custom_note"] = custom_note
        response = await self._request("POST", f"signature_requests/{signature_request_id}/cancel", json=body)
        return SignatureRequest.model_validate(response.json())

    async def send_reminder(self, signature_request_id: str, signer_id: str) -> None:
        await self._request(
            "POST", f"signature_requests/{signature_request_id}/signers/{signer_id}/send_reminder"
        )

    # Both downloads may answer a PDF or a ZIP: asked for one PDF (not an archive; trails merged),
    # and checked, so a ZIP is never stored as the signed mandate.

    async def download_signed_documents(self, signature_request_id: str) -> bytes:
        response = await self._request(
            "GET",
            f"signature_requests/{signature_request_id}/documents/download",
            params={"version": "completed", "archive": "false"},
            headers={"Accept": PDF_OR_ERROR},
        )
        return _pdf_of(response, "the signed document")

    async def download_audit_trail(self, signature_request_id: str) -> bytes:
        response = await self._request(
            "GET",
            f"signature_requests/{signature_request_id}/audit_trails/download",
            params={"merge": "true"},
            headers={"Accept": PDF_OR_ERROR},
        )
        return _pdf_of(response, "the audit trail")

    # Identity-document verification (the firm's legal representative)

    async def create_identity_verification(
        self,
        *,
        first_name: str,
        last_name: str,
        document_type: IdentityDocumentType | None,
        file: tuple[str, bytes, str],
        additional_file: tuple[str, bytes, str] | None = None,
    ) -> IdentityVerification:
        data = {"first_name": first_name, "last_name": last_name}
        if document_type:  # a driving licence has no YouSign type: sent without one
            data["type"] = document_type
        files = {"file": file}
        if additional_file:
            files["additional_file"] = additional_file
        response = await self._request("POST", "verifications/identity_documents", data=data, files=files)
        return IdentityVerification.model_validate(response.json())

    async def get_identity_verification(self, verification_id: str) -> IdentityVerification:
        response = await self._request("GET", f"verifications/identity_documents/{verification_id}")
        return IdentityVerification.model_validate(response.json())


def _pdf_of(response: httpx.Response, what: str) -> bytes:
    if not response.content.startswith(b"%PDF-"):
        kind = response.headers.get("content-type", "unknown type")
        message = f"{what} came as {kind}, not a PDF"
        raise YouSignFinalError(message, status=response.status_code, error_type="not_a_pdf", detail=message)
    return response.content


def retry_after_seconds(error: YouSignRetryableError) -> int | None:
    """Whole seconds YouSign asked to wait (never less than one); None if it did not say."""
    return None if error.retry_after is None else max(1, math.ceil(error.retry_after))
