"""Fault script and random faults; timeout_after_processing shows why creation must be looked up first."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.flows import API_KEY, create_draft


async def test_scripted_500_happens_before_processing(emu, api):
    emu.state.add_fault(method="POST", path_regex=r"^/v3/signature_requests$", kind="500", times=1)
    failed = await api.post("/signature_requests", json={"name": "A", "delivery_mode": "none"})
    assert failed.status_code == 500 and failed.json() == {
        "type": "about:blank",
        "detail": "Something wrong occurred.",
    }
    assert emu.state.signature_requests == {}
    assert (
        await api.post("/signature_requests", json={"name": "A", "delivery_mode": "none"})
    ).status_code == 201
    assert (await api.get("/signature_requests")).status_code == 200  # a POST fault does not match GET
    assert emu.state.faults.faults[0].fired == 1


async def test_scripted_429_and_4xx(emu, api):
    emu.state.add_fault(method="GET", path_regex=r"/signature_requests", kind="429", times=2)
    emu.state.add_fault(method="POST", path_regex=r"/signers$", kind="400", times=1)
    for _ in range(2):
        refused = await api.get("/signature_requests")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert (await api.get("/signature_requests")).status_code == 200
    assert [r.injected for r in emu.state.rejected_requests] == [True, True]
    assert len(emu.state.accepted_requests) == 1  # injected 429s are not counted by the limiter
    sr = await create_draft(api)
    bad = await api.post(f"/signature_requests/{sr['id']}/signers", json={})
    assert bad.status_code == 400 and bad.json()["type"] == "bad_request"


async def test_timeout_after_processing_creates_exactly_once_when_the_client_looks_up(emu):
    emu.state.add_fault(kind="timeout_after_processing", delay_seconds=0.6)
    body = {"name": "Mandat", "delivery_mode": "none", "external_id": "mandate-7"}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=emu.api_base_url, headers=headers, trust_env=False) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/signature_requests", json=body, timeout=0.2)
        # The server acted although the client saw a timeout: look up by external_id before retrying.
        found = (await client.get("/signature_requests", params={"external_id[eq]": "mandate-7"})).json()[
            "data"
        ]
    assert [request["external_id"] for request in found] == ["mandate-7"]
    assert len(emu.state.signature_requests) == 1


async def test_random_faults_are_seeded(start_emulator):
    async def statuses(seed: int) -> list[int]:
        emu = await start_emulator(fault_5xx_rate=0.3, fault_429_rate=0.2, seed=seed)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=emu.api_base_url, headers=headers, trust_env=False) as client:
            return [(await client.get("/signature_requests")).status_code for _ in range(30)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again and first != other
    assert {200, 429, 500} == set(first)


def test_unknown_fault_kind_is_refused():
    from yousign_emulator.faults import FaultInjector

    with pytest.raises(ValueError):
        FaultInjector().add(kind="explode")
