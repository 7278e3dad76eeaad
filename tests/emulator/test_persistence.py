"""The emulator keeps its signature requests across a restart when given a state file."""

import asyncio

import httpx

from yousign_emulator import EmulatorSettings, running_emulator, sample_pdf

HEADERS = {"Authorization": "Bearer k"}


async def test_a_request_sent_before_a_restart_can_be_signed_after_it(tmp_path):
    settings = EmulatorSettings(api_key="k", state_file=tmp_path / "emulator.pickle")
    async with running_emulator(settings) as before, httpx.AsyncClient(base_url=before.api_base_url) as api:
        sr = (
            await api.post(
                "/signature_requests", json={"name": "M", "delivery_mode": "email"}, headers=HEADERS
            )
        ).json()
        document = await api.post(
            f"/signature_requests/{sr['id']}/documents",
            files={"file": ("m.pdf", sample_pdf(), "application/pdf")},
            data={"nature": "signable_document"},
            headers=HEADERS,
        )
        field = {"document_id": document.json()["id"], "type": "signature", "page": 1, "x": 50, "y": 50}
        signer = await api.post(
            f"/signature_requests/{sr['id']}/signers",
            json={
                "info": {"first_name": "A", "last_name": "B", "email": "a@b.example", "locale": "fr"},
                "signature_level": "electronic_signature",
                "fields": [field],
            },
            headers=HEADERS,
        )
        await api.post(f"/signature_requests/{sr['id']}/activate", headers=HEADERS)
    assert (tmp_path / "emulator.pickle").exists()

    async with running_emulator(settings) as after:
        async with httpx.AsyncClient(base_url=after.public_url) as browser:
            page = await browser.get(f"/sign/{signer.json()['id']}")
            assert page.status_code == 200
            assert (await browser.post(f"/sign/{signer.json()['id']}/sign")).status_code in (200, 303)
        async with httpx.AsyncClient(base_url=after.api_base_url, headers=HEADERS) as api:
            assert (await api.get(f"/signature_requests/{sr['id']}")).json()["status"] == "done"


async def test_an_identity_check_pending_at_a_stop_completes_after_the_restart(tmp_path):
    settings = EmulatorSettings(api_key="k", state_file=tmp_path / "emulator.pickle", kyc_delay_seconds=0.3)
    async with running_emulator(settings) as before, httpx.AsyncClient(base_url=before.api_base_url) as api:
        created = await api.post(
            "/verifications/identity_documents",
            files={"file": ("id.pdf", sample_pdf(), "application/pdf")},
            data={"first_name": "Jeanne", "last_name": "Martin", "type": "passport"},
            headers=HEADERS,
        )
        assert created.json()["status"] == "pending"  # stopped before the check's timer fired

    async with running_emulator(settings) as after:
        async with httpx.AsyncClient(base_url=after.api_base_url, headers=HEADERS) as api:
            for _ in range(100):
                status = (await api.get(f"/verifications/identity_documents/{created.json()['id']}")).json()
                if status["status"] != "pending":
                    break
                await asyncio.sleep(0.05)
            assert status["status"] == "verified"
        assert [e.event_name for e in after.state.webhook_events][-1] == "verification.identity_document.done"
