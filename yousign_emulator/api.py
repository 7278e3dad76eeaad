"""The /v3 routes (YouSign's paths, status codes and bodies). Auth, limits and faults are in gateway.py."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import downloads, kyc, lifecycle, serializers, signing
from .errors import ApiError, invalid
from .models import SignatureRequest
from .state import EmulatorState
from .uploads import parse_document_upload, parse_identity_upload
from .validation import (
    DayRange,
    encode_cursor,
    parse_list_query,
    validate_cancel,
    validate_create_signature_request,
    validate_create_signer,
    validate_update_signature_request,
)


async def _json_body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise invalid("body", "The request body must be a JSON object.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid("body", f"Malformed JSON: {exc}") from exc


def sr_day(sr: SignatureRequest, field: str) -> date | None:
    """The UTC day of one of the request's dates, as the list's date filters compare it."""
    if field == "declined_at":
        declined = (sr.decline_information or {}).get("declined_at")
        instant = datetime.fromisoformat(declined) if declined else None
    else:
        instant = getattr(sr, field)
    return instant.astimezone(UTC).date() if instant else None


def _on_days(day: date | None, ranges: list[DayRange]) -> bool:
    return day is not None and all(first <= day <= last for first, last in ranges)


def _bool_param(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid(name, "This value should be of type bool.")
    return value in ("true", "1")


def _file(download: downloads.Download) -> Response:
    disposition = f'attachment; filename="{download.filename}"'
    return Response(
        download.content, media_type=download.media_type, headers={"Content-Disposition": disposition}
    )


class V3Routes:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # ---- signature requests ----
    async def create_signature_request(self, request: Request) -> Response:
        payload = validate_create_signature_request(await _json_body(request))
        sr = lifecycle.create_signature_request(self.state, payload)
        return JSONResponse(self.state.sr_json(sr), status_code=201)

    async def list_signature_requests(self, request: Request) -> Response:
        query = parse_list_query(list(request.query_params.multi_items()))
        self.state.sweep_expired()
        items = [
            sr
            for sr in reversed(self.state.signature_requests.values())  # newest first
            if (query.statuses is None and sr.status != "deleted")
            or (query.statuses and sr.status in query.statuses)
            if query.external_id is None or sr.external_id == query.external_id
            if all(_on_days(sr_day(sr, field), ranges) for field, ranges in query.dates.items())
        ]
        if query.after is not None:
            ids = [sr.id for sr in items]
            if query.after not in ids:
                raise invalid("after", "This cursor is not valid.")
            items = items[ids.index(query.after) + 1 :]
        page = items[: query.limit]
        next_cursor = encode_cursor(page[-1].id) if len(items) > query.limit else None
        data = [self.state.sr_json(sr) for sr in page]
        for item in data:  # SignatureRequestInList has no email_notification / decline / rejection details
            for key in ("email_notification", "decline_information", "rejection_information"):
                item.pop(key, None)
        return JSONResponse({"meta": {"next_cursor": next_cursor}, "data": data})

    async def get_signature_request(self, request: Request) -> Response:
        return JSONResponse(self.state.sr_json(self.state.signature_request(request.path_params["sr_id"])))

    async def update_signature_request(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        lifecycle.require_status(sr, ("draft",), "update it")  # after activation: not confirmed, refused
        for field, value in validate_update_signature_request(await _json_body(request), sr.timezone).items():
            setattr(sr, field, value)
        return JSONResponse(self.state.sr_json(sr))

    async def delete_signature_request(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        lifecycle.delete(self.state, sr, _bool_param(request, "permanent_delete"))
        return Response(status_code=204)

    async def activate(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        await _json_body(request, optional=True)  # {"sender_id"} is accepted and ignored
        signing.activate(self.state, sr)
        return JSONResponse(self.state.sr_activated_json(sr), status_code=201)

    async def cancel(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        payload = validate_cancel(await _json_body(request))
        lifecycle.cancel(self.state, sr, payload["reason"], payload["custom_note"])
        return JSONResponse(self.state.sr_json(sr), status_code=201)

    # ---- documents ----
    async def add_document(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        lifecycle.require_status(sr, ("draft",), "add a document")  # status errors win over body errors
        upload = await parse_document_upload(request)
        document = lifecycle.add_document(self.state, sr, upload)
        return JSONResponse(serializers.document(document), status_code=201)

    async def list_documents(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        nature = request.query_params.get("nature[eq]")
        docs = [d for d in self.state.sr_documents(sr).values() if nature is None or d.nature == nature]
        return JSONResponse([serializers.document(d, signed=sr.status == "done") for d in docs])

    async def get_document(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        document = self.state.sr_documents(sr).get(request.path_params["document_id"])
        if document is None:
            raise ApiError(404, "resource.not_found", "The document was not found.")
        return JSONResponse(serializers.document(document, signed=sr.status == "done"))

    async def download_documents(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        version = request.query_params.get("version")
        if version not in (None, "current", "completed"):
            raise invalid("version", 'Value must be in ["current", "completed"].')
        return _file(downloads.documents(self.state, sr, version, _bool_param(request, "archive")))

    async def download_document(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        return _file(downloads.document(self.state, sr, request.path_params["document_id"]))

    # ---- signers ----
    async def add_signer(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        lifecycle.require_status(sr, ("draft",), "add a signer")  # status errors win over body errors
        payload = validate_create_signer(await _json_body(request), self.state.sr_documents(sr))
        signer = lifecycle.add_signer(self.state, sr, payload)
        return JSONResponse(serializers.signer(signer), status_code=201)

    async def list_signers(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        return JSONResponse([serializers.signer(s) for s in self.state.sr_signers(sr)])

    async def get_signer(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        return JSONResponse(serializers.signer(self.state.signer_of(sr, request.path_params["signer_id"])))

    async def send_reminder(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        signer = self.state.signer_of(sr, request.path_params["signer_id"])
        signing.remind(self.state, sr, signer)
        return Response(status_code=201)

    # ---- audit trails ----
    async def audit_trails(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        return _file(downloads.audit_trails(self.state, sr, _bool_param(request, "merge")))

    async def signer_audit_trail(self, request: Request) -> Response:
        sr = self.state.signature_request(request.path_params["sr_id"])
        signer = self.state.signer_of(sr, request.path_params["signer_id"])
        return _file(downloads.signer_audit_trail(self.state, sr, signer))

    # ---- identity documents (KYC) ----
    async def create_identity_document(self, request: Request) -> Response:
        verification = kyc.create(self.state, await parse_identity_upload(request))
        return JSONResponse(serializers.identity_document_full(verification), status_code=201)

    async def get_identity_document(self, request: Request) -> Response:
        verification = self.state.identity_document(request.path_params["verification_id"])
        return JSONResponse(serializers.identity_document_full(verification))

    async def list_identity_documents(self, request: Request) -> Response:
        status = request.query_params.get("status[eq]")
        items = [v for v in reversed(self.state.identity_documents.values()) if status in (None, v.status)]
        query = parse_list_query(
            [(k, v) for k, v in request.query_params.multi_items() if k in ("limit", "after")]
        )
        if query.after is not None:
            ids = [v.id for v in items]
            items = items[ids.index(query.after) + 1 :] if query.after in ids else []
        page = items[: query.limit]
        next_cursor = encode_cursor(page[-1].id) if len(items) > query.limit else None
        data = [serializers.identity_document_meta(v) for v in page]
        return JSONResponse({"meta": {"next_cursor": next_cursor}, "data": data})


def _routes(r: V3Routes) -> list[Route]:
    sr = "/v3/signature_requests/{sr_id}"
    return [
        Route("/v3/signature_requests", r.create_signature_request, methods=["POST"]),
        Route("/v3/signature_requests", r.list_signature_requests, methods=["GET"]),
        Route(sr, r.get_signature_request, methods=["GET"]),
        Route(sr, r.update_signature_request, methods=["PATCH"]),
        Route(sr, r.delete_signature_request, methods=["DELETE"]),
        Route(sr + "/activate", r.activate, methods=["POST"]),
        Route(sr + "/cancel", r.cancel, methods=["POST"]),
        Route(sr + "/documents", r.add_document, methods=["POST"]),
        Route(sr + "/documents", r.list_documents, methods=["GET"]),
        Route(sr + "/documents/download", r.download_documents, methods=["GET"]),
        Route(sr + "/documents/{document_id}", r.get_document, methods=["GET"]),
        Route(sr + "/documents/{document_id}/download", r.download_document, methods=["GET"]),
        Route(sr + "/signers", r.add_signer, methods=["POST"]),
        Route(sr + "/signers", r.list_signers, methods=["GET"]),
        Route(sr + "/signers/{signer_id}", r.get_signer, methods=["GET"]),
        Route(sr + "/signers/{signer_id}/send_reminder", r.send_reminder, methods=["POST"]),
        Route(sr + "/signers/{signer_id}/audit_trails/download", r.signer_audit_trail, methods=["GET"]),
        Route(sr + "/audit_trails/download", r.audit_trails, methods=["GET"]),
        Route("/v3/verifications/identity_documents", r.create_identity_document, methods=["POST"]),
        Route("/v3/verifications/identity_documents", r.list_identity_documents, methods=["GET"]),
        Route(
            "/v3/verifications/identity_documents/{verification_id}", r.get_identity_document, methods=["GET"]
        ),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return JSONResponse({"message": "Method Not Allowed"}, status_code=405, headers=exc.headers)
    if exc.status_code == 404:
        return JSONResponse({"type": "resource.not_found", "detail": "Resource not found."}, status_code=404)
    return JSONResponse({"type": "bad_request", "detail": str(exc.detail)}, status_code=exc.status_code)


def build_v3_app(state: EmulatorState) -> Starlette:
    return Starlette(
        routes=_routes(V3Routes(state)),
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
