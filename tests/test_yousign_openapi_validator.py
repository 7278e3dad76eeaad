"""The YouSign OpenAPI request validator (tests/support/yousign_openapi.py) on hand-built requests.

No server: each request is a RecordedRequest-like object as the emulator records it. Valid requests
cover every operation the YouSign client uses; invalid ones must be rejected with a message that
names the operation and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.yousign_openapi import (
    ENV_SPEC_PATH,
    REPO_ROOT,
    SPEC_FILENAME,
    ContractViolation,
    SimpleRequest,
    YousignOpenApi,
    default_spec_path,
)

SR_ID = "6f7001fc-0000-4000-8000-000000000001"
DOC_ID = "9b6ed2f3-244f-487a-baa1-bbe4f51c8748"
SIGNER_ID = "550e8402-e29b-41d4-a716-446655440000"
IDV_ID = "a08d2986-2b7f-439c-9f10-d8d65b06bb9d"
AUTH = {"Authorization": "Bearer test-api-key"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n\x00\xff"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))


@dataclass
class RecordedRequest:
    """Same shape as the emulator's record (duplicated on purpose: the validator is duck-typed)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = field(default=b"")


def json_request(method: str, path: str, payload: Any = None, query: str = "") -> RecordedRequest:
    headers = dict(AUTH)
    body = b""
    if payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    return RecordedRequest(method, "/v3" + path, query, headers, body)


def get(path: str, query: str = "") -> RecordedRequest:
    return RecordedRequest("GET", "/v3" + path, query, {**AUTH, "Accept": "application/json"}, b"")


def multipart_request(path: str, files: dict[str, Any], data: dict[str, Any]) -> RecordedRequest:
    """Encoded exactly as httpx (the client's HTTP library) sends it."""
    request = httpx.Request("POST", "https://api-sandbox.yousign.app/v3" + path, files=files, data=data)
    body = request.read()
    return RecordedRequest(
        "POST", "/v3" + path, "", {**AUTH, "Content-Type": request.headers["Content-Type"]}, body
    )


def raw_multipart(path: str, parts: list[tuple[str, str | None, bytes]]) -> RecordedRequest:
    """Hand-encoded multipart/form-data: (name, filename or None, content)."""
    boundary = "test-boundary-7f3a"
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
        )
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return RecordedRequest("POST", "/v3" + path, "", headers, body)


def create_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Mandat facturation électronique - ACME SAS",
        "delivery_mode": "email",
        "external_id": "mandate-1",
        "expiration_date": "2027-01-04",
        "signers_allowed_to_decline": True,
        "audit_trail_locale": "fr",
        "timezone": "Europe/Paris",
    }
    body.update(overrides)
    return body


def signer_body(**info_overrides: Any) -> dict[str, Any]:
    info = {"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne.martin@acme.fr", "locale": "fr"}
    info.update(info_overrides)
    return {
        "info": info,
        "signature_level": "electronic_signature",
        "signature_authentication_mode": "no_otp",
        "fields": [
            {
                "document_id": DOC_ID,
                "type": "signature",
                "page": 1,
                "x": 77,
                "y": 581,
                "width": 180,
                "height": 60,
            }
        ],
    }


def document_upload(**data: Any) -> RecordedRequest:
    return multipart_request(
        f"/signature_requests/{SR_ID}/documents",
        {"file": ("mandate.pdf", PDF, "application/pdf")},
        data if data else {"nature": "signable_document"},
    )


def identity_upload(**data: Any) -> RecordedRequest:
    fields = {"first_name": "Jeanne", "last_name": "Martin", "type": "id_card", **data}
    return multipart_request(
        "/verifications/identity_documents",
        {"file": ("recto.jpg", JPEG, "image/jpeg"), "additional_file": ("verso.jpg", JPEG, "image/jpeg")},
        fields,
    )


@pytest.fixture(scope="module")
def api() -> YousignOpenApi:
    return YousignOpenApi.load(default_spec_path())


# ------------------------------------------------------------------------------------------------
# Valid requests: one per operation the client uses (plus encoding variants)

VALID = {
    "create_signature_request": (
        json_request("POST", "/signature_requests", create_body()),
        "post-signature_requests",
    ),
    "create_signature_request_with_reminders": (
        json_request(
            "POST",
            "/signature_requests",
            create_body(
                reminder_settings={"interval_in_days": 2, "max_occurrences": 3}, ordered_signers=False
            ),
        ),
        "post-signature_requests",
    ),
    "list_by_external_id_encoded": (
        get("/signature_requests", "external_id%5Beq%5D=mandate-1"),
        "get-signature_requests",
    ),
    "list_by_external_id_raw_brackets": (
        get("/signature_requests", "external_id[eq]=mandate-1&limit=1"),
        "get-signature_requests",
    ),
    "list_with_filters": (
        get(
            "/signature_requests",
            urlencode(
                {
                    "status[in]": "draft,ongoing",
                    "source[eq]": "public_api",
                    "created_at[between]": "2026-01-01,2026-01-31",
                    "after": "cursor-abc",
                    "limit": "100",
                }
            ),
        ),
        "get-signature_requests",
    ),
    "get_signature_request": (
        get(f"/signature_requests/{SR_ID}"),
        "get-signature_requests-signatureRequestId",
    ),
    "upload_document": (document_upload(), "post-signature_requests-signatureRequestId-documents"),
    "upload_document_all_form_fields": (
        document_upload(nature="signable_document", parse_anchors="false", name="Mandat ACME"),
        "post-signature_requests-signatureRequestId-documents",
    ),
    "add_signer": (
        json_request("POST", f"/signature_requests/{SR_ID}/signers", signer_body()),
        "post-signature_requests-signatureRequestId-signers",
    ),
    "add_signer_with_nullable_fields": (
        json_request(
            "POST",
            f"/signature_requests/{SR_ID}/signers",
            {**signer_body(phone_number=None), "delivery_mode": None, "redirect_urls": {"success": None}},
        ),
        "post-signature_requests-signatureRequestId-signers",
    ),
    "activate_without_body": (
        json_request("POST", f"/signature_requests/{SR_ID}/activate"),
        "post-signature_requests-signatureRequestId-activate",
    ),
    "activate_with_empty_json": (
        json_request("POST", f"/signature_requests/{SR_ID}/activate", {}),
        "post-signature_requests-signatureRequestId-activate",
    ),
    "cancel": (
        json_request("POST", f"/signature_requests/{SR_ID}/cancel", {"reason": "contractualization_aborted"}),
        "post-signature_requests-signatureRequestId-cancel",
    ),
    "send_reminder": (
        json_request("POST", f"/signature_requests/{SR_ID}/signers/{SIGNER_ID}/send_reminder"),
        "post-signature_requests-signatureRequestId-signers-signerId-send_reminder",
    ),
    "download_completed_documents": (
        get(f"/signature_requests/{SR_ID}/documents/download", "version=completed"),
        "get-signature_requests-signatureRequestId-documents-download",
    ),
    "download_audit_trail": (
        get(f"/signature_requests/{SR_ID}/audit_trails/download"),
        "get-signature_requests-signatureRequestId-audit_trails-download",
    ),
    "create_identity_document_verification": (identity_upload(), "post-verifications-identity_documents"),
    "get_identity_document_verification": (
        get(f"/verifications/identity_documents/{IDV_ID}"),
        "get-verifications-identity_documents-id",
    ),
}


@pytest.mark.parametrize(("request_", "operation_id"), list(VALID.values()), ids=list(VALID))
def test_valid_request_passes(api: YousignOpenApi, request_: RecordedRequest, operation_id: str) -> None:
    report = api.check(request_)
    assert report.violations == []
    assert report.operation is not None and report.operation.operation_id == operation_id
    api.validate(request_)  # does not raise


# ------------------------------------------------------------------------------------------------
# Invalid requests: rejected, and the message names the operation and the problem

INVALID = {
    "unknown_path": (
        json_request("POST", "/signature_request", create_body()),
        None,
        ["unknown path '/signature_request'"],
    ),
    "missing_v3_prefix": (
        RecordedRequest("GET", f"/signature_requests/{SR_ID}", "", dict(AUTH)),
        None,
        ["does not start with the API base path '/v3'"],
    ),
    "method_not_defined": (
        json_request("PUT", f"/signature_requests/{SR_ID}", create_body()),
        None,
        [
            "method PUT is not defined for '/signature_requests/{signatureRequestId}'",
            "allowed: DELETE, GET, PATCH",
        ],
    ),
    "bad_delivery_mode_enum": (
        json_request("POST", "/signature_requests", create_body(delivery_mode="sms")),
        "post-signature_requests",
        ["body.delivery_mode", "'sms' is not one of ['none', 'email']", "[enum]"],
    ),
    "missing_name": (
        json_request("POST", "/signature_requests", {k: v for k, v in create_body().items() if k != "name"}),
        "post-signature_requests",
        ["closest is 'New Signature Request From Scratch'", "missing required property 'name'"],
    ),
    "extra_key_top_level": (
        json_request("POST", "/signature_requests", create_body(mandate_kind="einvoicing")),
        "post-signature_requests",
        [
            "Additional properties are not allowed ('mandate_kind' was unexpected)",
            "additionalProperties: false",
        ],
    ),
    "extra_key_in_reminder_settings": (
        json_request(
            "POST",
            "/signature_requests",
            create_body(reminder_settings={"interval_in_days": 2, "max_occurrences": 3, "every": "week"}),
        ),
        "post-signature_requests",
        ["body.reminder_settings", "('every' was unexpected)"],
    ),
    "bad_expiration_date_format": (
        json_request("POST", "/signature_requests", create_body(expiration_date="04/01/2027")),
        "post-signature_requests",
        ["body.expiration_date", "'04/01/2027'"],
    ),
    "bad_external_id_pattern": (
        json_request("POST", "/signature_requests", create_body(external_id="mandate 1")),
        "post-signature_requests",
        ["body.external_id", "does not match"],
    ),
    "empty_create_body": (
        json_request("POST", "/signature_requests"),
        "post-signature_requests",
        ["request body is missing", "missing required property 'name'"],
    ),
    "bad_cancel_reason": (
        json_request("POST", f"/signature_requests/{SR_ID}/cancel", {"reason": "changed_my_mind"}),
        "post-signature_requests-signatureRequestId-cancel",
        [
            "body.reason",
            "'changed_my_mind' is not one of ['contractualization_aborted', 'errors_in_document', 'other']",
        ],
    ),
    "cancel_body_not_json": (
        RecordedRequest(
            "POST",
            f"/v3/signature_requests/{SR_ID}/cancel",
            "",
            {**AUTH, "Content-Type": "application/json"},
            b"reason=other",
        ),
        "post-signature_requests-signatureRequestId-cancel",
        ["body is not valid JSON"],
    ),
    "non_uuid_signature_request_id": (
        get("/signature_requests/mandate-1"),
        "get-signature_requests-signatureRequestId",
        ["path parameter 'signatureRequestId'", "'mandate-1' is not a 'uuid'"],
    ),
    "non_uuid_signer_id": (
        json_request("POST", f"/signature_requests/{SR_ID}/signers/42/send_reminder"),
        "post-signature_requests-signatureRequestId-signers-signerId-send_reminder",
        ["path parameter 'signerId'", "'42' is not a 'uuid'"],
    ),
    "multipart_without_nature": (
        multipart_request(
            f"/signature_requests/{SR_ID}/documents", {"file": ("mandate.pdf", PDF, "application/pdf")}, {}
        ),
        "post-signature_requests-signatureRequestId-documents",
        ["body: missing required property 'nature'"],
    ),
    "multipart_bad_nature": (
        document_upload(nature="contract"),
        "post-signature_requests-signatureRequestId-documents",
        ["body.nature", "'contract' is not one of ['attachment', 'signable_document']"],
    ),
    "multipart_bad_boolean": (
        document_upload(nature="signable_document", parse_anchors="False"),
        "post-signature_requests-signatureRequestId-documents",
        ["body.parse_anchors", "'False' is not of type 'boolean'"],
    ),
    "multipart_file_as_plain_field": (
        raw_multipart(
            f"/signature_requests/{SR_ID}/documents",
            [("file", None, b"JVBERi0xLjQ="), ("nature", None, b"signable_document")],
        ),
        "post-signature_requests-signatureRequestId-documents",
        ["multipart field 'file' is binary in the schema but sent without a filename"],
    ),
    "signer_locale_xx": (
        json_request("POST", f"/signature_requests/{SR_ID}/signers", signer_body(locale="xx")),
        "post-signature_requests-signatureRequestId-signers",
        ["closest is 'New Signer From Scratch'", "body.info.locale", "'xx' is not one of"],
    ),
    "signer_bad_field": (
        json_request(
            "POST",
            f"/signature_requests/{SR_ID}/signers",
            {
                **signer_body(),
                "fields": [{"document_id": DOC_ID, "type": "signature", "page": 0, "x": 1, "y": 1}],
            },
        ),
        "post-signature_requests-signatureRequestId-signers",
        ["variants of FieldsInput", "closest is 'Signature'", "body.fields[0].page", "minimum of 1"],
    ),
    "signer_bad_signature_level": (
        json_request(
            "POST", f"/signature_requests/{SR_ID}/signers", {**signer_body(), "signature_level": "simple"}
        ),
        "post-signature_requests-signatureRequestId-signers",
        ["body.signature_level", "'simple' is not one of"],
    ),
    "signer_sent_as_form": (
        RecordedRequest(
            "POST",
            f"/v3/signature_requests/{SR_ID}/signers",
            "",
            {**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
            b"signature_level=electronic_signature",
        ),
        "post-signature_requests-signatureRequestId-signers",
        ["Content-Type 'application/x-www-form-urlencoded' is not accepted", "application/json"],
    ),
    "identity_extra_multipart_field": (
        identity_upload(nickname="Jeannot"),
        "post-verifications-identity_documents",
        ["variants of post_verifications_identity_documents_request", "('nickname' was unexpected)"],
    ),
    "identity_bad_type": (
        identity_upload(type="driving_licence"),
        "post-verifications-identity_documents",
        ["body.type", "'driving_licence' is not one of"],
    ),
    "body_on_get": (
        RecordedRequest(
            "GET", f"/v3/signature_requests/{SR_ID}", "", {**AUTH, "Content-Type": "application/json"}, b"{}"
        ),
        "get-signature_requests-signatureRequestId",
        ["the operation takes no request body"],
    ),
    "missing_authorization": (
        RecordedRequest("GET", f"/v3/signature_requests/{SR_ID}", "", {}),
        "get-signature_requests-signatureRequestId",
        ["security: missing 'Authorization: Bearer <token>' header (bearerAuth)"],
    ),
    "unknown_query_parameter": (
        get("/signature_requests", "external_id[eq]=mandate-1&page=2"),
        "get-signature_requests",
        ["unknown query parameter 'page'"],
    ),
    "external_id_without_operator": (
        get("/signature_requests", "external_id=mandate-1"),
        "get-signature_requests",
        ["deepObject filter", "external_id[<operator>]"],
    ),
    "external_id_operator_not_allowed": (
        get("/signature_requests", "external_id[in]=mandate-1,mandate-2"),
        "get-signature_requests",
        ["operator 'in' (external_id[in]) is not allowed", "allows eq"],
    ),
    "limit_out_of_range": (
        get("/signature_requests", "limit=0"),
        "get-signature_requests",
        ["query parameter 'limit'", "less than the minimum of 1"],
    ),
    "date_filter_between_one_date": (
        get("/signature_requests", "created_at[between]=2026-01-01"),
        "get-signature_requests",
        ["created_at[between] needs two comma-separated dates"],
    ),
    "bad_download_version": (
        get(f"/signature_requests/{SR_ID}/documents/download", "version=signed"),
        "get-signature_requests-signatureRequestId-documents-download",
        ["query parameter 'version'", "'signed' is not one of ['current', 'completed']"],
    ),
}


@pytest.mark.parametrize(("request_", "operation_id", "expected"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_request_is_rejected(
    api: YousignOpenApi, request_: RecordedRequest, operation_id: str | None, expected: list[str]
) -> None:
    with pytest.raises(AssertionError) as caught:
        api.validate(request_)
    error = caught.value
    assert isinstance(error, ContractViolation)
    message = str(error)
    assert error.violations, message
    if operation_id is None:
        assert error.operation is None
        assert "no matching operation" in message
    else:
        assert error.operation is not None and error.operation.operation_id == operation_id
        assert operation_id in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


# ------------------------------------------------------------------------------------------------
# API details


def test_message_names_request_operation_and_every_violation(api: YousignOpenApi) -> None:
    request = json_request(
        "POST", "/signature_requests/not-a-uuid/cancel", {"reason": "nope", "note": "x"}, query="force=1"
    )
    with pytest.raises(ContractViolation) as caught:
        api.validate(request)
    message = str(caught.value)
    assert message.startswith(
        "POST /v3/signature_requests/not-a-uuid/cancel?force=1 -> "
        "post-signature_requests-signatureRequestId-cancel "
        "(POST /signature_requests/{signatureRequestId}/cancel)"
    )
    assert len(caught.value.violations) == 3, message  # path id, unknown query parameter, reason enum
    # The cancel schema does not forbid extra keys, so "note" is not a violation.
    assert "note" not in message


def test_accepts_any_object_with_the_attributes(api: YousignOpenApi) -> None:
    namespace = SimpleNamespace(
        method="get",
        path=f"/v3/signature_requests/{SR_ID}",
        query=b"",
        headers={"authorization": "Bearer k"},
        body=None,
    )
    api.validate(namespace)
    api.validate(SimpleRequest("POST", f"/v3/signature_requests/{SR_ID}/activate", headers=dict(AUTH)))


def test_from_httpx_request(api: YousignOpenApi) -> None:
    request = httpx.Request(
        "GET",
        "https://api-sandbox.yousign.app/v3/signature_requests",
        params={"external_id[eq]": "mandate-1", "limit": 1},
        headers=AUTH,
    )
    recorded = SimpleRequest.from_httpx(request)
    assert recorded.path == "/v3/signature_requests"
    assert recorded.query == "external_id%5Beq%5D=mandate-1&limit=1"
    api.validate(recorded)


def test_require_auth_can_be_disabled(api: YousignOpenApi) -> None:
    request = RecordedRequest("GET", f"/v3/signature_requests/{SR_ID}", "", {})
    api.validate(request, require_auth=False)


def test_validate_all_reports_every_failing_request(api: YousignOpenApi) -> None:
    good, _ = VALID["cancel"]
    bad, _, _ = INVALID["bad_cancel_reason"]
    assert api.validate_all([good, good]) == 2
    with pytest.raises(AssertionError, match=r"1 of 3 YouSign requests violate") as caught:
        api.validate_all([good, bad, good])
    assert "'changed_my_mind'" in str(caught.value)


def test_concrete_path_wins_over_template(api: YousignOpenApi) -> None:
    download = api.find_operation("GET", f"/v3/signature_requests/{SR_ID}/documents/download")
    assert download.path_template == "/signature_requests/{signatureRequestId}/documents/download"
    one = api.find_operation("GET", f"/v3/signature_requests/{SR_ID}/documents/{DOC_ID}")
    assert one.path_template == "/signature_requests/{signatureRequestId}/documents/{documentId}"
    with pytest.raises(ContractViolation, match="unknown path"):
        api.find_operation("GET", "/v3/nope")


def test_documented_spec_interpretation(api: YousignOpenApi) -> None:
    # CreateSignatureRequest is "additionalProperties: false" + oneOf without own properties; read
    # literally it forbids every key (openapi-core rejects every valid body). If YouSign changes the
    # document, this tells us to revisit the interpretation.
    assert api.rewritten_schemas == ("#/components/schemas/CreateSignatureRequest",)
    assert api.base_paths == ("/v3",)
    assert len(api.operations()) > 100


def test_cache_round_trip(tmp_path: Path) -> None:
    cold = YousignOpenApi.load(default_spec_path(), cache_dir=tmp_path, memory_cache=False)
    assert cold.load_info.source == "yaml"
    assert cold.load_info.cache_file is not None and cold.load_info.cache_file.is_file()
    warm = YousignOpenApi.load(default_spec_path(), cache_dir=tmp_path, memory_cache=False)
    assert warm.load_info.source == "cache"
    assert warm.spec == cold.spec
    request, _ = VALID["add_signer"]
    warm.validate(request)
    cold.validate(request)


TINY_SPEC = """
openapi: 3.0.0
info: {title: tiny, version: '1'}
servers: [{url: 'https://example.test/v3'}]
paths:
  /things/{thingId}:
    post:
      operationId: post-thing
      parameters:
        - {in: path, name: thingId, required: true, schema: {type: string, format: uuid}}
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [size], properties: {size: {type: integer, minimum: 1}}}
      responses: {'201': {description: created}}
"""


def test_other_documents_and_corrupt_cache(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yml"
    spec.write_text(TINY_SPEC)
    cache = tmp_path / "cache"
    first = YousignOpenApi.load(spec, cache_dir=cache, memory_cache=False)
    assert first.load_info.source == "yaml"
    assert first.load_info.cache_file is not None
    first.load_info.cache_file.write_text("{not json")
    again = YousignOpenApi.load(spec, cache_dir=cache, memory_cache=False)
    assert again.load_info.source == "yaml"  # the corrupt cache file was ignored (and rewritten)
    assert YousignOpenApi.load(spec, cache_dir=cache, memory_cache=False).load_info.source == "cache"
    request = RecordedRequest(
        "POST", f"/v3/things/{SR_ID}", "", {"Content-Type": "application/json"}, b'{"size": 0}'
    )
    with pytest.raises(ContractViolation, match=r"body.size: 0 is less than the minimum of 1"):
        again.validate(request)


def test_default_spec_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_SPEC_PATH, raising=False)
    assert default_spec_path() == REPO_ROOT.parent / "shared" / "reference" / SPEC_FILENAME
    monkeypatch.setenv(ENV_SPEC_PATH, str(tmp_path / "spec.yml"))
    assert default_spec_path() == tmp_path / "spec.yml"
    with pytest.raises(FileNotFoundError, match=ENV_SPEC_PATH):
        YousignOpenApi.load()
