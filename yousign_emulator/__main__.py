"""`python -m yousign_emulator`: serve with EMULATOR_* settings until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from .server import running_emulator
from .settings import EmulatorSettings


async def _main() -> None:
    settings = EmulatorSettings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_emulator(settings) as emulator:
        print(f"YouSign emulator: API {emulator.api_base_url} · pages {emulator.public_url}", flush=True)
        stopped = asyncio.ensure_future(emulator.wait_stopped())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopped, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    print("YouSign emulator stopped.", flush=True)


def main() -> None:
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
