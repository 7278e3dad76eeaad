"""Webhooks as YouSign sends them, received by a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

from tests.emulator.conftest import SECRET
from tests.emulator.flows import api_client, ongoing, ready_draft


def _verify(received) -> dict:
    """The documented recipe: HMAC-SHA256 of the raw body, hex, `sha256=` prefix, constant-time compare."""
    digest = hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["x-yousign-signature-256"], f"sha256={digest}")
    return json.loads(received.body)


async def test_events_are_signed_and_shaped_like_yousign(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url])
    async with api_client(emu) as api:
        sr, _, [signer] = await ongoing(api, external_id="mandate-1")
        emu.state.sign_signer(signer["id"])
    received = await receiver.wait_for(4)
    payloads = [_verify(r) for r in received]
    assert [p["event_name"] for p in payloads] == [
        "signature_request.activated",
        "signer.notified",
        "signer.done",
        "signature_request.done",
    ]
    for r, p in zip(received, payloads, strict=True):
        assert set(p) == {
            "event_id",
            "event_name",
            "event_time",
            "subscription_id",
            "subscription_description",
            "sandbox",
            "data",
        }
        assert isinstance(p["event_time"], str) and abs(int(p["event_time"]) - time.time()) < 60
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "Yousign Webhook Bot"
        assert r.headers["x-yousign-retry"] == "0" and r.headers["x-yousign-issued-at"].isdigit()
        assert p["data"]["signature_request"]["id"] == sr["id"]
        assert p["data"]["signature_request"]["external_id"] == "mandate-1"
    assert payloads[2]["data"]["signer"]["status"] == "signed" and payloads[2]["data"]["signer"]["signed_at"]
    assert (
        "signer" not in payloads[3]["data"] and payloads[3]["data"]["signature_request"]["status"] == "done"
    )
    assert len({p["event_id"] for p in payloads}) == 4


async def test_delivery_is_asynchronous(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url])
    receiver.hold = asyncio.Event()
    async with api_client(emu) as api:
        sr, _, _ = await ready_draft(api)
        # Answered while the receiver holds every delivery (were it waiting for them, this would not).
        activated = await asyncio.wait_for(api.post(f"/signature_requests/{sr['id']}/activate"), 10)
        assert activated.status_code == 201
        assert [d.status_code for d in emu.state.webhook_deliveries] == []
    receiver.hold.set()
    await emu.webhooks_idle()
    assert len(receiver.received) == 2


async def test_failed_deliveries_are_retried_with_the_same_body(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url])
    receiver.statuses = [500, 404]
    event = emu.state.emit("signature_request.expired", {"signature_request": {"id": "x"}})
    await emu.webhooks_idle()
    assert [r.headers["x-yousign-retry"] for r in receiver.received] == ["0", "1", "2"]
    assert {r.body for r in receiver.received} == {event.body}
    assert [(d.attempt, d.status_code) for d in emu.state.webhook_deliveries] == [
        (0, 500),
        (1, 404),
        (2, 200),
    ]


async def test_first_try_times_out_after_the_configured_second(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url], webhook_timeout_seconds=0.2)
    receiver.stalls = [0.5]
    emu.state.emit("signature_request.expired", {"signature_request": {"id": "x"}})
    await emu.webhooks_idle()
    first, second = emu.state.webhook_deliveries
    assert first.status_code is None and "timeout" in (first.error or "")
    assert second.attempt == 1 and second.status_code == 200


async def test_gives_up_after_the_last_retry(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url])
    receiver.statuses = [500, 500, 500, 500]
    emu.state.emit("signature_request.expired", {"signature_request": {"id": "x"}})
    await emu.webhooks_idle()
    assert [d.status_code for d in emu.state.webhook_deliveries] == [500, 500, 500]


async def test_replay_keeps_event_id_time_and_signature(start_emulator, receiver):
    emu = await start_emulator(webhook_urls=[receiver.url])
    event = emu.state.emit("signer.done", {"signature_request": {"id": "x"}, "signer": {"id": "y"}})
    await receiver.wait_for(1)
    emu.state.replay_webhook(event.event_id)
    original, replayed = await receiver.wait_for(2)
    assert replayed.body == original.body
    assert replayed.headers["x-yousign-signature-256"] == original.headers["x-yousign-signature-256"]
    assert _verify(replayed)["event_id"] == event.event_id


async def test_webhook_urls_can_be_changed_over_http(emu, web, receiver):
    assert (await web.get("/_emulator/webhook-urls")).json() == {"urls": []}
    emu.state.emit("signature_request.expired", {"signature_request": {"id": "lost"}})  # nobody listening
    response = await web.put("/_emulator/webhook-urls", json={"urls": [receiver.url]})
    assert response.json() == {"urls": [receiver.url]}
    event = emu.state.emit("signature_request.expired", {"signature_request": {"id": "kept"}})
    [received] = await receiver.wait_for(1)
    assert _verify(received)["event_id"] == event.event_id
    replay = await web.post(f"/_emulator/webhooks/events/{emu.state.webhook_events[0].event_id}/replay")
    assert replay.status_code == 202
    await receiver.wait_for(2)
    deliveries = (await web.get("/_emulator/webhooks/deliveries")).json()
    assert [d["status_code"] for d in deliveries] == [200, 200]
    assert len((await web.get("/_emulator/webhooks/events")).json()) == 2
