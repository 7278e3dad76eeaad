"""Per-minute / per-hour limits: YouSign's headers on every response, 429 + Retry-After, counters."""

from __future__ import annotations

import asyncio

import httpx

from tests.emulator.flows import API_KEY
from yousign_emulator.rate_limit import UNLIMITED, RateLimiter

LIMIT_HEADERS = (
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit-minute",
    "x-ratelimit-remaining-minute",
    "x-ratelimit-limit-hour",
    "x-ratelimit-remaining-hour",
)


def _client(emu) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=emu.api_base_url, headers={"Authorization": f"Bearer {API_KEY}"}, trust_env=False
    )


async def test_headers_on_every_response_even_unlimited(api):
    for response in (
        await api.get("/signature_requests"),
        await api.get("/nope"),
        await api.post("/signature_requests"),
    ):
        assert all(response.headers[h].isdigit() for h in LIMIT_HEADERS), response.headers
    assert response.headers["x-ratelimit-limit-minute"] == str(UNLIMITED)
    assert "retry-after" not in response.headers


async def test_minute_limit_429_then_retry_after_succeeds(start_emulator):
    emu = await start_emulator(requests_per_minute=3, minute_seconds=1.0)
    async with _client(emu) as client:
        emu.state.set_rate_limits(3, None, minute_seconds=1.0)  # the window starts now, not at start-up
        remaining = []
        for _ in range(3):
            response = await client.get("/signature_requests")
            assert response.status_code == 200
            remaining.append(response.headers["x-ratelimit-remaining-minute"])
        assert remaining == ["2", "1", "0"] and response.headers["ratelimit-limit"] == "3"

        refused = await client.get("/signature_requests")
        assert refused.status_code == 429 and refused.json() == {"message": "Too many requests"}
        assert refused.headers["retry-after"] == "1"  # ceil of the time left in the 1-second window
        await asyncio.sleep(int(refused.headers["retry-after"]))
        assert (await client.get("/signature_requests")).status_code == 200

    assert len(emu.state.accepted_requests) == 4
    assert [r.injected for r in emu.state.rejected_requests] == [False]
    stats = emu.state.stats()
    assert stats["accepted"] == 4 and stats["rate_limited"] == 1 and len(stats["accepted_times"]) == 4


async def test_a_client_honouring_retry_after_never_gets_two_429_in_a_row(start_emulator):
    emu = await start_emulator(requests_per_minute=3, minute_seconds=0.5)
    async with _client(emu) as client:
        emu.state.set_rate_limits(3, None, minute_seconds=0.5)  # the window starts now, not at start-up
        done = 0
        while done < 5:
            response = await client.get("/signature_requests")
            if response.status_code == 429:
                await asyncio.sleep(int(response.headers["retry-after"]))
                response = await client.get("/signature_requests")
                assert response.status_code == 200
            done += 1
    assert len(emu.state.accepted_requests) == 5 and len(emu.state.rejected_requests) >= 1


async def test_hour_limit_wins_when_it_is_the_full_window(start_emulator):
    emu = await start_emulator(
        requests_per_minute=10, requests_per_hour=2, minute_seconds=0.5, hour_seconds=1.5
    )
    async with _client(emu) as client:
        emu.state.set_rate_limits(10, 2, minute_seconds=0.5, hour_seconds=1.5)  # windows start now
        first = await client.get("/signature_requests")
        assert first.headers["ratelimit-limit"] == "2" and first.headers["x-ratelimit-remaining-hour"] == "1"
        await client.get("/signature_requests")
        refused = await client.get("/signature_requests")
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-remaining-hour"] == "0"
        assert refused.headers["x-ratelimit-remaining-minute"] == "8"
        assert refused.headers["retry-after"] == "2"  # ceil of the ~1.5 s left in the hour window


def test_retry_after_is_the_ceiling_of_the_time_left_in_the_full_window():
    now = [100.0]
    limiter = RateLimiter(2, None, minute_seconds=60.0, clock=lambda: now[0])
    assert limiter.acquire().allowed and limiter.acquire().allowed
    now[0] = 100.2
    refused = limiter.acquire()
    assert not refused.allowed and refused.retry_after == 60  # 59.8 s left
    assert refused.headers["RateLimit-Reset"] == "60"
    now[0] = 159.99
    assert limiter.acquire().retry_after == 1
    now[0] = 160.0  # a new fixed window starts exactly 60 s after the origin
    assert limiter.acquire().allowed
    assert limiter.peek_headers()["X-RateLimit-Remaining-Minute"] == "1"
