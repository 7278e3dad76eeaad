"""The /_emulator/ control endpoints (the HTTP twin of emulator.state) and request recording."""

from __future__ import annotations

import base64
import json

import httpx

from tests.emulator.flows import api_client, ongoing
from yousign_emulator import RecordedRequest, build_app


async def test_sign_decline_expire_over_http(emu, api, web):
    _, _, [signer] = await ongoing(api, signers_allowed_to_decline=True)
    signed = await web.post(f"/_emulator/signers/{signer['id']}/sign")
    assert signed.status_code == 200 and signed.json()["status"] == "signed"
    twice = await web.post(f"/_emulator/signers/{signer['id']}/sign")
    assert twice.status_code == 400 and twice.json()["type"] == "signature_request.status_not_compatible"

    other, _, [decliner] = await ongoing(api, signers_allowed_to_decline=True)
    declined = await web.post(f"/_emulator/signers/{decliner['id']}/decline", json={"reason": "Non merci"})
    assert declined.json()["status"] == "declined"
    assert emu.state.signature_requests[other["id"]].decline_information["reason"] == "Non merci"

    third, _, _ = await ongoing(api)
    assert (await web.post(f"/_emulator/signature_requests/{third['id']}/expire")).json()[
        "status"
    ] == "expired"
    assert (await web.post("/_emulator/signers/nope/sign")).status_code == 404


async def test_kyc_completion_over_http(start_emulator):
    emu = await start_emulator(kyc_delay_seconds=60)
    verification = emu.state.identity_documents
    async with api_client(emu) as api:
        created = await api.post("/verifications/identity_documents", files={"file": ("id.pdf", b"%PDF-1.4")})
    async with httpx.AsyncClient(base_url=emu.public_url, trust_env=False) as web:
        done = await web.post(
            f"/_emulator/identity_documents/{created.json()['id']}/complete",
            json={"status": "inconclusive", "status_codes": ["IDDV_1200"]},
        )
    assert done.json()["status"] == "inconclusive" and done.json()["status_codes"] == ["IDDV_1200"]
    assert next(iter(verification.values())).status == "inconclusive"


async def test_faults_over_http(emu, api, web):
    added = await web.post(
        "/_emulator/faults", json={"method": "GET", "path_regex": "^/v3/signature_requests$", "kind": "503"}
    )
    assert added.status_code == 201 and added.json()["times"] == 1
    assert (await api.get("/signature_requests")).status_code == 503
    assert (await web.get("/_emulator/faults")).json()[0]["fired"] == 1
    assert (await web.post("/_emulator/faults", json={"kind": "boom"})).status_code == 400
    assert (await web.delete("/_emulator/faults")).status_code == 204
    assert emu.state.faults.faults == []


async def test_requests_are_recorded_verbatim(emu, api, web):
    await api.post("/signature_requests", json={"name": "Mandat", "delivery_mode": "none"})
    await api.get("/signature_requests", params={"status[eq]": "draft", "limit": "5"})
    first, second = emu.state.recorded_requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == ("POST", "/v3/signature_requests", "")
    assert first.headers["authorization"] == "Bearer test-key"
    assert json.loads(first.body) == {"name": "Mandat", "delivery_mode": "none"}
    assert (second.method, second.query) == ("GET", "status%5Beq%5D=draft&limit=5")
    assert second.body == b""
    over_http = (await web.get("/_emulator/requests")).json()
    assert over_http[0]["path"] == "/v3/signature_requests"
    assert base64.b64decode(over_http[0]["body_base64"]) == first.body


async def test_stats_rate_limits_and_reset(emu, api, web):
    await api.get("/signature_requests")
    stats = (await web.get("/_emulator/stats")).json()
    assert stats["accepted"] == 1 and stats["rate_limited"] == 0
    await web.put("/_emulator/rate-limits", json={"requests_per_minute": 1, "minute_seconds": 30})
    assert (await api.get("/signature_requests")).status_code == 200
    assert (await api.get("/signature_requests")).status_code == 429
    assert (await web.post("/_emulator/reset")).status_code == 204
    assert emu.state.recorded_requests == [] and (await web.get("/_emulator/stats")).json()["accepted"] == 0


async def test_control_is_loopback_only(emu):
    transport = httpx.ASGITransport(app=build_app(emu.state), client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as remote:
        assert (await remote.get("/_emulator/stats")).status_code == 403
        assert (await remote.get("/mailbox.json")).status_code == 200  # pages stay public
