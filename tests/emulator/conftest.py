"""Fixtures: a fresh emulator per test (fast to start), httpx clients, a local webhook receiver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.emulator.flows import API_KEY, api_client
from tests.emulator.receiver import Receiver, running_receiver
from yousign_emulator import Emulator, EmulatorSettings, running_emulator

SECRET = "whsec-test"

StartEmulator = Callable[..., Awaitable[Emulator]]


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Start emulators with test-friendly defaults (short KYC delay and retry backoff); stopped after."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Emulator:
            values: dict[str, Any] = {
                "api_key": API_KEY,
                "webhook_secret": SECRET,
                "kyc_delay_seconds": 0.2,
                "webhook_retry_delays_seconds": [0.05, 0.05],
                "webhook_retry_timeout_seconds": 2.0,
                **overrides,
            }
            return await stack.enter_async_context(running_emulator(EmulatorSettings(**values)))

        yield start


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> Emulator:
    return await start_emulator()


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(emu) as client:
        yield client


@pytest.fixture
async def web(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A browser: no API key, public pages."""
    async with httpx.AsyncClient(base_url=emu.public_url, trust_env=False) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running
