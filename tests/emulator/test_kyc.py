"""Identity-document verification: pending, then done with the planned outcome and a webhook."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from tests.emulator.flows import api_client
from yousign_emulator import ApiError, sample_pdf

URL = "/verifications/identity_documents"


def _png(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


async def _upload(api, last_name: str = "Martin", image: bytes | None = None, **data: str) -> dict:
    response = await api.post(
        URL,
        files={"file": ("id.png", image or _png(), "image/png")},
        data={"first_name": "Jeanne", "last_name": last_name, "type": "id_card", **data},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["status_codes"] == []
    return body


async def _final(api, verification_id: str) -> dict:
    for _ in range(100):
        body = (await api.get(f"{URL}/{verification_id}")).json()
        if body["status"] != "pending":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("verification still pending")


@pytest.mark.parametrize(
    ("last_name", "image", "status", "codes"),
    [
        ("Martin", None, "verified", []),
        ("Martin", _png(200, 200), "inconclusive", ["IDDV_1104"]),
        ("Martin", _png(256, 320), "verified", []),  # a portrait photo: the API accepts it too
        ("DUPONT-FAILED", None, "failed", ["IDDV_1706"]),
        ("INCONCLUSIVE", None, "inconclusive", ["IDDV_1200"]),
    ],
)
async def test_outcomes(emu, api, last_name, image, status, codes):
    created = await _upload(api, last_name, image)
    final = await _final(api, created["id"])
    assert (final["status"], final["status_codes"]) == (status, codes)
    extracted = final["data"]["extracted_from_document"]
    assert extracted["last_name"] == (last_name if status == "verified" else None)
    [event] = [e for e in emu.state.webhook_events if e.event_name == "verification.identity_document.done"]
    document = event.payload["data"]["identity_document"]
    assert (
        document["id"] == created["id"] and document["status"] == status and document["status_codes"] == codes
    )


async def test_pdf_with_additional_file_is_verified(api):
    response = await api.post(
        URL,
        files={"file": ("id.pdf", sample_pdf(), "application/pdf"), "additional_file": ("back.png", _png())},
    )
    assert response.status_code == 201
    assert (await _final(api, response.json()["id"]))["status"] == "verified"


async def test_control_completes_with_a_chosen_status_once(start_emulator):
    emu = await start_emulator(kyc_delay_seconds=60)
    async with api_client(emu) as api:
        created = await _upload(api)
        result = emu.state.complete_identity_document(created["id"], "failed", ["IDDV_1707"])
        assert result["status"] == "failed"
        assert (await api.get(f"{URL}/{created['id']}")).json()["status_codes"] == ["IDDV_1707"]
        with pytest.raises(ApiError, match="already failed"):
            emu.state.complete_identity_document(created["id"], "verified")
        listed = (await api.get(URL, params={"status[eq]": "failed"})).json()
        assert [v["id"] for v in listed["data"]] == [created["id"]] and listed["meta"]["next_cursor"] is None
    assert len(emu.state.webhook_events) == 1


async def test_validation(api):
    def names(response) -> list[str]:
        assert response.status_code == 400, response.text
        return [p["name"] for p in response.json()["invalid_params"]]

    png = {"file": ("id.png", _png(), "image/png")}
    assert names(await api.post(URL, files=png, data={"type": "driving_licence"})) == ["type"]
    assert names(await api.post(URL, files={"file": ("id.txt", b"hello")})) == ["file"]
    assert names(await api.post(URL, files={"other": ("x.png", _png())})) == ["other", "file"]
    assert names(await api.post(URL, files=png, data={"first_name": "Jeanne"})) == ["last_name"]
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (10 * 1024 * 1024)
    assert names(await api.post(URL, files={"file": ("big.png", big)})) == ["file"]
    assert (await api.get(f"{URL}/5b3f3f8e-0000-4000-8000-000000000000")).status_code == 404
