"""Expiry (control, lazy on access, periodic sweep) and manual reminders."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.emulator.flows import api_client, ongoing
from tests.helpers import eventually


def _event_names(emu) -> list[str]:
    return [e.event_name for e in emu.state.webhook_events]


async def test_expire_now_from_the_control_api(emu, api):
    sr, _, _ = await ongoing(api)
    assert emu.state.expire_signature_request(sr["id"])["status"] == "expired"
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "expired"
    assert _event_names(emu)[-1] == "signature_request.expired"
    late = await api.post(f"/signature_requests/{sr['id']}/cancel", json={"reason": "other"})
    assert late.status_code == 400 and late.json()["type"] == "signature_request.status_not_compatible"


async def test_past_expiration_date_expires_on_next_access(emu, api):
    sr, _, [signer] = await ongoing(api)
    emu.state.signature_requests[sr["id"]].expiration_date = date.today() - timedelta(days=2)
    assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "expired"
    assert _event_names(emu).count("signature_request.expired") == 1
    reminder = await api.post(f"/signature_requests/{sr['id']}/signers/{signer['id']}/send_reminder")
    assert reminder.status_code == 400


async def test_periodic_sweep_expires_without_any_request(start_emulator):
    emu = await start_emulator(expiry_sweep_seconds=0.05)
    async with api_client(emu) as api:
        sr, _, _ = await ongoing(api)
    emu.state.signature_requests[sr["id"]].expiration_date = date.today() - timedelta(days=2)

    async def expired():
        return emu.state.signature_requests[sr["id"]].status == "expired"

    await eventually(expired, within=5)
    assert _event_names(emu)[-1] == "signature_request.expired"


async def test_expiration_date_is_end_of_day_in_the_timezone(api):
    body = {"name": "M", "delivery_mode": "none", "timezone": "Europe/Paris"}
    day = (date.today() + timedelta(days=30)).isoformat()
    created = (await api.post("/signature_requests", json={**body, "expiration_date": day})).json()
    paris = datetime.fromisoformat(created["expiration_date"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (paris.date().isoformat(), paris.time()) == (day, time(23, 59, 59))
    utc = (
        await api.post("/signature_requests", json={**body, "timezone": "UTC", "expiration_date": day})
    ).json()
    assert utc["expiration_date"] == f"{day}T23:59:59+00:00"


async def test_manual_reminder_sends_webhook_and_email(emu, api, web):
    sr, _, [signer] = await ongoing(api)
    url = f"/signature_requests/{sr['id']}/signers/{signer['id']}/send_reminder"
    response = await api.post(url)
    assert response.status_code == 201 and response.content == b""
    event = emu.state.webhook_events[-1]
    assert event.event_name == "signature_request.reminder_executed"
    assert event.payload["data"]["signature_request"]["id"] == sr["id"]
    latest = (await web.get("/mailbox.json")).json()[0]
    assert latest["kind"] == "reminder" and latest["link"] == sr["signers"][0]["signature_link"]

    emu.state.sign_signer(signer["id"])
    again = await api.post(url)
    assert again.status_code == 400  # the request is done now


async def test_reminder_needs_a_notified_signer(emu, api):
    sr, _, (_, second) = await ongoing(api, signers=2, ordered_signers=True)
    response = await api.post(f"/signature_requests/{sr['id']}/signers/{second['id']}/send_reminder")
    assert response.status_code == 400 and response.json()["type"] == "signer.status_not_compatible"


async def test_delivery_mode_none_sends_no_email(emu, api):
    await ongoing(api, delivery_mode="none")
    assert emu.state.mailbox == []
