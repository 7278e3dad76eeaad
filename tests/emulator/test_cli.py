"""`python -m yousign_emulator` reads EMULATOR_* variables and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import httpx


async def test_module_entry_point_serves_until_sigterm():
    env = {
        **os.environ,
        "EMULATOR_PORT": "0",
        "EMULATOR_API_KEY": "cli-key",
        "EMULATOR_REQUESTS_PER_MINUTE": "30",
        "EMULATOR_WEBHOOK_URLS": "http://127.0.0.1:9/a,http://127.0.0.1:9/b",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yousign_emulator", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        api_base = re.search(r"API (\S+)", line).group(1)  # type: ignore[union-attr]
        async with httpx.AsyncClient(trust_env=False, headers={"Authorization": "Bearer cli-key"}) as client:
            response = await client.get(f"{api_base}/signature_requests")
            urls = (await client.get(api_base.removesuffix("/v3") + "/_emulator/webhook-urls")).json()
        assert response.status_code == 200 and response.headers["x-ratelimit-limit-minute"] == "30"
        assert urls == {"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]}
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
