"""Every JSON answer of the emulator (and the webhook nodes) validates against YouSign's own OpenAPI."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from PIL import Image

from tests.helpers import eventually
from tests.support.yousign_openapi import default_spec_path
from yousign_emulator import sample_pdf

SPEC = default_spec_path()
SR = "/signature_requests/{signatureRequestId}"
pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="YouSign OpenAPI document not available")


@cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC.read_text(), Loader=loader)


def _resolve(node: Any, seen: tuple[str, ...] = ()) -> Any:
    """Inline $refs; and read `nullable: true` next to enum/allOf as "or null" (the OAS 3.0 intent)."""
    if isinstance(node, list):
        return [_resolve(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        if node["$ref"] in seen:
            return {}
        target: Any = _spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(target, (*seen, node["$ref"]))
    resolved = {key: _resolve(value, seen) for key, value in node.items()}
    if resolved.get("nullable") and ("enum" in resolved or "allOf" in resolved):
        inner = {k: v for k, v in resolved.items() if k != "nullable"}
        return {"anyOf": [inner, {"enum": [None]}]}
    return resolved


def _check(template: str, method: str, response: httpx.Response) -> None:
    declared = _spec()["paths"][template][method]["responses"][str(response.status_code)]
    declared = _resolve(declared)
    for header in declared.get("headers", {}):
        assert header.lower() in response.headers, (template, response.status_code, header)
    schema = declared.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        errors = [
            f"{list(e.absolute_path)}: {e.message[:160]}"
            for e in OAS30Validator(schema).iter_errors(response.json())
        ]
        assert errors == [], (template, method, response.status_code, errors)


def _check_schema(name: str, value: Any) -> None:
    schema = _resolve(_spec()["components"]["schemas"][name])
    assert [e.message for e in OAS30Validator(schema).iter_errors(value)] == []


async def test_responses_and_webhook_nodes_match_the_openapi(emu, api):
    reminders = {"interval_in_days": 2, "max_occurrences": 3}
    body = {
        "name": "M",
        "delivery_mode": "email",
        "signers_allowed_to_decline": True,
        "reminder_settings": reminders,
    }
    r = await api.post("/signature_requests", json=body)
    _check("/signature_requests", "post", r)
    sr = r.json()["id"]
    _check("/signature_requests", "post", await api.post("/signature_requests", json={"name": ""}))
    files = {"file": ("m.pdf", sample_pdf(), "application/pdf")}
    r = await api.post(
        f"/signature_requests/{sr}/documents", files=files, data={"nature": "signable_document"}
    )
    _check(SR + "/documents", "post", r)
    document = r.json()["id"]
    _check(SR + "/documents", "get", await api.get(f"/signature_requests/{sr}/documents"))
    signer_body = {
        "info": {"first_name": "Jeanne", "last_name": "Martin", "email": "j@client.fr", "locale": "fr"},
        "signature_level": "electronic_signature",
        "fields": [{"document_id": document, "type": "signature", "page": 1, "x": 10, "y": 10}],
    }
    r = await api.post(f"/signature_requests/{sr}/signers", json=signer_body)
    _check(SR + "/signers", "post", r)
    signer = r.json()["id"]
    _check(SR + "/activate", "post", await api.post(f"/signature_requests/{sr}/activate"))
    _check(SR + "/activate", "post", await api.post(f"/signature_requests/{sr}/activate"))  # 400
    _check(SR + "/signers", "get", await api.get(f"/signature_requests/{sr}/signers"))
    _check(SR, "get", await api.get(f"/signature_requests/{sr}"))
    _check("/signature_requests", "get", await api.get("/signature_requests"))
    emu.state.sign_signer(signer)
    _check(SR + "/signers/{signerId}", "get", await api.get(f"/signature_requests/{sr}/signers/{signer}"))
    _check(SR, "get", await api.get(f"/signature_requests/{sr}"))
    _check(SR, "get", await api.get("/signature_requests/9a93d3b5-fb3b-4abf-9e70-26315b33506c"))  # 404
    _check(
        SR + "/cancel", "post", await api.post(f"/signature_requests/{sr}/cancel", json={"reason": "other"})
    )

    png = io.BytesIO()
    Image.new("RGB", (640, 480)).save(png, "PNG")
    r = await api.post("/verifications/identity_documents", files={"file": ("id.png", png.getvalue())})
    _check("/verifications/identity_documents", "post", r)

    async def verified():
        return "verification.identity_document.done" in {e.event_name for e in emu.state.webhook_events}

    await eventually(verified, within=5)
    verification = "/verifications/identity_documents/{identityDocumentVerificationId}"
    _check(verification, "get", await api.get(f"/verifications/identity_documents/{r.json()['id']}"))
    _check("/verifications/identity_documents", "get", await api.get("/verifications/identity_documents"))

    for event in emu.state.webhook_events:
        data = event.payload["data"]
        if "signature_request" in data:
            _check_schema("SignatureRequest", data["signature_request"])
        if "signer" in data:
            _check_schema("Signer", data["signer"])
    assert {e.event_name for e in emu.state.webhook_events} >= {
        "signer.done",
        "verification.identity_document.done",
    }
