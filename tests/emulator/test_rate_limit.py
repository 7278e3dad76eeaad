"""Per-minute / per-hour limits: YouSign's headers on every response, 429 + Retry-After, counters."""

from __future__ import annotations

import httpx

from tests.emulator.flows import API_KEY, limits_on_a_manual_clock
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
    emu = await start_emulator(requests_per_minute=3)
    clock = limits_on_a_manual_clock(emu, 3)
    async with _client(emu) as client:
        remaining = []
        for _ in range(3):
            response = await client.get("/signature_requests")
            assert response.status_code == 200
            remaining.append(response.headers["x-ratelimit-remaining-minute"])
        assert remaining == ["2", "1", "0"] and response.headers["ratelimit-limit"] == "3"

        clock.advance(59.5)
        refused = await client.get("/signature_requests")
        assert refused.status_code == 429 and refused.json() == {"message": "Too many requests"}
        assert refused.headers["retry-after"] == "1"  # ceil of the 0.5 s left in the minute
        clock.advance(int(refused.headers["retry-after"]))
        assert (await client.get("/signature_requests")).status_code == 200

    assert len(emu.state.accepted_requests) == 4
    assert [r.injected for r in emu.state.rejected_requests] == [False]
    stats = emu.state.stats()
    assert stats["accepted"] == 4 and stats["rate_limited"] == 1 and len(stats["accepted_times"]) == 4


async def test_a_client_honouring_retry_after_never_gets_two_429_in_a_row(start_emulator):
    emu = await start_emulator(requests_per_minute=3)
    clock = limits_on_a_manual_clock(emu, 3)
    async with _client(emu) as client:
        refusals = 0
        for _ in range(10):
            clock.advance(7)  # a call every 7 s: the fourth of a minute is refused
            response = await client.get("/signature_requests")
            if response.status_code == 429:
                refusals += 1
                clock.advance(int(response.headers["retry-after"]))
                response = await client.get("/signature_requests")
                assert response.status_code == 200
    assert len(emu.state.accepted_requests) == 10 and len(emu.state.rejected_requests) == refusals >= 1


async def test_hour_limit_wins_when_it_is_the_full_window(start_emulator):
    emu = await start_emulator(requests_per_minute=10, requests_per_hour=2)
    clock = limits_on_a_manual_clock(emu, 10, 2)
    async with _client(emu) as client:
        first = await client.get("/signature_requests")
        assert first.headers["ratelimit-limit"] == "2" and first.headers["x-ratelimit-remaining-hour"] == "1"
        await client.get("/signature_requests")
        clock.advance(1_800.2)
        refused = await client.get("/signature_requests")
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-remaining-hour"] == "0"
        assert refused.headers["x-ratelimit-remaining-minute"] == "10"  # a new minute, the hour still full
        assert refused.headers["retry-after"] == "1800"  # ceil of the 1,799.8 s left in the hour


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
