"""Authentication, 404/405, validation errors and state-machine violations, with YouSign's bodies."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.emulator.flows import add_signer, create_draft, ongoing, ready_draft, signer_body, upload
from yousign_emulator import ApiError


def _names(response: httpx.Response) -> list[str]:
    body = response.json()
    assert response.status_code == 400, body
    assert body["type"] == "validation.error"
    assert body["detail"] == "You have some invalid params in your payload."
    return [p["name"] for p in body["invalid_params"]]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic test-key"}]
)
async def test_401_without_the_right_bearer_key(emu, headers):
    async with httpx.AsyncClient(base_url=emu.api_base_url, headers=headers, trust_env=False) as client:
        response = await client.get("/signature_requests")
    assert response.status_code == 401
    assert response.json()["type"] == "unauthorized" and response.json()["detail"]
    assert "x-ratelimit-remaining-minute" in response.headers
    assert emu.state.accepted_requests == []  # refused before the rate limiter


async def test_404_and_405(api):
    missing = await api.get("/signature_requests/5b3f3f8e-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["type"] == "resource.not_found"
    assert (await api.get("/no_such_route")).json()["type"] == "resource.not_found"
    sr = await create_draft(api)
    unknown_signer = await api.get(
        f"/signature_requests/{sr['id']}/signers/5b3f3f8e-0000-4000-8000-000000000000"
    )
    assert unknown_signer.status_code == 404
    not_allowed = await api.put("/signature_requests")
    assert not_allowed.status_code == 405 and "message" in not_allowed.json()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ["name", "delivery_mode"]),
        ({"name": "x" * 129, "delivery_mode": "fax"}, ["name", "delivery_mode"]),
        ({"name": "ok", "delivery_mode": "none", "unknown_key": 1}, ["unknown_key"]),
        ({"name": "ok", "delivery_mode": "none", "external_id": "has space"}, ["external_id"]),
        ({"name": "ok", "delivery_mode": "none", "external_id": "x" * 256}, ["external_id"]),
        ({"name": "ok", "delivery_mode": "none", "expiration_date": "2020-01-01"}, ["expiration_date"]),
        ({"name": "ok", "delivery_mode": "none", "expiration_date": "2999-01-01"}, ["expiration_date"]),
        ({"name": "ok", "delivery_mode": "none", "expiration_date": "01/02/2030"}, ["expiration_date"]),
        ({"name": "ok", "delivery_mode": "none", "timezone": "Mars/Olympus"}, ["timezone"]),
        ({"name": "ok", "delivery_mode": "none", "audit_trail_locale": "xx"}, ["audit_trail_locale"]),
        (
            {"name": "ok", "delivery_mode": "none", "signers_allowed_to_decline": "y"},
            ["signers_allowed_to_decline"],
        ),
        (
            {
                "name": "ok",
                "delivery_mode": "none",
                "reminder_settings": {"interval_in_days": 3, "max_occurrences": 0},
            },
            ["reminder_settings.interval_in_days", "reminder_settings.max_occurrences"],
        ),
    ],
)
async def test_signature_request_validation(api, body, expected):
    assert _names(await api.post("/signature_requests", json=body)) == expected


async def test_malformed_json_is_a_400(api):
    response = await api.post(
        "/signature_requests", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert _names(response) == ["body"]


async def test_signer_validation_names_the_fields(api):
    sr = await create_draft(api)
    document = await upload(api, sr["id"], pages=1)
    url = f"/signature_requests/{sr['id']}/signers"
    bad_info = signer_body(document["id"])
    bad_info["info"] = {"first_name": " Jeanne", "last_name": "M@rtin", "email": "nope", "locale": "xx"}
    assert _names(await api.post(url, json=bad_info)) == [
        "info.first_name",
        "info.last_name",
        "info.email",
        "info.locale",
    ]
    assert _names(await api.post(url, json={"info": signer_body(document["id"])["info"]})) == [
        "signature_level"
    ]

    def with_field(**changes):
        body = signer_body(document["id"])
        body["fields"][0].update(changes)
        return body

    assert _names(await api.post(url, json=with_field(page=2))) == ["fields[0].page"]  # 1-page document
    assert _names(await api.post(url, json=with_field(width=20))) == ["fields[0].width"]
    assert _names(await api.post(url, json=with_field(x=550))) == ["fields[0].x"]  # runs off the page
    assert _names(await api.post(url, json=with_field(y=800))) == ["fields[0].y"]
    other = "5b3f3f8e-0000-4000-8000-000000000000"
    assert _names(await api.post(url, json=with_field(document_id=other))) == ["fields[0].document_id"]
    mention = {"type": "mention", "width": 150, "mention": "Signé le %date%"}
    assert _names(await api.post(url, json=with_field(**mention, height=25))) == ["fields[0].height"]
    assert _names(await api.post(url, json=with_field(**mention | {"mention": None}, height=24))) == [
        "fields[0].mention"
    ]
    sms = signer_body(document["id"], signature_authentication_mode="otp_sms")
    assert _names(await api.post(url, json=sms)) == ["info.phone_number"]


async def test_document_upload_validation(api):
    sr = await create_draft(api)
    url = f"/signature_requests/{sr['id']}/documents"
    assert _names(await api.post(url, files={"file": ("a.pdf", b"%PDF-1.4 broken", "application/pdf")})) == [
        "nature"
    ]
    not_pdf = await api.post(
        url, files={"file": ("a.txt", b"hello", "text/plain")}, data={"nature": "attachment"}
    )
    assert _names(not_pdf) == ["file"]
    png = io.BytesIO()
    Image.new("RGB", (50, 50)).save(png, "PNG")
    image = {"file": ("scan.png", png.getvalue(), "image/png")}
    assert _names(await api.post(url, files=image, data={"nature": "signable_document"})) == ["nature"]
    attachment = await api.post(url, files=image, data={"nature": "attachment"})
    assert attachment.status_code == 201 and attachment.json()["content_type"] == "application/pdf"
    broken = await api.post(
        url,
        files={"file": ("a.pdf", b"%PDF-1.4 broken", "application/pdf")},
        data={"nature": "signable_document"},
    )
    assert broken.status_code == 400 and broken.json()["type"] == "document.analyze_error"
    json_body = await api.post(url, json={"nature": "signable_document"})
    assert json_body.status_code == 415


async def test_activation_requirements(api):
    sr = await create_draft(api)
    activate = f"/signature_requests/{sr['id']}/activate"
    assert (await api.post(activate)).json()["type"] == "signature_request.missing_signable_document"
    document = await upload(api, sr["id"])
    assert (await api.post(activate)).json()["type"] == "signature_request.missing_signer"
    body = signer_body(document["id"])
    body["fields"] = []
    assert (await api.post(f"/signature_requests/{sr['id']}/signers", json=body)).status_code == 201
    response = await api.post(activate)
    assert response.status_code == 400 and response.json()["type"] == "signer.missing_signature_field"


async def test_status_machine_violations_are_400(api):
    sr, document, _ = await ongoing(api)
    base = f"/signature_requests/{sr['id']}"
    violations = [
        await api.post(base + "/activate"),
        await api.post(base + "/signers", json=signer_body(document["id"])),
        await api.post(
            base + "/documents",
            files={"file": ("a.pdf", b"%PDF-", "application/pdf")},
            data={"nature": "signable_document"},
        ),
        await api.delete(base),
    ]
    for response in violations:
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "signature_request.status_not_compatible"
    not_done = await api.get(base + "/documents/download", params={"version": "completed"})
    assert not_done.status_code == 400
    assert not_done.json()["type"] == "document.unable_to_download_signature_request_not_in_done"
    trail = await api.get(base + "/audit_trails/download")
    assert trail.json()["type"] == "audit_trail.not_ready_for_download"
    current = await api.get(base + "/documents/download", params={"version": "current"})
    assert current.status_code == 200 and current.headers["content-type"] == "application/pdf"

    draft, _, [draft_signer] = await ready_draft(api)
    cancel = await api.post(f"/signature_requests/{draft['id']}/cancel", json={"reason": "other"})
    assert cancel.json()["type"] == "signature_request.status_not_compatible"
    reminder = await api.post(f"/signature_requests/{draft['id']}/signers/{draft_signer['id']}/send_reminder")
    assert reminder.json()["type"] == "signature_request.status_not_compatible"
    assert _names(await api.post(base + "/cancel", json={"reason": "bored"})) == ["reason"]
    assert _names(await api.post(base + "/cancel", json={})) == ["reason"]


async def test_signer_cannot_sign_twice(emu, api):
    _, _, [signer] = await ongoing(api)
    emu.state.sign_signer(signer["id"])
    with pytest.raises(ApiError, match="status_not_compatible"):
        emu.state.sign_signer(signer["id"])


async def test_add_signer_helper_used_by_other_tests_still_validates(api):
    sr = await create_draft(api)
    document = await upload(api, sr["id"])
    assert (await add_signer(api, sr["id"], document["id"]))["fields"][0]["document_id"] == document["id"]
