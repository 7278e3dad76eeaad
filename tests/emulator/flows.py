"""Request helpers shared by the emulator tests (plain httpx, as a client would call YouSign)."""

from __future__ import annotations

from typing import Any

import httpx

from yousign_emulator import Emulator, sample_pdf
from yousign_emulator.rate_limit import RateLimiter

API_KEY = "test-key"


def api_client(emu: Emulator) -> httpx.AsyncClient:
    """What a YouSign client holds: base URL /v3 and the Bearer key."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return httpx.AsyncClient(base_url=emu.api_base_url, headers=headers, trust_env=False)


def signer_body(document_id: str, last_name: str = "Martin", **extra: Any) -> dict[str, Any]:
    return {
        "info": {"first_name": "Jeanne", "last_name": last_name, "email": "jeanne@client.fr", "locale": "fr"},
        "signature_level": "electronic_signature",
        "signature_authentication_mode": "no_otp",
        "fields": [
            {
                "document_id": document_id,
                "type": "signature",
                "page": 1,
                "x": 77,
                "y": 581,
                "width": 180,
                "height": 60,
            }
        ],
        **extra,
    }


async def create_draft(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Mandat de facturation", "delivery_mode": "email", **fields}
    response = await api.post("/signature_requests", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def upload(
    api: httpx.AsyncClient, sr_id: str, pages: int = 1, nature: str = "signable_document"
) -> dict:
    response = await api.post(
        f"/signature_requests/{sr_id}/documents",
        files={"file": ("mandat.pdf", sample_pdf(pages), "application/pdf")},
        data={"nature": nature},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def add_signer(api: httpx.AsyncClient, sr_id: str, document_id: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(f"/signature_requests/{sr_id}/signers", json=signer_body(document_id, **extra))
    assert response.status_code == 201, response.text
    return response.json()


async def ready_draft(
    api: httpx.AsyncClient, signers: int = 1, **fields: Any
) -> tuple[dict, dict, list[dict]]:
    """A draft with one signable document and `signers` signers, ready to activate."""
    sr = await create_draft(api, **fields)
    document = await upload(api, sr["id"])
    people = [
        await add_signer(api, sr["id"], document["id"], last_name=name)
        for name in ["Martin", "Durand", "Petit"][:signers]
    ]
    return sr, document, people


async def ongoing(api: httpx.AsyncClient, signers: int = 1, **fields: Any) -> tuple[dict, dict, list[dict]]:
    sr, document, people = await ready_draft(api, signers, **fields)
    response = await api.post(f"/signature_requests/{sr['id']}/activate")
    assert response.status_code == 201, response.text
    return response.json(), document, people


class ManualClock:
    """The emulator's rate-limit clock, moved by the test: windows roll when told, not with the CPU."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limits_on_a_manual_clock(
    emu: Emulator, per_minute: int | None, per_hour: int | None = None
) -> ManualClock:
    """YouSign's minute and hour windows, their clock in the test's hands (windows start now)."""
    clock = ManualClock()
    emu.state.rate_limiter = RateLimiter(per_minute, per_hour, clock=clock)
    return clock
